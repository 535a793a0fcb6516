// The LMDB outbox: transactional enqueue, per-order-key lines, outcomes, dead letters, pruning.
import { createHash } from 'node:crypto';

import t from 'tap';

import { inSlices } from '../../src/store/slices.js';

import { Outbox } from '../../src/delivery/outbox.js';
import { openStore, testDelivery, testKind } from './harness.js';

const url = 'http://192.168.1.50:8000/callback';

t.test('enqueue joins the caller transaction: the job write and the delivery commit together', async (t) => {
  const db = openStore(t, t.testdir());
  const outbox = new Outbox(db);
  const jobs = db.db<{ status: string }, string>('jobs');
  const record = await db.durably(() => {
    jobs.putSync('job-1', { status: 'completed' });
    return outbox.enqueue(testDelivery(url));
  });
  t.match(record, { seq: 1, state: 'pending', attempts: 0, target: { kind: testKind, key: url, url }, event: 'recognitions.completed' });
  t.match(record.id, /^[0-9a-f-]{36}$/);
  t.same(outbox.get(record.id), record);
  t.same(jobs.get('job-1'), { status: 'completed' });
  t.same(outbox.counts(), { pending: 1, delivered: 0, dead: 0 });
  t.same(
    [...outbox.due()].map((d) => d.id),
    [record.id],
  );
});

t.test('a caller transaction that throws takes its deliveries with it', async (t) => {
  const db = openStore(t, t.testdir());
  const outbox = new Outbox(db);
  const jobs = db.db<{ status: string }, string>('jobs');
  await t.rejects(
    db.durably(() => {
      jobs.putSync('job-1', { status: 'completed' });
      outbox.enqueue(testDelivery(url));
      throw new Error('the state change failed');
    }),
    /the state change failed/,
  );
  t.equal(jobs.get('job-1'), undefined);
  t.same(outbox.counts(), { pending: 0, delivered: 0, dead: 0 });
  t.same([...outbox.due()], []);
  t.equal((await outbox.enqueueDurably(testDelivery(url))).seq, 1, 'the sequence number was rolled back too');
});

t.test('it survives closing and reopening the store', async (t) => {
  const dir = t.testdir();
  const first = openStore(t, dir);
  const record = await new Outbox(first).enqueueDurably({ ...testDelivery(url), id: 'fixed_id-1', headers: { 'X-Extra': '1' } });
  // A fleet event's stable id (src/fleet/events.ts) is a delivery id as it is.
  const event = await new Outbox(first).enqueueDurably({ ...testDelivery(url), id: 'job-1:completed:2' });
  t.equal(event.state, 'pending');
  await first.close();
  const outbox = new Outbox(openStore(t, dir));
  t.same(outbox.get('fixed_id-1'), record);
  t.same(outbox.get('job-1:completed:2'), event);
  t.equal((await outbox.enqueueDurably(testDelivery(url, 'job-2'))).seq, 3, 'seq keeps counting');
});

t.test('an input that cannot be sent never throws: it is stored as a dead letter with the reason', async (t) => {
  const db = openStore(t, t.testdir());
  const outbox = new Outbox(db);
  const first = await outbox.enqueueDurably({ ...testDelivery(url), id: 'dup' });
  const cases: Array<[Parameters<Outbox['enqueue']>[0], RegExp]> = [
    [{ ...testDelivery(url), id: 'dup' }, /the delivery id dup is already used/],
    [{ ...testDelivery(url), id: 'has.dot' }, /delivery id/],
    [testDelivery('ftp://x/y'), /target\.url/],
    [testDelivery(' http:host/x'), /target\.url/],
    [{ ...testDelivery(url), target: { kind: 'Not A Kind', key: url, url } }, /target\.kind/],
    [{ ...testDelivery(url), target: { kind: testKind, key: '', url } }, /target\.key/],
    [{ ...testDelivery(url), headers: { 'X-Bad': 'a\r\nInjected: 1' } }, /header "X-Bad"/],
    [{ ...testDelivery(url), headers: { 'bad name': 'x' } }, /header "bad name"/],
  ];
  for (const [input, reason] of cases) {
    // Inside a caller's transaction, as a job's state change enqueues: it commits.
    const record = await db.durably(() => outbox.enqueue(input));
    t.match(record, { state: 'dead', attempts: 0, lastError: /^not enqueued: / }, String(reason));
    t.match(record.lastError, reason);
    t.not(record.id, 'dup', 'a used id is never reused');
    t.same(outbox.get(record.id), record, 'stored');
  }
  t.same(outbox.get(first.id), first, 'the first dup is untouched');
  t.same(outbox.counts(), { pending: 1, delivered: 0, dead: cases.length });
  t.equal(outbox.listDead().length, cases.length, 'listed as dead letters');
  t.same(
    [...outbox.due()].map((d) => d.id),
    [first.id],
    'nothing of them is due',
  );
});

t.test('every pending delivery is due on its own: a retrying one holds back no other', async (t) => {
  const db = openStore(t, t.testdir());
  let now = 1_000_000;
  const outbox = new Outbox(db, { now: () => now });
  const a1 = await outbox.enqueueDurably(testDelivery(url, 'a', 'recognitions.started'));
  now += 10;
  const a2 = await outbox.enqueueDurably(testDelivery(url, 'a', 'recognitions.completed'));
  const b1 = await outbox.enqueueDurably(testDelivery(url, 'b'));
  t.same(
    [...outbox.due()].map((d) => d.id),
    [a1.id, a2.id, b1.id],
  );

  await outbox.recordAttempt(a1.id, { result: 'retry', at: now, status: 500, error: 'HTTP 500', nextAttemptAt: now + 5000 });
  t.same(
    [...outbox.due()],
    [
      { id: a2.id, dueAt: now },
      { id: b1.id, dueAt: now },
      { id: a1.id, dueAt: now + 5000 },
    ],
    "the same job's later event is due while the earlier one waits for its retry",
  );
  t.same(
    [...outbox.due(now)].map((d) => d.id),
    [a2.id, b1.id],
    'due(until) stops at until',
  );
  t.match(outbox.get(a1.id), { attempts: 1, lastStatus: 500, lastError: 'HTTP 500', nextAttemptAt: now + 5000, state: 'pending' });

  await outbox.recordAttempt(a1.id, { result: 'delivered', at: now + 5001, status: 200 });
  t.match(outbox.get(a1.id), { state: 'delivered', attempts: 2, deliveredAt: now + 5001, lastStatus: 200, lastError: undefined });
  t.same(
    [...outbox.due()].map((d) => d.id),
    [a2.id, b1.id],
  );
  t.same(outbox.counts(), { pending: 2, delivered: 1, dead: 0 });
  t.equal(outbox.oldestPending()?.id, a2.id);
  t.equal(await outbox.recordAttempt(a1.id, { result: 'dead', at: now }), undefined, 'a finished delivery ignores further outcomes');
});

t.test('dead letters: listed by target kind and key, redelivered one or all', async (t) => {
  const db = openStore(t, t.testdir());
  const outbox = new Outbox(db);
  const hook = {
    target: { kind: 'test-hook', key: 'hook-7', url: 'http://10.0.0.9/hook' },
    event: 'TranscriptionCompletion',
    body: '{}',
  };
  const a = await outbox.enqueueDurably(testDelivery(url, 'a'));
  const b = await outbox.enqueueDurably(hook);
  const c = await outbox.enqueueDurably(hook);
  for (const id of [a.id, b.id, c.id]) await outbox.recordAttempt(id, { result: 'dead', at: Date.now(), status: 500, error: 'HTTP 500' });
  t.same(outbox.counts(), { pending: 0, delivered: 0, dead: 3 });
  t.same(
    outbox.listDead().map((r) => r.id),
    [a.id, b.id, c.id],
  );
  t.same(
    outbox.listDead({ key: url }).map((r) => r.id),
    [a.id],
  );
  t.same(
    outbox.listDead({ kind: 'test-hook', key: 'hook-7' }).map((r) => r.id),
    [b.id, c.id],
  );
  t.same(
    outbox.listDead({ key: 'hook-7' }, 1).map((r) => r.id),
    [b.id],
  );
  t.same(outbox.listDead({ kind: testKind, key: 'hook-7' }), []);
  t.same(
    outbox.list('dead', { kind: 'test-hook' }).map((r) => r.id),
    [b.id, c.id],
    'list() sorts by send order',
  );

  const a2 = await outbox.enqueueDurably(testDelivery(url, 'a'));
  const revived = await outbox.redeliver(a.id);
  t.match(revived, { id: a.id, state: 'pending', attempts: 0, lastStatus: 500 });
  t.ok(revived!.seq > a2.seq, 'queued again, with a new sequence number');
  t.equal(revived!.deadAt, undefined);
  t.same(
    [...outbox.due()].map((d) => d.id),
    [a2.id, a.id],
    'due at once, like any other',
  );
  t.equal(await outbox.redeliver(a.id), undefined, 'only dead letters can be redelivered');
  t.equal(await outbox.redeliverAll({ key: 'hook-7' }), 2);
  t.same(outbox.counts(), { pending: 4, delivered: 0, dead: 0 });
  t.same(outbox.listDead(), []);
});

t.test('pending deliveries by target: kind and key both have to match', async (t) => {
  const outbox = new Outbox(openStore(t, t.testdir()));
  const other = 'http://10.0.0.8/other';
  const a = await outbox.enqueueDurably(testDelivery(url, 'a'));
  const b = await outbox.enqueueDurably(testDelivery(other, 'b'));
  const hook = await outbox.enqueueDurably({ ...testDelivery(url, 'c'), target: { kind: 'test-hook', key: url, url } });
  const ids = (records: Array<{ id: string }>) => records.map((r) => r.id).sort();
  t.same(ids(outbox.listPending()), ids([a, b, hook]));
  t.same(ids(outbox.listPending({ key: url })), ids([a, hook]));
  t.same(
    outbox.listPending({ key: url, kind: testKind }).map((r) => r.id),
    [a.id],
  );
  t.same(
    outbox.listPending({ kind: 'test-hook' }).map((r) => r.id),
    [hook.id],
  );
  t.same(outbox.listPending({ key: other, kind: 'test-hook' }), []);
  t.same(
    outbox.list('pending', { kind: testKind }).map((r) => r.id),
    [a.id, b.id],
  );
});

t.test('delivered deliveries: listed newest first, by target, at most `limit`', async (t) => {
  const now = 1_000_000;
  const outbox = new Outbox(openStore(t, t.testdir()), { now: () => now });
  const other = 'http://10.0.0.8/other';
  const first = await outbox.enqueueDurably(testDelivery(url, 'first'));
  const second = await outbox.enqueueDurably(testDelivery(other, 'second'));
  const third = await outbox.enqueueDurably(testDelivery(url, 'third'));
  const dead = await outbox.enqueueDurably(testDelivery(url, 'dead'));
  // Finished in another order than queued: the listing follows when they were delivered.
  await outbox.recordAttempt(third.id, { result: 'delivered', at: now + 10, status: 200 });
  await outbox.recordAttempt(first.id, { result: 'delivered', at: now + 20, status: 204 });
  await outbox.recordAttempt(dead.id, { result: 'dead', at: now + 30 });
  await outbox.recordAttempt(second.id, { result: 'delivered', at: now + 40, status: 200 });
  const ids = (records: Array<{ id: string }>) => records.map((r) => r.id);
  t.same(ids(outbox.list('delivered')), [second.id, first.id, third.id], 'newest first');
  t.same(ids(outbox.list('delivered', { key: url })), [first.id, third.id], 'one target');
  t.same(ids(outbox.list('delivered', {}, 2)), [second.id, first.id], 'the newest two');
  t.same(ids(outbox.list('delivered', {}, 0)), []);
  t.same(ids(outbox.list('dead')), [dead.id], 'dead letters apart');
  t.same(ids(outbox.list('pending')), []);
});

t.test('discarding pending deliveries of a removed target leaves the others due', async (t) => {
  const outbox = new Outbox(openStore(t, t.testdir()));
  const gone = 'http://10.0.0.5/old';
  const x1 = await outbox.enqueueDurably(testDelivery(gone, 'x'));
  const keep = await outbox.enqueueDurably(testDelivery(url, 'x'));
  await outbox.enqueueDurably(testDelivery(gone, 'y'));
  t.equal(await outbox.discardPending({ kind: testKind, key: gone }), 2);
  t.equal(outbox.get(x1.id), undefined);
  t.same(
    [...outbox.due()].map((d) => d.id),
    [keep.id],
  );
  t.same(outbox.counts(), { pending: 1, delivered: 0, dead: 0 });
  await t.rejects(outbox.discardPending({ key: gone }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('pruning deletes delivered records after 7 days and dead letters after 30 by default', async (t) => {
  const day = 24 * 60 * 60 * 1000;
  let now = 100 * day;
  const outbox = new Outbox(openStore(t, t.testdir()), { now: () => now });
  const old = await outbox.enqueueDurably(testDelivery(url, 'old'));
  const recent = await outbox.enqueueDurably(testDelivery(url, 'recent'));
  const dead = await outbox.enqueueDurably(testDelivery(url, 'dead'));
  const waiting = await outbox.enqueueDurably(testDelivery(url, 'waiting'));
  await outbox.recordAttempt(old.id, { result: 'delivered', at: now - 8 * day, status: 200 });
  await outbox.recordAttempt(recent.id, { result: 'delivered', at: now - 6 * day, status: 200 });
  await outbox.recordAttempt(dead.id, { result: 'dead', at: now - 8 * day });
  t.equal(await outbox.prune(), 1);
  t.equal(outbox.get(old.id), undefined);
  t.ok(outbox.get(recent.id) && outbox.get(dead.id) && outbox.get(waiting.id));
  now += 30 * day;
  t.equal(await outbox.prune(), 2, 'recent and dead');
  t.same(outbox.counts(), { pending: 1, delivered: 0, dead: 0 });
  t.equal(await outbox.prune({ deliveredMs: 0, deadMs: 0 }), 0, 'pending deliveries are never pruned');
});

t.test('pruning a backlog in slices: at most `limit` per transaction, all of it through inSlices', async (t) => {
  const day = 24 * 60 * 60 * 1000;
  const outbox = new Outbox(openStore(t, t.testdir()), { now: () => 100 * day });
  for (let i = 0; i < 250; i++) {
    const d = await outbox.enqueueDurably(testDelivery(url, `e${i}`));
    await outbox.recordAttempt(d.id, { result: i % 2 ? 'delivered' : 'dead', at: 10 * day, status: 200 });
  }
  t.equal(await outbox.prune({ limit: 100 }), 100, 'one slice');
  const slices: number[] = [];
  const total = await inSlices(async (limit) => {
    const n = await outbox.prune({ limit });
    slices.push(n);
    return n;
  }, 60);
  t.equal(total, 150);
  t.same(slices, [60, 60, 30]);
  t.same(outbox.counts(), { pending: 0, delivered: 0, dead: 0 });
});

t.test('records stored by the release before delivery adapters are upgraded: keyed, secrets erased, each due on its own', async (t) => {
  const db = openStore(t, t.testdir());
  const records = db.db<Record<string, unknown>, string>('outbox');
  const index = db.db<string | number, (string | number)[]>('outbox-index');
  // Two pending deliveries exactly as that release wrote them (target kinds and a copy of the secrets).
  const legacy = (id: string, seq: number, target: object, signing: object, line = id) => ({
    id,
    seq,
    orderKey: `k-${line}`,
    target,
    event: 'e',
    body: '{"id":"job-1"}',
    headers: {},
    signing,
    createdAt: 1000,
    attempts: 0,
    nextAttemptAt: 1000,
    state: 'pending',
  });
  await db.durably(() => {
    records.putSync(
      'cb',
      legacy('cb', 1, { kind: 'ibm-callback', url: 'http://10.0.0.1/cb' }, { ibm: { secret: 's1', algorithm: 'sha1' }, standard: { secret: 's1' } }),
    );
    records.putSync(
      'hk',
      legacy('hk', 2, { kind: 'azure-webhook', url: 'http://10.0.0.2/hook', hookId: 'hook-9' }, { azure: { secret: 's2' }, standard: { secret: 's2' } }),
    );
    // A later event of the same job, waiting in cb's line: not due while cb was pending.
    records.putSync('cb2', legacy('cb2', 3, { kind: 'ibm-callback', url: 'http://10.0.0.1/cb' }, { ibm: { secret: 's1', algorithm: 'sha1' } }, 'cb'));
    for (const [seq, id, line] of [
      [1, 'cb', 'cb'],
      [2, 'hk', 'hk'],
      [3, 'cb2', 'cb'],
    ] as const) {
      index.putSync(['line', createHash('sha256').update(`k-${line}`).digest('base64url').slice(0, 22), seq], id);
      if (id !== 'cb2') index.putSync(['due', 1000, seq], id);
    }
    index.putSync(['seq'], 3);
  });
  const outbox = new Outbox(db);
  t.equal(await outbox.upgrade(), 3);
  t.same(outbox.get('cb')!.target, { kind: 'ibm-callback', key: 'http://10.0.0.1/cb', url: 'http://10.0.0.1/cb' });
  t.same(outbox.get('hk')!.target, { kind: 'azure-webhook', key: 'hook-9', url: 'http://10.0.0.2/hook' });
  t.notOk(
    ['cb', 'hk', 'cb2'].some((id) => 'signing' in outbox.get(id)! || 'orderKey' in outbox.get(id)!),
    'no secret and no line is left in the outbox',
  );
  t.same(
    [...outbox.due()].map((d) => d.id),
    ['cb', 'hk', 'cb2'],
    'each due on its own, the one that waited in a line included',
  );
  t.same([...index.getKeys({ start: ['line'], end: ['line', '\uffff'] })], [], 'no line keys remain');
  t.same(outbox.counts(), { pending: 3, delivered: 0, dead: 0 });
  t.same(
    outbox.listPending({ kind: 'azure-webhook', key: 'hook-9' }).map((r) => r.id),
    ['hk'],
  );
  t.equal(await outbox.upgrade(), 0, 'once is enough');
  await outbox.recordAttempt('cb', { result: 'delivered', at: 2000, status: 200 });
  t.same(outbox.counts(), { pending: 2, delivered: 1, dead: 0 }, 'outcomes are recorded as for new records');
});
