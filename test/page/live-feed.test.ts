// The page's live feed: a snapshot at once, then only changes, and no timer while nobody listens.
import t from 'tap';

import { LiveFeed, queueSnapshot } from '../../src/page/live-feed.js';

t.test('sends the snapshot on open, then each change once; stops when the last listener leaves', async (t) => {
  let value = 1;
  let taken = 0;
  const feed = new LiveFeed(() => {
    taken++;
    return { value };
  }, 5);
  const a: string[] = [];
  const b: string[] = [];
  const closeA = feed.route.open((m) => a.push(m) > 0);
  t.same(a, ['{"value":1}']);
  const closeB = feed.route.open((m) => b.push(m) > 0);
  t.same(b, ['{"value":1}']);
  await new Promise((r) => setTimeout(r, 30));
  t.same(a, ['{"value":1}'], 'nothing changed, nothing sent');
  value = 2;
  await new Promise((r) => setTimeout(r, 30));
  t.same(a, ['{"value":1}', '{"value":2}']);
  t.same(b, ['{"value":1}', '{"value":2}']);
  closeA();
  closeB();
  const after = taken;
  await new Promise((r) => setTimeout(r, 30));
  t.equal(taken, after, 'no snapshots while nobody listens');
});

t.test('queueSnapshot: the running job with its progress, the others without', async (t) => {
  const jobs = [
    { id: 'b', status: 'processing', created: 2000, updated: 2500, audioBytes: 10, userToken: 'x.mp3', warnings: [] },
    { id: 'a', status: 'failed', created: 1000, updated: 1500, audioBytes: 5, audioDurationMs: 1500, error: { code: 'E', message: 'broken' }, warnings: [] },
  ] as any[];
  const snapshot = queueSnapshot({ newest: (limit: number) => jobs.slice(0, limit), progressOf: (id: string) => (id === 'b' ? 42.7 : undefined) });
  t.same(snapshot.jobs, [
    {
      id: 'b',
      status: 'processing',
      created: new Date(2000).toISOString(),
      updated: new Date(2500).toISOString(),
      progress: 42,
      userToken: 'x.mp3',
      audioBytes: 10,
    },
    {
      id: 'a',
      status: 'failed',
      created: new Date(1000).toISOString(),
      updated: new Date(1500).toISOString(),
      audioBytes: 5,
      durationSeconds: 1.5,
      error: 'broken',
    },
  ]);
});
