// The API key: configured, or generated once into the state directory; a key file that
// could let an empty or guessable key in is refused.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { announceGeneratedKey, apiKeyProblem, resolveApiKey } from '../src/api-key.js';
import { createLogger } from '../src/log.js';

t.test('apiKeyProblem: empty, short, spaces and control characters; 16 printable ASCII characters pass', async (t) => {
  t.equal(apiKeyProblem(''), 'is empty');
  t.equal(apiKeyProblem('abc'), 'is 3 characters long, shorter than the 16 required');
  t.match(apiKeyProblem('0123456789 abcdef'), /spaces/);
  t.match(apiKeyProblem('0123456789abcdef\t'), /printable ASCII/);
  t.match(apiKeyProblem('0123456789abcdéf'), /printable ASCII/);
  t.equal(apiKeyProblem('0123456789abcdef'), undefined);
  t.equal(apiKeyProblem('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'), undefined);
});

t.test('generated on first start into a 0600 file (the directory made if needed), read back later', async (t) => {
  const stateDir = path.join(t.testdir(), 'state');
  const first = resolveApiKey(undefined, stateDir);
  const file = path.join(stateDir, 'api-key');
  t.match(first, { generated: true, file });
  t.match(first.key, /^[A-Za-z0-9_-]{32}$/);
  t.equal(readFileSync(file, 'utf8'), `${first.key}\n`);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(resolveApiKey(undefined, stateDir), { key: first.key, generated: false, file });
  t.same(resolveApiKey('configured-key-0123', stateDir), { key: 'configured-key-0123', generated: false }, 'a configured key wins');
});

t.test('an empty, short or garbled key file is refused with ERR_CONFIG and what to do', async (t) => {
  const stateDir = t.testdir();
  const file = path.join(stateDir, 'api-key');
  for (const [content, problem] of [
    ['', 'is empty'],
    ['  \n', 'is empty'],
    ['0123456789\n', 'is 10 characters long, shorter than the 16 required'],
    ['0123456789\u0000abcdefgh', 'contains spaces or characters outside printable ASCII'],
  ]) {
    writeFileSync(file, content!);
    t.throws(() => resolveApiKey(undefined, stateDir), {
      code: 'ERR_CONFIG',
      message: `The API key in ${file} ${problem}: delete the file to have a new key generated at the next start, or write a key of at least 16 printable ASCII characters into it (or set EARSHOT_API_KEY)`,
    });
    t.equal(readFileSync(file, 'utf8'), content, 'the file is left for the operator to look at');
  }
  writeFileSync(file, '  hand-written-key-0123\n');
  t.equal(resolveApiKey(undefined, stateDir).key, 'hand-written-key-0123', 'surrounding whitespace is not part of the key');
});

t.test('a file that cannot be read is not taken for a missing one', async (t) => {
  const stateDir = t.testdir({ 'api-key': { 'not-a-file': '' } });
  t.throws(() => resolveApiKey(undefined, stateDir), { code: 'EISDIR' });
});

t.test('the announcement: the file in the log, the key only on an interactive terminal', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', journal: true, write: (l) => lines.push(l) });
  const resolved = { key: 'generated-key-0123456789abcdefgh', generated: true, file: '/var/lib/earshot/api-key' };
  const piped: string[] = [];
  announceGeneratedKey(resolved, log, { isTTY: false, write: (s) => piped.push(s) });
  t.same(piped, []);
  t.equal(lines.length, 1);
  t.match(lines[0], /^<6>earshot: generated an API key.* file=\/var\/lib\/earshot\/api-key$/);
  t.notMatch(lines.join('\n'), resolved.key);

  const shown: string[] = [];
  announceGeneratedKey(resolved, log, { isTTY: true, write: (s) => shown.push(s) });
  t.match(shown.join(''), `  ${resolved.key}\n`);
  t.notMatch(lines.join('\n'), resolved.key, 'still not in the log');

  lines.length = 0;
  announceGeneratedKey({ ...resolved, generated: false }, log, { isTTY: true, write: (s) => shown.push(s) });
  t.same(lines, [], 'nothing when the key was not generated now');
});
