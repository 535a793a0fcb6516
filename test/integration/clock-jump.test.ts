// The service when the wall clock steps: a finished job outlives a 5-year step forward,
// and a restart with the clock not yet set counts on from the newest time in the store.
import { readFileSync } from 'node:fs';

import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';
import { fakeTime, fiveYears } from '../helpers/fake-time.js';
import { jfkMp3 } from '../helpers/models.js';

t.test('results_ttl of 60 minutes: a 5-year step forward does not expire the job; a restart at 1970 keeps it too', async (t) => {
  const stateDir = t.testdir();
  const time = fakeTime(Date.now());
  // The monotonic clock is the real one here (the service waits for a real transcription).
  const started = performance.now();
  const clocks = {
    wall: () => time.wall() + (performance.now() - started),
    monotonic: () => time.monotonic() + (performance.now() - started),
    synchronized: () => false,
  };
  const running = await startApp(t, {}, stateDir, clocks);
  const { base, auth, app } = running;
  const res = await fetch(`${base}/v1/recognitions?results_ttl=60`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/mp3' },
    body: readFileSync(jfkMp3),
  });
  t.equal(res.status, 201);
  const { id } = (await res.json()) as { id: string };
  t.equal((await waitForJob(base, auth, id)).status, 'completed');

  time.step(fiveYears);
  // Wall and monotonic readings are taken a moment apart on the real clock: a ms either way.
  const step = await app.clock.check();
  t.ok(Math.abs(step - fiveYears) <= 5, `the step is noticed (${step} ms)`);
  await app.sweep();
  const after = await fetch(`${base}/v1/recognitions/${id}`, { headers: auth });
  t.equal(after.status, 200, 'the job is still there');
  t.match(await after.json(), { status: 'completed' });
  await app.stop();

  // Power cut; the Pi boots at 1970 and the service starts before NTP answers.
  time.setWall(0);
  const again = await startApp(t, {}, stateDir, clocks);
  t.notOk(again.app.clock.followingWallClock);
  const job = (await (await fetch(`${again.base}/v1/recognitions/${id}`, { headers: auth })).json()) as { created: string };
  t.ok(again.app.clock.now() >= Date.parse(job.created), 'time counts on from the newest job, not from 1970');
  await again.app.sweep();
  t.equal((await fetch(`${again.base}/v1/recognitions/${id}`, { headers: auth })).status, 200, 'and the job is kept');
});
