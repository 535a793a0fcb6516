// Faults: nothing accepted is lost.
//   1. SIGKILL at random moments (uploads, commits, transcriptions, deliveries) of the
//      service as `npm start` runs it, restarted each time on the same state directory,
//      while clients submit 50 jobs with IBM callbacks to a real receiver: every job that was
//      answered 201 completes, and every completion reaches the receiver at least once.
//   2. A receiver down for 10 minutes: the real service queues the deliveries of both
//      dialects and stops; the real dispatcher then works through that outbox, with the
//      dialects' own target adapters and real HTTP, on a simulated clock (the one thing not
//      real: 10 minutes and the retries after them cannot be waited for), restarted halfway;
//      once the receiver is back, every delivery arrives, and the service, started again,
//      has nothing pending and no dead letter.
// The disk-full flood is test/integration/disk-full.test.ts (it runs in npm test).
// Seeded: EARSHOT_FUZZ_SEED replays the kill times and the retry jitter.
import t from 'tap';

import { dialectFactories } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { Dispatcher, type DispatcherTimers } from '../../src/delivery/dispatcher.js';
import { sendRequest } from '../../src/delivery/http-client.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { TargetAdapters } from '../../src/delivery/targets.js';
import { DiskSpace } from '../../src/jobs/disk-space.js';
import { JobService } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { Spool } from '../../src/jobs/spool.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { apiKey, startApp, testServiceEnv, waitForJob } from '../helpers/app.js';
import { l16 } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { type Received, startReceiver } from '../helpers/receiver.js';
import { type ServiceProcess, spawnService } from '../helpers/service-process.js';
import { fuzzSeed, report, seededRandom } from './seed.js';

const seed = fuzzSeed(t, 'faults');
const auth = { Authorization: `Bearer ${apiKey}` };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('SIGKILL at random moments over 50 jobs: every accepted job completes, every completion is delivered', async (t) => {
  const random = seededRandom(seed);
  const jobsWanted = 50;
  const receiver = await startReceiver(t);
  const dir = t.testdir();
  // Quick retries: a callback cut off by a kill is due again soon after the restart.
  const env = { EARSHOT_RETRY_SCHEDULE: '200ms,500ms,1s,2s,2s,2s,2s,2s,2s,2s' };
  let service: ServiceProcess = await spawnService(dir, env);
  t.teardown(async () => {
    service.proc.kill('SIGKILL');
    await service.exited;
  });
  const callback = encodeURIComponent(receiver.url);
  t.equal((await fetch(`${service.base}/v1/register_callback?callback_url=${callback}`, { method: 'POST', headers: auth })).status, 201);

  const completed = async (base: string) => {
    const metrics = await (await fetch(`${base}/metrics`)).text();
    return Number(/earshot_jobs\{status="completed"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  };
  const accepted = new Set<string>();
  let unanswered = 0;
  let kills = 0;
  const started = Date.now();
  while (accepted.size < jobsWanted) {
    const life = service;
    let alive = true;
    // A client submitting every 100-400 ms; a kill cuts its upload off (no 201: not accepted).
    const client = (async () => {
      while (alive && accepted.size < jobsWanted) {
        try {
          const res = await fetch(`${life.base}/v1/recognitions?callback_url=${callback}`, {
            method: 'POST',
            headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
            body: l16(1 + Math.floor(random() * 3)),
          });
          if (res.status === 201) accepted.add(((await res.json()) as { id: string }).id);
          else t.fail(`submission answered ${res.status}: ${await res.text()}`);
        } catch {
          unanswered++;
        }
        await sleep(100 + random() * 300);
      }
    })();
    // Progress between kills: a job interrupted by the last kill runs first after the
    // restart, and a job interrupted three times would be failed on purpose (ERR_INTERRUPTED).
    const before = await completed(life.base);
    await until(async () => (await completed(life.base)) > before || accepted.size >= jobsWanted, 60_000, 'a job to complete in this life');
    await sleep(random() * 1500);
    life.proc.kill('SIGKILL');
    await life.exited;
    alive = false;
    await client;
    kills++;
    service = await spawnService(dir, env);
  }

  for (const id of accepted) {
    const job = (await waitForJob(service.base, auth, id, 120_000)) as { status: string; error_code?: string };
    t.equal(job.status, 'completed', `job ${id} completed${job.error_code ? ` (not ${job.error_code})` : ''}`);
  }
  const completions = (events: Received[]) =>
    new Set(events.filter((e) => e.body.includes('"recognitions.completed"')).map((e) => JSON.parse(e.body).id as string));
  await receiver.until((events) => [...accepted].every((id) => completions(events).has(id)), 'a completion callback of every accepted job', 60_000);
  // At least once: a callback cut off by a kill is sent again with its webhook-id. A job
  // interrupted while processing starts again, and that second start is an event of its own.
  const byEvent = new Map<string, Set<string>>();
  let resent = 0;
  for (const e of receiver.events()) {
    const { id, event } = JSON.parse(e.body) as { id: string; event: string };
    const ids = byEvent.get(`${id} ${event}`) ?? new Set<string>();
    if (ids.has(String(e.headers['webhook-id']))) resent++;
    ids.add(String(e.headers['webhook-id']));
    byEvent.set(`${id} ${event}`, ids);
  }
  const completedTwice = [...byEvent].filter(([key, ids]) => key.endsWith(' recognitions.completed') && ids.size > 1);
  t.same(completedTwice, [], 'one completion per job, under one webhook-id however often it is sent');
  const startedAgain = [...byEvent].filter(([key, ids]) => key.endsWith(' recognitions.started') && ids.size > 1).length;
  const listed = ((await (await fetch(`${service.base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: Array<{ id: string }> }).recognitions;
  report(
    t,
    `faults: ${kills} SIGKILLs in ${((Date.now() - started) / 1000).toFixed(1)} s; ${accepted.size} jobs accepted, all completed, ` +
      `every completion delivered; ${unanswered} uploads cut off by a kill (never answered, so not accepted), ` +
      `${listed.length - accepted.size} jobs committed whose 201 a kill cut off (completed too); ${receiver.events().length} callbacks received, ` +
      `${resent} of them sent again after a kill (same webhook-id), ${startedAgain} jobs started again after a kill`,
  );
});

/** A clock for the dispatcher: time moves only when the test says, and the timers fire in order. */
class SimulatedClock {
  private pending = new Map<number, { fn: () => void; at: number }>();
  private seq = 0;
  constructor(public now: number) {}

  readonly timers: DispatcherTimers = {
    set: (fn, ms) => {
      this.pending.set(++this.seq, { fn, at: this.now + ms });
      return this.seq;
    },
    clear: (handle) => this.pending.delete(handle as number),
  };

  /** Moves to `to`, firing every timer due on the way at its time, `settle` after each. */
  async advance(to: number, settle: () => Promise<void>): Promise<void> {
    for (;;) {
      const due = [...this.pending.entries()].filter(([, timer]) => timer.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = Math.max(this.now, due[1].at);
      due[1].fn();
      await settle();
    }
    this.now = to;
  }
}

t.test('a receiver down for 10 minutes: every delivery arrives once it is back', async (t) => {
  const minute = 60_000;
  let clock: SimulatedClock | undefined;
  const arrivals: Array<{ at: number; request: Received }> = [];
  let receiver = await startReceiver(t, (request) => {
    arrivals.push({ at: clock?.now ?? Date.now(), request });
    return { status: 200 };
  });
  const port = receiver.port;

  // The real service registers both dialects' targets while the receiver is up, then the
  // receiver goes down and 20 jobs complete: their callbacks and web hook deliveries fail.
  const stateDir = t.testdir();
  const first = await startApp(t, { EARSHOT_LOG_LEVEL: 'error' }, stateDir);
  const call = async (path: string, body?: string) => {
    const res = await fetch(`${first.base}${path}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, ...(body ? { body } : {}) });
    t.ok(res.status < 300, `${path}: ${res.status}`);
    return (await res.json()) as { self?: string };
  };
  await call(`/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}`);
  const hook = await call(
    '/speechtotext/v3.1/webhooks',
    JSON.stringify({ webUrl: `${receiver.url}/azure`, displayName: 'outage', events: { transcriptionCompletion: true } }),
  );
  const hookId = hook.self!.split('/').pop()!;
  await until(
    async () =>
      ((await (await fetch(`${first.base}/speechtotext/v3.1/webhooks/${hookId}`, { headers: auth })).json()) as { status: string }).status === 'Succeeded',
    10_000,
    'the web hook to pass its challenge',
  );
  await receiver.close();
  const jobs: string[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${first.base}/v1/recognitions?callback_url=${encodeURIComponent(receiver.url)}`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
      body: l16(1),
    });
    jobs.push(((await res.json()) as { id: string }).id);
  }
  for (const id of jobs) await waitForJob(first.base, auth, id);
  await first.app.stop();

  // The outbox as the service left it, driven by the real dispatcher and the dialects' adapters.
  const config = loadConfig({ file: null, env: testServiceEnv(stateDir) });
  const log = createLogger({ level: 'error' });
  const db = new StateDatabase(stateDir);
  db.open();
  t.teardown(() => db.close());
  clock = new SimulatedClock(Date.now());
  const now = () => clock!.now;
  const outbox = new Outbox(db, { now });
  const policy = new CidrPolicy(config.callbackCidrs);
  const targets = new TargetAdapters();
  const store = new JobStore(db);
  const jobService = new JobService({
    db,
    store,
    spool: new Spool(stateDir),
    disk: new DiskSpace(stateDir, 0),
    onNotified: () => {},
    onQueued: () => {},
    maxWaiting: 1,
    log,
  });
  const unused = () => {
    throw new Error('not used by deliveries');
  };
  for (const create of dialectFactories) {
    const dialect = create({
      config,
      log,
      db,
      jobs: jobService,
      outbox,
      policy,
      wakeDeliveries: unused,
      request: (input) => sendRequest({ ...input, policy }),
      model: unused,
      modelListings: unused,
    });
    for (const target of dialect.targets ?? []) targets.add(target);
    await dialect.start?.({ apiKey });
    // Started as the service starts them (Wyoming listens): stopped as it stops them.
    t.teardown(() => dialect.stop?.());
  }
  const queued = outbox.listPending();
  t.equal(queued.length, 60, 'pending: 20 × (started, completed) callbacks and 20 web hook completions');
  t.ok(
    queued.every((d) => d.attempts >= 1),
    'each was tried once by the service, in vain',
  );
  const random = seededRandom(seed);
  const dispatcher = () =>
    new Dispatcher({
      outbox,
      targets,
      policy,
      log,
      schedule: createRetrySchedule({ retryDelaysMs: config.retryDelaysMs }),
      now,
      random,
      timers: clock!.timers,
    });
  let running = dispatcher();
  const settle = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    await until(() => running.stats().inFlight === 0, 30_000, 'attempts in flight to end');
  };

  const down = clock.now;
  running.start();
  await settle();
  // Five minutes in, the service restarts (a new dispatcher over the same outbox).
  await clock.advance(down + 5 * minute, settle);
  await running.stop();
  running = dispatcher();
  running.start();
  await settle();
  await clock.advance(down + 10 * minute, settle);
  t.equal(arrivals.length, 0, 'nothing arrived while the receiver was down');
  t.equal(outbox.listPending().length, 60, 'after 10 minutes down, all 60 are still pending');
  t.equal(outbox.counts().dead, 0, 'and none is a dead letter');

  receiver = await startReceiver(
    t,
    (request) => {
      arrivals.push({ at: clock!.now, request });
      return { status: 200 };
    },
    { port },
  );
  const back = clock.now;
  while (outbox.listPending().length > 0 && clock.now < back + 6 * 60 * minute) await clock.advance(clock.now + minute, settle);
  await running.stop();

  t.equal(outbox.listPending().length, 0, 'nothing is pending once the receiver is back');
  t.equal(outbox.counts().dead, 0, 'no dead letter');
  const ids = new Set(arrivals.map((a) => String(a.request.headers['webhook-id'])));
  t.ok(
    queued.every((d) => ids.has(d.id)),
    'every delivery arrived',
  );
  const lastMinutes = (Math.max(...arrivals.map((a) => a.at)) - back) / minute;
  report(
    t,
    `faults: receiver down for 10 simulated minutes (dispatcher restarted at 5): ${queued.length} deliveries pending, ${outbox.counts().dead} dead; ` +
      `once back, all ${ids.size} arrived within ${lastMinutes.toFixed(1)} simulated minutes (the retry after 5 min is due 30 min ± 20 % later), ${arrivals.length} requests`,
  );
  db.close();

  // The service, started again on that state: nothing pending, nothing dead, for either dialect.
  const again = await startApp(t, { EARSHOT_LOG_LEVEL: 'error' }, stateDir);
  const list = async (path: string) => ((await (await fetch(`${again.base}${path}`, { headers: auth })).json()) as Record<string, unknown[]>) ?? {};
  t.same((await list('/v1/callback_deliveries?state=pending')).deliveries, [], 'IBM: no pending callback');
  t.same((await list('/v1/callback_deliveries?state=dead')).deliveries, [], 'IBM: no dead letter');
  t.same((await list(`/speechtotext/v3.1/webhooks/${hookId}/deliveries?state=pending`)).values, [], 'Azure: no pending delivery');
  t.same((await list(`/speechtotext/v3.1/webhooks/${hookId}/deliveries?state=dead`)).values, [], 'Azure: no dead letter');
});
