// What clients send to create and change web hooks: v3.1 WebHook / WebHookUpdate, v2.1
// hooks, each refused with Azure's detailed code when wrong.
import t from 'tap';

import { mergeEvents, parseCreateV21, parseCreateV31, parsePatchV31 } from '../../src/azure/webhook-input.js';

const valid = {
  displayName: 'TranscriptionCompletionWebHook',
  properties: { secret: 's3cret' },
  webUrl: 'https://contoso.com/call/me/back',
  events: { transcriptionCompletion: true, transcriptionCreation: false },
  description: 'I registered this URL',
  customProperties: { team: 'a' },
};

t.test('v3.1 create: the swagger example', async (t) => {
  t.same(parseCreateV31(valid), {
    apiVersion: 'v3.1',
    webUrl: valid.webUrl,
    displayName: valid.displayName,
    description: valid.description,
    events: ['transcriptionCompletion'],
    secret: 's3cret',
    customProperties: { team: 'a' },
    active: true,
  });
  const minimal = parseCreateV31({ displayName: 'x', webUrl: 'http://10.0.0.5/x', events: { ping: true }, properties: { secret: '' } });
  t.notOk('secret' in minimal, 'an empty secret is no secret');
});

t.test('v3.1 create: refusals with Azure inner codes', async (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [undefined, 'EmptyRequest', /empty/],
    [[1], 'InvalidPayload', /JSON WebHook object but is an array/],
    [{ ...valid, webUrl: undefined }, 'InvalidCallbackUri', /webUrl/],
    [{ ...valid, webUrl: 'ftp://x/y' }, 'InvalidCallbackUri', /http or https/],
    [{ ...valid, webUrl: 'not a url' }, 'InvalidCallbackUri', /not a valid absolute URL/],
    [{ ...valid, displayName: '' }, 'InvalidPayload', /displayName must not be empty/],
    [{ ...valid, displayName: undefined }, 'InvalidPayload', /displayName is required/],
    [{ ...valid, events: undefined }, 'InvalidPayload', /events is required/],
    [{ ...valid, events: ['TranscriptionCompletion'] }, 'InvalidWebHookEventKind', /object of booleans/],
    [{ ...valid, events: { transcriptionDone: true } }, 'InvalidWebHookEventKind', /Unknown web hook event 'transcriptionDone'/],
    [{ ...valid, events: { transcriptionCompletion: 'yes' } }, 'InvalidWebHookEventKind', /boolean/],
    [{ ...valid, events: { transcriptionCompletion: false } }, 'InvalidWebHookEventKind', /At least one event/],
    [{ ...valid, properties: { secret: 5 } }, 'InvalidPayload', /properties.secret/],
    [{ ...valid, customProperties: { k: 1 } }, 'InvalidPayload', /customProperties.k/],
    [{ ...valid, customProperties: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])) }, 'InvalidPayload', /at most 10/],
  ];
  for (const [body, inner, message] of cases) {
    t.throws(() => parseCreateV31(body), { code: 'ERR_INVALID_ARGUMENT', innerCode: inner, message }, `${inner} ${String(message)}`);
  }
});

t.test('v3.1 PATCH: only what is given; secret per Azure; nulls remove', async (t) => {
  t.same(parsePatchV31({ displayName: 'new' }), { displayName: 'new' }, 'no properties: secret unchanged');
  t.same(parsePatchV31({ properties: {} }), { secret: null }, 'properties without secret: no more signatures');
  t.same(parsePatchV31({ properties: { secret: '' } }), { secret: null });
  t.same(parsePatchV31({ properties: { secret: 'n' } }), { secret: 'n' });
  t.same(parsePatchV31({ description: null, customProperties: { a: null, b: 'x' }, events: { ping: null, transcriptionCreation: true } }), {
    description: null,
    events: { ping: null, transcriptionCreation: true },
    customProperties: { a: null, b: 'x' },
  });
  t.same(parsePatchV31({ webUrl: 'http://10.1.1.1/x' }), { webUrl: 'http://10.1.1.1/x' });
  t.throws(() => parsePatchV31({ webUrl: 'mailto:x' }), { name: 'AppError', innerCode: 'InvalidCallbackUri' });
  t.throws(() => parsePatchV31('x'), { name: 'AppError', innerCode: 'InvalidPayload' });
  t.same(mergeEvents(['transcriptionCompletion'], { transcriptionCreation: true }), ['transcriptionCreation', 'transcriptionCompletion']);
  t.throws(() => mergeEvents(['transcriptionCompletion'], { transcriptionCompletion: false }), { name: 'AppError', innerCode: 'InvalidWebHookEventKind' });
});

t.test('v2.1 create: the seed body', async (t) => {
  const seed = {
    configuration: { url: 'https://your.callback.url/goes/here', secret: '<my_secret>' },
    events: ['TranscriptionCompletion'],
    active: true,
    name: 'TranscriptionCompletionWebHook',
    description: 'This is a Webhook created to trigger an HTTP POST request when my audio file transcription is completed.',
    properties: { Active: 'True' },
  };
  t.same(parseCreateV21(seed), {
    apiVersion: 'v2.1',
    webUrl: seed.configuration.url,
    displayName: seed.name,
    description: seed.description,
    events: ['transcriptionCompletion'],
    v21Events: ['TranscriptionCompletion'],
    secret: '<my_secret>',
    properties: { Active: 'True' },
    active: true,
  });
  const mixed = parseCreateV21({ ...seed, events: ['transcriptioncompletion', 'DataImportCompletion', 'EndpointDataCollectionCompletion'], active: undefined });
  t.same(mixed.events, ['datasetCompletion', 'transcriptionCompletion'], 'mapped to v3.1 keys');
  t.same(mixed.v21Events, ['TranscriptionCompletion', 'DataImportCompletion', 'EndpointDataCollectionCompletion'], 'spelled as Azure does');
  t.equal(mixed.active, true, 'active by default');
  t.throws(() => parseCreateV21({ ...seed, events: ['Ping'] }), { innerCode: 'InvalidWebHookEventKind', message: /Ping cannot be subscribed/ });
  t.throws(() => parseCreateV21({ ...seed, events: [] }), { name: 'AppError', innerCode: 'InvalidWebHookEventKind' });
  t.throws(() => parseCreateV21({ ...seed, name: undefined }), { innerCode: 'InvalidPayload', message: /name is required/ });
  t.throws(() => parseCreateV21({ ...seed, configuration: { secret: 'x' } }), { name: 'AppError', innerCode: 'InvalidCallbackUri' });
  t.throws(() => parseCreateV21({ ...seed, active: 'yes' }), { name: 'AppError', innerCode: 'InvalidPayload' });
});
