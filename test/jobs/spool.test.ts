// The spool's directory fsync, shared by uploads that finish close together.
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import t from 'tap';

import { Spool } from '../../src/jobs/spool.js';

t.test('directory fsyncs: calls while one runs share the next one, which starts after it', async (t) => {
  const spool = new Spool(t.testdir());
  spool.open();
  const first = spool.syncDir();
  writeFileSync(spool.uploadPath('a'), 'x');
  // These arrive while the first runs: their entries may be newer than it.
  const later = Array.from({ length: 8 }, () => spool.syncDir());
  t.equal(new Set(later).size, 1, 'the eight share one fsync');
  t.not(later[0], first, 'and it is not the one already under way');
  let firstDone = false;
  void first.then(() => (firstDone = true));
  await later[0];
  t.ok(firstDone, 'the shared one ended after the first');
  await spool.syncDir();
  t.pass('a call after both starts a new one and resolves');
});

t.test('directory fsyncs keep one handle on the directory until close()', async (t) => {
  const spool = new Spool(t.testdir());
  spool.open();
  const handlesOnDir = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === spool.dir;
      } catch {
        return false; // the descriptor readdir itself used
      }
    }).length;
  t.equal(handlesOnDir(), 0);
  for (let i = 0; i < 5; i++) await spool.syncDir();
  t.equal(handlesOnDir(), 1, 'five fsyncs, one open handle');
  await spool.close();
  t.equal(handlesOnDir(), 0, 'closed');
  await spool.syncDir();
  t.equal(handlesOnDir(), 1, 'an fsync after close() opens it again');
  await spool.close();
});
