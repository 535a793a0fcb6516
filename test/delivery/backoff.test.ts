// The retry schedule, its jitter and Retry-After parsing.
import t from 'tap';

import { createRetrySchedule, defaultRetryDelaysMs, maxAttempts, parseRetryAfter, retryDelay } from '../../src/delivery/backoff.js';

t.test('the default schedule: immediate, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 24 h, then dead', async (t) => {
  const s = 1000;
  t.same(defaultRetryDelaysMs, [5 * s, 300 * s, 1800 * s, 7200 * s, 18000 * s, 36000 * s, 86400 * s]);
  const schedule = createRetrySchedule();
  t.equal(maxAttempts(schedule), 8);
  t.equal(schedule.jitter, 0.2);
  const exact = () => 0.5; // factor 1
  t.equal(retryDelay(schedule, 1, exact), 5000);
  t.equal(retryDelay(schedule, 7, exact), 86_400_000);
  t.equal(retryDelay(schedule, 8, exact), null, 'after the 8th attempt: dead');
});

t.test('jitter stays within ±20% and varies', async (t) => {
  const schedule = createRetrySchedule({ retryDelaysMs: [1000] });
  t.equal(
    retryDelay(schedule, 1, () => 0),
    800,
  );
  t.equal(
    retryDelay(schedule, 1, () => 0.999999),
    1200,
  );
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const d = retryDelay(schedule, 1)!;
    t.ok(d >= 800 && d <= 1200, `${d} within bounds`);
    seen.add(d);
  }
  t.ok(seen.size > 20, 'random');
  t.equal(retryDelay(createRetrySchedule({ retryDelaysMs: [1000], jitter: 0 }), 1), 1000);
});

t.test('schedules are validated', async (t) => {
  t.throws(() => createRetrySchedule({ retryDelaysMs: [-1] }), { code: 'ERR_INVALID_ARGUMENT', message: /retry delay/ });
  t.throws(() => createRetrySchedule({ retryDelaysMs: [Number.NaN] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => createRetrySchedule({ jitter: 1 }), { code: 'ERR_INVALID_ARGUMENT', message: /jitter/ });
  t.equal(maxAttempts(createRetrySchedule({ retryDelaysMs: [] })), 1, 'no retries at all');
});

t.test('Retry-After: seconds or an HTTP date', async (t) => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  t.equal(parseRetryAfter('120', now), 120_000);
  t.equal(parseRetryAfter(' 0 ', now), 0);
  t.equal(parseRetryAfter(['7', '9'], now), 7000);
  t.equal(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', now), 30_000);
  t.equal(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now), 0, 'a past date means now');
  for (const bad of [undefined, '', '-5', '1.5', 'soon', '12abc']) t.equal(parseRetryAfter(bad, now), undefined, String(bad));
});
