// The addon's writeNewFile(): create, write, fsync and close in one task on libuv's pool,
// with real files (and a real full file system).
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { loadAddon } from '../../src/engine/native.js';
import { mountSmallDisk, needsRoot } from '../helpers/small-disk.js';

const { writeNewFile } = loadAddon();

t.test('the buffers in order, mode 0600 whatever the umask; none is an empty file', async (t) => {
  const dir = t.testdir();
  const parts = [Buffer.from('RIFF'), Buffer.alloc(0), Buffer.alloc(100_000, 7), Buffer.from('end')];
  const previous = process.umask(0);
  try {
    await writeNewFile(join(dir, 'a'), parts, 0o600);
  } finally {
    process.umask(previous);
  }
  t.same(readFileSync(join(dir, 'a')), Buffer.concat(parts));
  t.equal(statSync(join(dir, 'a')).mode & 0o777, 0o600);
  await writeNewFile(join(dir, 'empty'), [], 0o600);
  t.equal(statSync(join(dir, 'empty')).size, 0);
});

t.test('more buffers than one writev takes (IOV_MAX 1024): every byte, in order', async (t) => {
  const dir = t.testdir();
  const parts = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${i},`));
  await writeNewFile(join(dir, 'many'), parts, 0o600);
  t.equal(readFileSync(join(dir, 'many'), 'utf8'), parts.join(''));
});

t.test('an existing file is left alone: EEXIST as Node says it', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'taken'), 'keep me');
  await t.rejects(writeNewFile(join(dir, 'taken'), [Buffer.from('x')], 0o600), {
    code: 'EEXIST',
    errno: -17,
    syscall: 'open',
    path: join(dir, 'taken'),
    message: `EEXIST: File exists, open '${join(dir, 'taken')}'`,
  });
  t.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'keep me');
  await t.rejects(writeNewFile(join(dir, 'no-such-dir', 'f'), [], 0o600), { code: 'ENOENT' });
});

t.test('a full file system: ENOSPC, and the partial file is gone', needsRoot, async (t) => {
  const disk = mountSmallDisk(t, 1);
  await t.rejects(writeNewFile(join(disk, 'big'), [Buffer.alloc(600_000), Buffer.alloc(600_000)], 0o600), { code: 'ENOSPC', syscall: 'write' });
  t.throws(() => statSync(join(disk, 'big')), { code: 'ENOENT' }, 'removed');
  await writeNewFile(join(disk, 'small'), [Buffer.alloc(500_000)], 0o600);
  t.equal(statSync(join(disk, 'small')).size, 500_000, 'the space is back');
});

t.test('bad arguments are TypeErrors, thrown at once', async (t) => {
  t.throws(() => writeNewFile('x', 'not an array' as never, 0o600), TypeError);
  t.throws(() => writeNewFile('x', ['text' as never], 0o600), { name: 'TypeError', message: /array of Buffers/ });
});
