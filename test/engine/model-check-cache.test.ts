// The model check remembered across restarts (issue 13 §3): an unchanged file is loaded
// without checking it again; a file changed in any way the filesystem sees is checked again.
// Real addon, real model files.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, openSync, readFileSync, renameSync, statSync, utimesSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';

import { ModelCheckCache, headBytes, modelIdentity } from '../../src/engine/model-check-cache.js';
import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { createLogger } from '../../src/log.js';
import { parseGgml } from '../helpers/ggml-file.js';
import { generatedModel, testModelPath } from '../helpers/models.js';

async function load(modelPath: string, cacheFile: string) {
  const engine = new WhisperEngine(
    { modelPath, modelCheckCache: cacheFile, threads: 1, nice: 0, flashAttn: true, windowSeconds: 30 },
    createLogger({ level: 'error' }),
  );
  try {
    return await engine.load();
  } finally {
    engine.close();
  }
}

/**
 * Writes `bytes` at `offset` of `file` in place, then puts its mtime back to the
 * nanosecond (as `cp -p`, `rsync -t` or `touch -d` would): only ctime tells.
 */
function patchKeepingTimes(t: Test, file: string, offset: number, bytes: Buffer): void {
  const before = statSync(file, { bigint: true });
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
  const ns = before.mtimeNs % 1_000_000_000n;
  execFileSync('touch', ['-m', '-d', `@${before.mtimeNs / 1_000_000_000n}.${String(ns).padStart(9, '0')}`, file]);
  const after = statSync(file, { bigint: true });
  t.same([after.size, after.mtimeNs, after.ino], [before.size, before.mtimeNs, before.ino], 'size, mtime and inode as before');
  t.not(after.ctimeNs, before.ctimeNs, 'ctime moved');
}

t.test('an unchanged model is checked once; a changed one again', async (t) => {
  const dir = t.testdir();
  const model = path.join(dir, 'model.bin');
  const cacheFile = path.join(dir, 'model-check.json');
  // Unquantized: the test's parser of the file's layout reads f32/f16 files only.
  copyFileSync(generatedModel('test.en'), model);

  const first = await load(model, cacheFile);
  t.equal(first.checked, true, 'first load: checked');
  t.ok(existsSync(cacheFile), 'and remembered');
  const second = await load(model, cacheFile);
  t.equal(second.checked, false, 'a restart on the same file: not checked again');
  t.same({ ...second, loadMs: 0, checked: true }, { ...first, loadMs: 0 }, 'the same model info as the checked load');

  // A byte of tensor data (past the first 64 KiB), size and mtime restored: ctime moved.
  const layout = parseGgml(readFileSync(model));
  const lastTensor = layout.tensors.at(-1)!;
  t.ok(lastTensor.headerOffset > headBytes, 'the tensor table reaches past the hashed head');
  patchKeepingTimes(t, model, statSync(model).size - 10, Buffer.from([0x42]));
  t.equal((await load(model, cacheFile)).checked, true, 'tensor data changed in place, times restored: checked again');
  t.equal((await load(model, cacheFile)).checked, false, 'and remembered again');

  // A tensor header changed in place, times restored: checked again, and refused.
  const firstMatrix = layout.tensors.find((x) => x.dims.length === 2 && x.type === 1)!;
  const shape = Buffer.alloc(4);
  shape.writeInt32LE(firstMatrix.dims[0]! * 2);
  patchKeepingTimes(t, model, firstMatrix.dimsOffset, shape);
  await t.rejects(load(model, cacheFile), { code: 'ERR_MODEL_INVALID', message: /has shape/ }, 'a damaged tensor table is caught');
  await t.rejects(load(model, cacheFile), { code: 'ERR_MODEL_INVALID' }, 'every time: a refused file is not remembered');

  // The file replaced by a good copy (another inode).
  copyFileSync(generatedModel('test.en'), `${model}.new`);
  renameSync(`${model}.new`, model);
  t.equal((await load(model, cacheFile)).checked, true, 'a replaced file: checked');
  t.equal((await load(model, cacheFile)).checked, false);
});

t.test("a model file's identity: what makes a remembered check not count", async (t) => {
  const dir = t.testdir();
  const model = path.join(dir, 'model.bin');
  copyFileSync(testModelPath(), model);
  const cache = new ModelCheckCache(path.join(dir, 'model-check.json'));
  t.equal((await cache.lookup(model)).summary, undefined, 'nothing remembered yet');
  const { identity } = await cache.lookup(model);
  const summary = {
    multilingual: false,
    weightType: 'q5_0',
    ftype: 8,
    mels: 80,
    vocab: 51864,
    audioState: 1,
    audioLayers: 1,
    textState: 1,
    textLayers: 1,
    tensors: 1,
    tensorBytes: 1,
    fileBytes: 1,
  };
  await cache.remember(identity, summary);
  t.same((await cache.lookup(model)).summary, summary);

  const later = new Date(Date.now() + 5000);
  utimesSync(model, later, later);
  t.equal((await cache.lookup(model)).summary, undefined, 'mtime changed');
  await cache.remember((await cache.lookup(model)).identity, summary);
  t.same((await cache.lookup(model)).summary, summary);

  const fd = openSync(model, 'a');
  writeSync(fd, Buffer.from([0]));
  closeSync(fd);
  t.equal((await cache.lookup(model)).summary, undefined, 'size changed');

  const other = await modelIdentity(model);
  t.not(other.headSha256, '', 'the head is hashed');
  await cache.remember(other, summary);
  t.same((await cache.lookup(path.join(dir, '.', 'model.bin'))).summary, summary, 'found by its real path');
});
