// The web hook registry on a real LMDB store with a scripted challenge: the challenge's
// request and verdicts, PATCH re-running it, disabling on failed deliveries, deletion.
import { createHmac } from 'node:crypto';
import t from 'tap';

import { parseCreateV21, parseCreateV31, parsePatchV21 } from '../../src/azure/webhook-input.js';
import { AppError } from '../../src/errors.js';
import type { DeliveryRecord } from '../../src/delivery/outbox.js';
import { WebhookRegistry } from '../../src/azure/webhooks.js';
import { createLogger } from '../../src/log.js';
import { registrySetup } from '../helpers/azure-fixtures.js';

const base = 'http://pi.local';
const input = (extra: Record<string, unknown> = {}) =>
  parseCreateV31({ displayName: 'h', webUrl: 'http://10.0.0.5/cb?x=1', events: { transcriptionCompletion: true }, ...extra });

t.test('create: stored NotStarted at once, then challenged (token in the query and as the signed body); Succeeded', async (t) => {
  const s = registrySetup(t);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const answer = s.answer;
  s.answer = async (url) => {
    await held;
    return answer(url);
  };
  const hook = await s.registry.create(input({ properties: { secret: 'k' } }), base);
  t.equal(hook.status, 'NotStarted', 'registered before it is challenged');
  t.equal(s.registry.get(hook.id)!.status, 'NotStarted', 'and stored so');
  t.match(s.registry.refusal(hook.id), /status NotStarted/, 'no events before the challenge passed');
  release();
  await s.registry.challenged();
  t.match(s.registry.get(hook.id), { status: 'Succeeded' });
  t.notOk(s.registry.get(hook.id)!.error);
  t.equal(s.challenges.length, 1);
  const { url, headers, body } = s.challenges[0]!;
  const target = new URL(url);
  t.equal(`${target.origin}${target.pathname}`, 'http://10.0.0.5/cb');
  t.equal(target.searchParams.get('x'), '1', 'the URL keeps its own query');
  const token = target.searchParams.get('validationToken')!;
  t.match(token, /^[0-9a-f]{32}$/);
  t.equal(body, token, 'the body is the token');
  t.equal(headers['X-MicrosoftSpeechServices-Event'], 'Challenge');
  t.equal(headers['X-MicrosoftSpeechServices-Signature'], createHmac('sha256', 'k').update(body).digest('base64'), 'signed over exactly the body');
  s.clock += 1000;
  const unsigned = await s.registry.create(input(), base);
  await s.registry.challenged();
  t.notOk('X-MicrosoftSpeechServices-Signature' in s.challenges[1]!.headers, 'no secret, no signature');
  t.same(
    s.registry.all().map((h) => h.id),
    [hook.id, unsigned.id],
    'oldest first',
  );
});

t.test('create: a failed challenge leaves the hook Failed, with the reason', async (t) => {
  const s = registrySetup(t);
  const cases: Array<[() => unknown, RegExp]> = [
    [
      () => ({ status: 200, body: 'wrong' }),
      /^Challenge response payload doesn't match validation token. Expected: [0-9a-f]{32}, actual: a 5-byte body that differs$/,
    ],
    [() => ({ status: 500, body: '' }), /responded with status code 500/],
    [() => ({ status: 302, body: '', location: 'http://10.9.9.9/elsewhere?token=x' }), /HTTP 302 \(a redirect\); redirects are not followed/],
    [() => Promise.reject(new AppError('ERR_TARGET_TIMEOUT', 'slow')), /did not respond within 5 seconds/],
    [
      () => Promise.reject(new AppError('ERR_TARGET_UNREACHABLE', 'could not deliver: connection refused')),
      /Challenge failed: could not deliver: connection refused/,
    ],
    // Allowed when registered, forbidden when challenged (DNS changed meanwhile).
    [
      () => Promise.reject(new AppError('ERR_TARGET_FORBIDDEN', 'host x resolves to 127.0.0.1: loopback')),
      /Challenge failed: .*cannot be used: host x resolves/,
    ],
  ];
  for (const [answer, message] of cases) {
    s.answer = answer as never;
    const hook = await s.registry.create(input(), base);
    t.equal(hook.status, 'NotStarted');
    await s.registry.challenged();
    t.match(s.registry.get(hook.id), { status: 'Failed', error: { code: 'InvalidCallbackUri', message } });
    t.equal(s.registry.refusal(hook.id)?.includes('disabled (status Failed'), true);
  }
});

t.test('create: a target outside the allow-list is refused and not stored; nothing is challenged', async (t) => {
  const s = registrySetup(t, async () => {
    throw new AppError('ERR_TARGET_FORBIDDEN', 'host x resolves to 127.0.0.1: loopback');
  });
  await t.rejects(s.registry.create(input(), base), {
    code: 'ERR_TARGET_FORBIDDEN',
    status: 400,
    innerCode: 'InvalidCallbackUri',
    message: /cannot be used: host x resolves to 127.0.0.1/,
  });
  t.same(s.registry.all(), []);
  t.same(s.challenges, []);
});

t.test('v2.1 hooks: no challenge, the target is checked', async (t) => {
  const s = registrySetup(t, async (url) => {
    if (url.includes('169.254')) throw new AppError('ERR_TARGET_FORBIDDEN', 'link-local');
  });
  const v21 = { configuration: { url: 'http://10.0.0.7/h' }, events: ['TranscriptionCompletion'], name: 'n' };
  const hook = await s.registry.create(parseCreateV21(v21), base);
  t.equal(hook.status, 'Succeeded');
  await s.registry.challenged();
  t.equal(s.challenges.length, 0);
  await t.rejects(s.registry.create(parseCreateV21({ ...v21, configuration: { url: 'http://169.254.169.254/' } }), base), {
    status: 400,
    message: /link-local/,
  });
});

t.test('PATCH: plain changes keep the challenge; a new URL or a Failed hook runs it again, after the PATCH answered', async (t) => {
  const s = registrySetup(t);
  const hook = await s.registry.create(input({ properties: { secret: 'a' } }), base);
  await s.registry.challenged();
  const renamed = await s.registry.update(hook.id, { displayName: 'renamed', events: { transcriptionCreation: true } }, 'http://other');
  await s.registry.challenged();
  t.equal(s.challenges.length, 1, 'no new challenge');
  t.match(renamed, {
    displayName: 'renamed',
    events: ['transcriptionCreation', 'transcriptionCompletion'],
    secret: 'a',
    baseUrl: 'http://other',
    status: 'Succeeded',
  });

  s.answer = () => ({ status: 404, body: '' });
  const moved = await s.registry.update(hook.id, { webUrl: 'http://10.0.0.6/new' }, base);
  t.match(moved, { webUrl: 'http://10.0.0.6/new', status: 'NotStarted' });
  await s.registry.challenged();
  t.equal(s.challenges.length, 2);
  t.match(s.registry.get(hook.id), { webUrl: 'http://10.0.0.6/new', status: 'Failed', error: { message: /status code 404/ } });

  s.answer = (url) => ({ status: 200, body: url.searchParams.get('validationToken')! });
  const fixed = await s.registry.update(hook.id, { secret: null }, base);
  t.equal(fixed.status, 'NotStarted');
  t.notOk(fixed.error, 'the error is cleared');
  await s.registry.challenged();
  t.equal(s.challenges.length, 3, 'a PATCH of a Failed hook runs the challenge');
  t.equal(s.registry.get(hook.id)!.status, 'Succeeded');
  t.notOk(s.registry.get(hook.id)!.secret, 'secret removed');
  t.notOk('X-MicrosoftSpeechServices-Signature' in s.challenges[2]!.headers);

  // Two PATCHes in a row: only the verdict of the latest challenge counts.
  let calls = 0;
  s.answer = async (url) => {
    calls++;
    if (calls === 1) {
      await new Promise((r) => setTimeout(r, 50));
      return { status: 500, body: '' };
    }
    return { status: 200, body: url.searchParams.get('validationToken')! };
  };
  await s.registry.update(hook.id, { webUrl: 'http://10.0.0.7/a' }, base);
  await new Promise((r) => setTimeout(r, 5));
  await s.registry.update(hook.id, { webUrl: 'http://10.0.0.7/b' }, base);
  await s.registry.challenged();
  t.match(s.registry.get(hook.id), { webUrl: 'http://10.0.0.7/b', status: 'Succeeded' }, 'the superseded challenge did not count');
  await t.rejects(s.registry.update('missing', {}, base), { code: 'ERR_NOT_FOUND' });
});

t.test('a hook left NotStarted by a stop is challenged at start', async (t) => {
  const s = registrySetup(t);
  s.answer = () => new Promise<never>(() => undefined); // the service stops before it is answered
  const hook = await s.registry.create(input(), base);
  t.equal(s.registry.get(hook.id)!.status, 'NotStarted');
  // A new registry on the same store, as after a restart.
  const registry = new WebhookRegistry({
    db: s.db,
    outbox: s.outbox,
    log: createLogger({ level: 'error' }),
    challenge: async (url) => ({ status: 200, body: new URL(url).searchParams.get('validationToken')! }),
    checkTarget: async () => undefined,
  });
  registry.resumeChallenges();
  await registry.challenged();
  t.equal(registry.get(hook.id)!.status, 'Succeeded');
});

t.test('410 disables at once; dead letters do not; 72 h of failures without a success do; PATCH re-enables; delete drops pending deliveries', async (t) => {
  const s = registrySetup(t);
  const hook = await s.registry.create(input(), base);
  await s.registry.challenged();
  t.equal(s.registry.refusal(hook.id), undefined);
  const hour = 3_600_000;
  const record = (extra: Partial<DeliveryRecord>): DeliveryRecord =>
    ({
      id: 'd1',
      event: 'TranscriptionCompletion',
      target: { kind: 'azure-webhook', key: hook.id, url: hook.webUrl },
      attempts: 8,
      lastError: 'HTTP 500',
      ...extra,
    }) as DeliveryRecord;
  await s.registry.deliveryGone(record({ lastStatus: 410 }));
  t.match(s.registry.get(hook.id), { status: 'Failed', error: { code: 'DeliveryFailed', message: /410 Gone to delivery d1/ } });
  await s.registry.deliveryFailed(record({ id: 'd2' }));
  t.match(s.registry.get(hook.id)!.error!.message, /410/, 'the first reason stays');
  t.notOk(s.registry.get(hook.id)!.failingSince, 'a Failed hook does not count failures');
  t.match(s.registry.refusal(hook.id), /disabled \(status Failed: .*410.*PATCH it to re-enable/);

  await s.registry.update(hook.id, {}, base);
  await s.registry.challenged();
  t.equal(s.registry.get(hook.id)!.status, 'Succeeded');
  const firstFailure = s.clock;
  await s.registry.deliveryFailed(record({ id: 'd3' }));
  t.match(s.registry.get(hook.id), { status: 'Succeeded', failingSince: firstFailure }, 'the first failure is recorded');
  s.clock += 71 * hour;
  await s.registry.deliveryFailed(record({ id: 'd4' }));
  t.match(s.registry.get(hook.id), { status: 'Succeeded', failingSince: firstFailure }, 'failing for 71 h: still enabled');
  await s.registry.deliveryDelivered(record({ id: 'd5' }));
  t.notOk(s.registry.get(hook.id)!.failingSince, 'a success ends the run');
  s.clock += 2 * hour;
  await s.registry.deliveryFailed(record({ id: 'd6' }));
  t.equal(s.registry.get(hook.id)!.failingSince, s.clock, 'a new run starts at its own first failure');
  s.clock += 72 * hour - 1;
  await s.registry.deliveryFailed(record({ id: 'd7' }));
  t.equal(s.registry.get(hook.id)!.status, 'Succeeded', 'one ms short of 72 h');
  s.clock += 1;
  await s.registry.deliveryFailed({ ...record({}), target: { kind: 'ibm-callback', key: 'x', url: 'x' } });
  t.equal(s.registry.get(hook.id)!.status, 'Succeeded', 'other targets are not counted');
  await s.registry.deliveryFailed(record({ id: 'd8' }));
  t.match(s.registry.get(hook.id)!.error, {
    code: 'DeliveryFailed',
    message:
      /^Every delivery to the web hook has failed since 2026-01-04T01:00:00.000Z \(72 h or more; EARSHOT_HOOK_FAILURE_HOURS\), the last one d8 \(TranscriptionCompletion\): HTTP 500\. PATCH/,
  });
  const reenabled = await s.registry.update(hook.id, {}, base);
  await s.registry.challenged();
  t.equal(s.registry.get(hook.id)!.status, 'Succeeded');
  t.notOk(reenabled.failingSince, 'a PATCH starts the count afresh');

  await s.outbox.enqueueDurably({ target: { kind: 'azure-webhook', key: hook.id, url: hook.webUrl }, event: 'e', body: '{}' });
  const other = await s.outbox.enqueueDurably({ target: { kind: 'azure-webhook', key: 'other', url: hook.webUrl }, event: 'e', body: '{}' });
  t.equal(await s.registry.delete(hook.id), true);
  t.same(
    [...s.outbox.pending()].map((r) => r.id),
    [other.id],
    "only the deleted hook's deliveries are dropped",
  );
  t.equal(await s.registry.delete(hook.id), false);
  t.match(s.registry.refusal(hook.id), /no longer exists/);
});

t.test('v2.1 update: name, description, events (the whole list), url, secret, active, properties; re-enables a Failed hook', async (t) => {
  const s = registrySetup(t);
  const created = await s.registry.create(
    parseCreateV21({ name: 'n', configuration: { url: 'http://10.0.0.7/h', secret: 's1' }, events: ['TranscriptionCompletion'], properties: { a: '1' } }),
    base,
  );
  const off = await s.registry.update(created.id, parsePatchV21({ active: false }), base);
  t.match(off, { active: false, status: 'Succeeded', displayName: 'n', secret: 's1', properties: { a: '1' } });
  t.match(s.registry.refusal(created.id), /inactive/, 'an inactive hook receives nothing');
  const on = await s.registry.update(
    created.id,
    parsePatchV21({
      active: true,
      name: 'renamed',
      description: 'd',
      events: ['transcriptionCreation', 'TranscriptionCompletion'],
      configuration: { url: 'http://10.0.0.8/new', secret: '' },
      properties: { b: '2' },
    }),
    base,
  );
  t.match(on, {
    active: true,
    displayName: 'renamed',
    description: 'd',
    webUrl: 'http://10.0.0.8/new',
    events: ['transcriptionCreation', 'transcriptionCompletion'],
    v21Events: ['TranscriptionCreation', 'TranscriptionCompletion'],
    properties: { b: '2' },
    status: 'Succeeded',
  });
  t.notOk(on.secret, 'an empty secret removes it');
  t.same(s.checked, ['http://10.0.0.7/h', 'http://10.0.0.8/new'], 'a new URL is checked');
  t.same(s.challenges, [], 'v2.1 hooks are never challenged');
  await s.registry.disable(created.id, { code: 'DeliveryFailed', message: '410' });
  t.match(await s.registry.update(created.id, parsePatchV21({}), base), { status: 'Succeeded' }, 'an empty update re-enables');
  t.notOk(s.registry.get(created.id)!.error);
  t.throws(() => parsePatchV21({ events: [] }), { name: 'AppError', innerCode: 'InvalidWebHookEventKind' });
  t.throws(() => parsePatchV21({ events: ['Ping'] }), { message: /Ping cannot be subscribed to/ });
  t.throws(() => parsePatchV21({ active: 'yes' }), { name: 'AppError', innerCode: 'InvalidPayload' });
  t.throws(() => parsePatchV21({ configuration: 'x' }), { name: 'AppError', innerCode: 'InvalidPayload' });
  t.throws(() => parsePatchV21({ name: null }), { name: 'AppError', innerCode: 'InvalidPayload' });
});
