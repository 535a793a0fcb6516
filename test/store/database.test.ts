// The state database's group commit on a real LMDB environment.
import t, { type Test } from 'tap';

import { StateDatabase } from '../../src/store/database.js';

function openDatabase(t: Test): StateDatabase {
  const db = new StateDatabase(t.testdir());
  db.open();
  t.teardown(() => db.close());
  return db;
}

t.test('changes issued together share one commit; the one that throws is rolled back alone', async (t) => {
  const db = openDatabase(t);
  const jobs = db.db<number, string>('jobs');
  const outcomes = await Promise.allSettled(
    [0, 1, 2, 3, 4].map((i) =>
      db.durably(() => {
        jobs.putSync(`job-${i}`, i);
        if (i === 2) throw new Error('change 2 fails after its write');
        return i;
      }),
    ),
  );
  t.same(
    outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
    [0, 1, 'change 2 fails after its write', 3, 4],
    'each caller hears its own outcome',
  );
  t.same(
    [0, 1, 2, 3, 4].map((i) => jobs.get(`job-${i}`)),
    [0, 1, undefined, 3, 4],
    'the failing change left nothing; the others before and after it committed',
  );
  t.same(db.stats, { commits: 1, changes: 5 }, 'one commit carried the five changes');

  await db.durably(() => jobs.putSync('later', 1));
  t.same(db.stats, { commits: 2, changes: 6 }, 'a change issued after the flush is a commit of its own');
});

t.test('a change sees what the changes batched before it wrote', async (t) => {
  const db = openDatabase(t);
  const counts = db.db<number, string>('jobs-counts');
  const increment = () => db.durably(() => counts.putSync('n', (counts.get('n') ?? 0) + 1));
  await Promise.all(Array.from({ length: 10 }, increment));
  t.equal(counts.get('n'), 10, 'ten read-modify-writes in one batch count to ten');
});
