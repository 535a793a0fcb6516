// The service clock on its own: continuous while the wall clock steps, believing the wall
// clock only from the floor on, and rebasing stored times on every step.
import t from 'tap';

import { ServiceClock, releaseTime, type ServiceClockOptions } from '../src/clock.js';
import { memoryLogger } from './delivery/harness.js';
import { fakeTime, fiveYears, hour } from './helpers/fake-time.js';
import { until } from './helpers/poll.js';

function setup(options: Partial<ServiceClockOptions> = {}, start?: number) {
  const time = fakeTime(start);
  const { log, lines } = memoryLogger();
  const rebases: number[] = [];
  const clock = new ServiceClock({
    wall: time.wall,
    monotonic: time.monotonic,
    synchronized: () => false,
    log,
    rebase: async (deltaMs, switchOver) => {
      rebases.push(deltaMs);
      switchOver();
    },
    ...options,
  });
  return { time, clock, rebases, lines };
}

t.test('follows a believable wall clock; differences up to 5 s are followed without a rebase', async (t) => {
  const { time, clock, rebases } = setup();
  t.equal(clock.now(), time.wall(), 'before start(): the wall clock');
  await clock.start(0, 60_000);
  t.teardown(() => clock.stop());
  t.equal(clock.now(), time.wall());
  time.advance(1234);
  t.equal(clock.now(), time.wall());
  time.step(4_000); // NTP slewing and small corrections
  t.equal(clock.now(), time.wall() - 4_000, 'continuous until checked');
  t.equal(await clock.check(), 0);
  t.equal(clock.now(), time.wall(), 'then on the wall clock again');
  t.same(rebases, []);
  t.ok(clock.followingWallClock);
});

for (const [direction, step] of [
  ['forward', fiveYears],
  ['back', -fiveYears],
] as const) {
  t.test(`a step ${direction} by 5 years: time stays continuous, then one rebase by the step`, async (t) => {
    const { time, clock, rebases, lines } = setup({}, Date.UTC(2033, 0, 1));
    await clock.start(0, 60_000);
    t.teardown(() => clock.stop());
    const before = clock.now();
    time.step(step);
    time.advance(1000);
    t.equal(clock.now(), before + 1000, 'no jump before the check');
    t.equal(await clock.check(), step);
    t.same(rebases, [step]);
    t.equal(clock.now(), time.wall(), 'the switch happened inside the rebase');
    t.equal(await clock.check(), 0, 'once');
    t.ok(lines.some((l) => / warn .*the wall clock stepped; stored times moved with it.* stepMs=-?157680000000/.test(l)));
  });
}

t.test('a wall clock before the floor is not believed: time counts on from the floor; the first believable reading is a step', async (t) => {
  const newestStored = Date.UTC(2027, 5, 1);
  const { time, clock, rebases, lines } = setup({}, 0); // booted at 1970
  await clock.start(newestStored, 60_000);
  t.teardown(() => clock.stop());
  t.equal(clock.now(), newestStored, 'starts at the newest time the store has seen');
  t.notOk(clock.followingWallClock);
  t.ok(lines.some((l) => / warn .*the wall clock is not set.* wall=1970-01-01T00:00:00\.000Z/.test(l)));
  time.advance(hour);
  t.equal(await clock.check(), 0);
  t.equal(clock.now(), newestStored + hour, 'counting on with the monotonic clock');
  time.setWall(releaseTime + 1000); // after the release, still before the store's newest time
  t.equal(await clock.check(), 0, 'still not believed');
  // NTP synchronizes: the device was off for 30 days.
  time.setWall(newestStored + 30 * 24 * hour + hour);
  t.equal(await clock.check(), 30 * 24 * hour);
  t.same(rebases, [30 * 24 * hour]);
  t.ok(clock.followingWallClock);
  t.equal(clock.now(), time.wall());
  t.ok(lines.some((l) => / info .*the wall clock is set; following it again/.test(l)));
  time.setWall(1000);
  t.equal(await clock.check(), 0, 'set back to 1970 while running: not believed, no rebase');
  t.same(rebases, [30 * 24 * hour]);
  t.notOk(clock.followingWallClock);
});

t.test('a synchronized wall clock behind the store is believed: the stored times move back at start', async (t) => {
  const newestStored = Date.UTC(2031, 0, 1); // a run with a clock years ahead
  const { time, clock, rebases } = setup({ synchronized: () => true }, Date.UTC(2027, 0, 1));
  await clock.start(newestStored, 60_000);
  t.teardown(() => clock.stop());
  t.same(rebases, [Date.UTC(2027, 0, 1) - newestStored]);
  t.equal(clock.now(), time.wall());
  time.setWall(releaseTime - 1);
  t.equal(await clock.check(), 0, 'but never before the release');
});

t.test('a wall clock a little behind the store at start (a small correction between runs) is no step', async (t) => {
  const { time, clock, rebases, lines } = setup();
  await clock.start(time.wall() + 3_000, 60_000);
  t.teardown(() => clock.stop());
  t.equal(clock.now(), time.wall());
  t.ok(clock.followingWallClock);
  t.same(rebases, []);
  t.notOk(lines.some((l) => / warn /.test(l)));
});

t.test('a rebase that fails moves nothing and is tried again at the next check', async (t) => {
  let fail = true;
  const { time, clock, lines } = setup({
    rebase: async (_deltaMs, switchOver) => {
      switchOver();
      if (fail) throw new Error('disk full');
    },
  });
  await clock.start(0, 60_000);
  t.teardown(() => clock.stop());
  const before = clock.now();
  time.step(hour);
  t.equal(await clock.check(), 0);
  t.equal(clock.now(), before, 'still on the old basis');
  t.ok(lines.some((l) => / error .*stored times could not be moved.*disk full/.test(l)));
  fail = false;
  t.equal(await clock.check(), hour);
  t.equal(clock.now(), time.wall());
});

t.test('checks run on their timer, one at a time, until stop()', async (t) => {
  let release: () => void = () => {};
  const rebases: number[] = [];
  const { time, clock } = setup({
    rebase: (deltaMs, switchOver) => {
      rebases.push(deltaMs);
      switchOver();
      return new Promise<void>((resolve) => (release = resolve));
    },
  });
  const started = clock.start(0, 5);
  await started;
  time.step(hour);
  await until(() => rebases.length === 1, 2000, 'the timer to check');
  t.equal(await clock.check(), 0, 'a check while one is rebasing does nothing');
  release();
  clock.stop();
  time.step(hour);
  await new Promise((r) => setTimeout(r, 30));
  t.same(rebases, [hour], 'no checks after stop()');
});
