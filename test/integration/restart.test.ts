// Power cuts and restarts: the service as a child process, killed with SIGKILL (nothing
// flushed on the way out) or stopped with SIGTERM, then started again on the same state.
// Its waits and retry schedules are written for real hardware and scaled under emulation
// (scripts/arm64-test), where the recordings are shorter too.
import t from 'tap';

import { apiKey, waitForJob } from '../helpers/app.js';
import { budget, emulated } from '../helpers/emulation.js';
import { spawnService, type ServiceProcess } from '../helpers/service-process.js';
import { until } from '../helpers/poll.js';
import { startReceiver } from '../helpers/receiver.js';
import { l16 } from '../helpers/pcm.js';

const auth = { Authorization: `Bearer ${apiKey}` };
/**
 * Seconds of audio that are still being transcribed when the test kills the service. Under
 * emulation one 30 s window takes long enough, and 120 s would take many minutes.
 */
const LONG = emulated ? 30 : 120;
/** Ten retries: enough for the deliveries to outlive the job and still be pending at the kill. */
const retrySchedule = Array(10)
  .fill(`${budget(200)}ms`)
  .join(',');

async function submit(base: string, seconds: number, query = ''): Promise<string> {
  const res = await fetch(`${base}/v1/recognitions${query}`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
    body: l16(seconds),
  });
  if (res.status !== 201) throw new Error(`submit: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function waitForStatus(base: string, id: string, status: string): Promise<void> {
  const current = async () => ((await (await fetch(`${base}/v1/recognitions/${id}`, { headers: auth })).json()) as { status: string }).status;
  await until(async () => (await current()) === status, budget(12_000), `job ${id} to reach ${status}`);
}

async function kill(service: ServiceProcess): Promise<void> {
  service.proc.kill('SIGKILL');
  await service.exited;
}

t.test('SIGKILL while processing: after a restart the job runs again and completes', async (t) => {
  const dir = t.testdir();
  let service = await spawnService(dir);
  const id = await submit(service.base, LONG);
  const other = await submit(service.base, 2);
  await waitForStatus(service.base, id, 'processing');
  await kill(service);

  service = await spawnService(dir);
  t.teardown(() => kill(service));
  t.match(await waitForJob(service.base, auth, id, budget(120_000)), { status: 'completed' }, 'the interrupted job');
  t.match(await waitForJob(service.base, auth, other, budget(120_000)), { status: 'completed' }, 'the job behind it');
  t.ok(service.output.some((l) => l.includes('requeueing a job interrupted by a restart')));
});

t.test('a job that kills the service three times is failed instead of crash-looping', async (t) => {
  const dir = t.testdir();
  let service = await spawnService(dir);
  const id = await submit(service.base, LONG);
  for (let round = 0; round < 3; round++) {
    await waitForStatus(service.base, id, 'processing');
    await kill(service);
    service = await spawnService(dir);
  }
  t.teardown(() => kill(service));
  const body = await waitForJob(service.base, auth, id, budget(10_000));
  t.match(body, { status: 'failed', error_code: 'ERR_INTERRUPTED', error: /interrupted 3 times/ });
});

t.test('SIGTERM drains: the running job goes back to waiting, exit 0, then completes after restart', async (t) => {
  const dir = t.testdir();
  let service = await spawnService(dir);
  const id = await submit(service.base, LONG);
  await waitForStatus(service.base, id, 'processing');
  service.proc.kill('SIGTERM');
  t.equal(await service.exited, 0, 'clean exit');
  service = await spawnService(dir);
  t.teardown(() => kill(service));
  t.match(await waitForJob(service.base, auth, id, budget(120_000)), { status: 'completed' });
  t.notOk(
    service.output.some((l) => l.includes('interrupted')),
    'a drained job is not counted as interrupted',
  );
});

t.test('deliveries pending across a SIGKILL are sent after the restart', async (t) => {
  // A receiver that answers the challenge, then goes away while the job runs.
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const dir = t.testdir();
  let service = await spawnService(dir, { EARSHOT_RETRY_SCHEDULE: retrySchedule });
  const register = await fetch(`${service.base}/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}&user_secret=x`, {
    method: 'POST',
    headers: auth,
  });
  t.equal(register.status, 201);
  await receiver.close();
  const id = await submit(service.base, 2, `?callback_url=${encodeURIComponent(receiver.url)}&user_token=u1`);
  await waitForJob(service.base, auth, id, budget(60_000));
  // Killed once both are queued and the receiver's absence has cost the first an attempt.
  const pendingUrl = `${service.base}/v1/callback_deliveries?state=pending&callback_url=${encodeURIComponent(receiver.url)}`;
  await until(
    async () => {
      const { deliveries } = (await (await fetch(pendingUrl, { headers: auth })).json()) as { deliveries: Array<{ attempts: number }> };
      return deliveries.length === 2 && deliveries[0]!.attempts >= 1;
    },
    budget(10_000),
    'a failed attempt of the first callback',
  );
  await kill(service);

  // The receiver comes back on the same port; so does the service.
  const back = await startReceiver(t, undefined, { path: '/callback', port: receiver.port });
  t.equal(back.url, receiver.url);
  service = await spawnService(dir, { EARSHOT_RETRY_SCHEDULE: retrySchedule });
  t.teardown(() => kill(service));
  const posts = await back.posts(2, budget(10_000));
  const bodies = posts.map((p) => ({ ...(JSON.parse(p.body) as { event: string; id: string }), deliveryId: String(p.headers['webhook-id']) }));
  t.same(
    bodies.map((b) => [b.id, b.event]).sort(),
    [
      [id, 'recognitions.completed'],
      [id, 'recognitions.started'],
    ],
    'both events after the restart (each on its own schedule)',
  );
  t.equal(new Set(bodies.map((b) => b.deliveryId)).size, 2);
});
