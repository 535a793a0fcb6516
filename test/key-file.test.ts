// The key file writer: all or nothing, owner-only, whatever the umask.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { writeKeyFile } from '../src/key-file.js';

t.test('writes the whole text, mode 0600 even under a permissive umask, and leaves no temporary file', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'api-key');
  const umask = process.umask(0);
  try {
    writeKeyFile(file, 'first-key-0123456789\n');
  } finally {
    process.umask(umask);
  }
  t.equal(readFileSync(file, 'utf8'), 'first-key-0123456789\n');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(readdirSync(dir), ['api-key']);
});

t.test('replaces an existing file by rename: a reader sees the old text or the new, and the mode is 0600 again', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'api-key');
  writeFileSync(file, 'old-key-0123456789\n', { mode: 0o644 });
  const before = statSync(file).ino;
  writeKeyFile(file, 'new-key-0123456789\n');
  t.equal(readFileSync(file, 'utf8'), 'new-key-0123456789\n');
  t.not(statSync(file).ino, before, 'a new file took its place (rename), not a rewrite in place');
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(readdirSync(dir), ['api-key']);
});

t.test('a failure leaves neither the file nor a temporary file behind', async (t) => {
  const dir = t.testdir();
  // The rename cannot replace a non-empty directory.
  const file = path.join(dir, 'api-key');
  mkdirSync(path.join(file, 'inside'), { recursive: true });
  t.throws(() => writeKeyFile(file, 'key-0123456789abcdef\n'), { code: /^(EISDIR|ENOTEMPTY|EEXIST)$/ });
  t.same(readdirSync(dir), ['api-key']);
  t.ok(statSync(file).isDirectory(), 'what was there is untouched');
  t.throws(() => writeKeyFile(path.join(dir, 'missing', 'api-key'), 'x'), { code: 'ENOENT' });
});
