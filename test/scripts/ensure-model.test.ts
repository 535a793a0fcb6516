// npm start's prestart hook: the real model when it can be downloaded, else a generated
// stand-in under its name, loudly labelled; nothing to do when the model is there.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

import { projectRoot } from '../../src/paths.js';

const run = promisify(execFile);
const script = path.join(projectRoot, 'scripts/ensure-model');

t.test('without a reachable model host, a labelled stand-in is generated once', async (t) => {
  const dir = t.testdir();
  // Port 9 (discard) on loopback: connection refused, the way an offline machine fails.
  const env = { ...process.env, EARSHOT_MODELS_DIR: dir, EARSHOT_MODEL: 'tiny.en-q5_1', EARSHOT_MODEL_BASE_URL: 'http://127.0.0.1:9' };
  const first = await run(script, { env });
  t.match(first.stderr, /STAND-IN .* RANDOM weights/);
  const model = path.join(dir, 'ggml-tiny.en-q5_1.bin');
  t.ok(existsSync(model));
  t.match(JSON.parse(readFileSync(`${model}.json`, 'utf8')), { generator: /make-test-model/, shape: 'tiny' });
  const second = await run(script, { env });
  t.equal(second.stdout + second.stderr, '', 'nothing to do the second time');
});

t.test('a model name no stand-in exists for fails clearly', async (t) => {
  const env = { ...process.env, EARSHOT_MODELS_DIR: t.testdir(), EARSHOT_MODEL: 'large-v3', EARSHOT_MODEL_BASE_URL: 'http://127.0.0.1:9' };
  const err = (await run(script, { env }).catch((e: unknown) => e)) as { code?: number; stderr?: string };
  t.equal(err.code, 1);
  t.match(err.stderr, /no stand-in can be generated/);
});
