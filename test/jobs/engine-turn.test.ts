// EngineTurn.acquireWhen: how the fleet worker waits for the engine (src/app.ts).
import t from 'tap';

import { EngineTurn } from '../../src/jobs/engine-turn.js';

t.test('free but not to be taken: it waits out the poll, so timers still run (no microtask spin), then takes it', async (t) => {
  const turn = new EngineTurn();
  let allowed = false;
  let looks = 0;
  setTimeout(() => {
    allowed = true;
  }, 30);
  // A spinning loop would look thousands of times and never let the timer above run: the
  // guard lets it out so that the assertion below fails instead of the test hanging.
  const release = await turn.acquireWhen(() => ++looks > 10_000 || allowed, new AbortController().signal, 10);
  t.ok(release, 'taken');
  t.ok(allowed, 'taken once allowed');
  t.ok(looks < 20, `looked ${looks} times in about 30 ms of 10 ms polls`);
  t.ok(turn.busy);
  release!();
});

t.test('held by another: taken as soon as it is given back, not at the next poll', async (t) => {
  const turn = new EngineTurn();
  const other = turn.tryAcquire()!;
  const started = Date.now();
  setTimeout(other, 20);
  const release = await turn.acquireWhen(() => true, new AbortController().signal, 60_000);
  t.ok(release, 'taken');
  t.ok(Date.now() - started < 30_000, 'not at the minute-long poll');
  release!();
  t.notOk(turn.busy);
});

t.test('aborted: undefined at once, the turn left free', async (t) => {
  const turn = new EngineTurn();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 20);
  t.equal(await turn.acquireWhen(() => false, controller.signal, 60_000), undefined);
  const other = turn.tryAcquire()!;
  const held = new AbortController();
  setTimeout(() => held.abort(), 20);
  t.equal(await turn.acquireWhen(() => true, held.signal, 60_000), undefined, 'also while another holds it');
  other();
  t.notOk(turn.busy);
});
