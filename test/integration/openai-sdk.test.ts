// OpenAI's audio API against the real service with the official `openai` npm package:
// every response_format, translations, timestamp granularities, streaming, errors in
// OpenAI's shape, and the model list the SDK shares with IBM's on GET /v1/models.
import { readdirSync } from 'node:fs';
import path from 'node:path';

import OpenAI, { toFile } from 'openai';
import t from 'tap';

import type { DecoderScript } from '../../scripts/lib/scripted-decoder.js';
import { apiKey, startApp } from '../helpers/app.js';
import { wav } from '../helpers/pcm.js';
import { scriptedModel } from '../helpers/scripted-models.js';

/** Two segments with distinct tokens (a scripted model emits each token once). */
const script: DecoderScript = [
  { start: 0, end: 1.5, tokens: [' Hello', ' there', ',', ' general', ' Kenobi', '.'] },
  { start: 1.52, end: 2.5, tokens: [' You', ' are', ' a', ' bold', ' one', '!'] },
];
const spokenText = 'Hello there, general Kenobi. You are a bold one!';

const model = await scriptedModel(t, script);
const { base, stateDir } = await startApp(t, { EARSHOT_MODEL: model, EARSHOT_MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) });
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const speech = () => toFile(wav(2.5), 'speech.wav', { type: 'audio/wav' });
const spoolFiles = () => readdirSync(path.join(stateDir, 'spool'));
const jobsLeft = async () =>
  ((await (await fetch(`${base}/v1/recognitions`, { headers: { Authorization: `Bearer ${apiKey}` } })).json()) as { recognitions: unknown[] }).recognitions;

t.test('json (the default): the text; the job is gone afterwards', async (t) => {
  const result = await client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1' });
  t.equal(result.text, spokenText);
  t.same(await jobsLeft(), [], 'deleted once answered');
  t.same(spoolFiles(), [], 'nothing left in the spool');
});

t.test('text, srt and vtt: plain text and subtitles', async (t) => {
  const text = await client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1', response_format: 'text' });
  t.equal(text, `${spokenText}\n`);
  const srt = await client.audio.transcriptions.create({ file: await speech(), model: 'any-name', response_format: 'srt' });
  t.match(srt, /^1\n00:00:00,000 --> 00:00:01,\d{3}\nHello there, general Kenobi\.\n\n2\n00:00:01,\d{3} --> 00:00:02,\d{3}\nYou are a bold one!\n$/);
  const vtt = await client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1', response_format: 'vtt' });
  t.match(vtt, /^WEBVTT\n\n00:00:00\.000 --> 00:00:01\.\d{3}\nHello there, general Kenobi\.\n\n00:00:01\.\d{3} --> 00:00:02\.\d{3}\nYou are a bold one!\n$/);
});

t.test('verbose_json with word and segment timestamps', async (t) => {
  const result = await client.audio.transcriptions.create({
    file: await speech(),
    model: 'whisper-1',
    language: 'en',
    response_format: 'verbose_json',
    timestamp_granularities: ['word', 'segment'],
  });
  t.match(result, { task: 'transcribe', language: 'english', duration: 2.5, text: spokenText });
  t.equal(result.segments?.length, 2);
  const [first] = result.segments!;
  t.same(Object.keys(first!).sort(), ['avg_logprob', 'compression_ratio', 'end', 'id', 'no_speech_prob', 'seek', 'start', 'temperature', 'text', 'tokens']);
  t.match(first, { id: 0, start: 0, text: 'Hello there, general Kenobi.' });
  t.ok(first!.end > 1 && first!.end <= 1.6, `segment end ${first!.end}`);
  t.same(
    result.words?.map((w) => w.word),
    ['Hello', 'there,', 'general', 'Kenobi.', 'You', 'are', 'a', 'bold', 'one!'],
  );
  for (const w of result.words!) t.ok(w.start <= w.end && w.end <= 2.5, `${w.word} ${w.start}-${w.end}`);

  const segmentsOnly = await client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1', response_format: 'verbose_json' });
  t.notOk('words' in segmentsOnly, 'no words unless asked for');
});

t.test('translations: English text; verbose_json says translate', async (t) => {
  const result = await client.audio.translations.create({ file: await speech(), model: 'whisper-1' });
  t.equal(result.text, spokenText);
  const verbose = await client.audio.translations.create({ file: await speech(), model: 'whisper-1', response_format: 'verbose_json', prompt: 'Star Wars.' });
  t.match(verbose, { task: 'translate', language: 'english', text: spokenText });
});

t.test('stream: a delta per segment, then done with the whole text', async (t) => {
  const stream = await client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1', stream: true });
  const events: Array<{ type: string; delta?: string; text?: string }> = [];
  for await (const event of stream) events.push(event);
  t.same(
    events.map((e) => e.type),
    ['transcript.text.delta', 'transcript.text.delta', 'transcript.text.done'],
  );
  t.equal(
    events
      .slice(0, 2)
      .map((e) => e.delta)
      .join(''),
    spokenText,
    'the deltas add up to the text',
  );
  t.equal(events[2]!.text, spokenText);
});

t.test("errors in OpenAI's shape", async (t) => {
  const refused = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err as InstanceType<typeof OpenAI.APIError>;
    }
    throw new Error('expected a refusal');
  };

  const badFormat = await refused(client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1', response_format: 'xml' as 'json' }));
  t.equal(badFormat.status, 400);
  t.match(badFormat.error, { message: /response_format/, type: 'invalid_request_error', param: 'response_format', code: null });

  const noFile = await fetch(`${base}/v1/audio/transcriptions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}` },
    body: (() => {
      const form = new FormData();
      form.append('model', 'whisper-1');
      return form;
    })(),
  });
  t.equal(noFile.status, 400);
  t.match(await noFile.json(), { error: { message: /no file part/, type: 'invalid_request_error', param: 'file', code: null } });

  const noModel = await refused(client.audio.transcriptions.create({ file: await speech() } as { file: File; model: string }));
  t.match(noModel, { status: 400, error: { param: 'model' } });

  const tooLarge = await refused(client.audio.transcriptions.create({ file: await toFile(Buffer.alloc(5 * 1024 * 1024), 'big.wav'), model: 'whisper-1' }));
  t.equal(tooLarge.status, 413);
  t.match(tooLarge.error, { message: /exceeds the maximum of 4194304 bytes/, type: 'invalid_request_error' });

  const badLanguage = await refused(client.audio.transcriptions.create({ file: await speech(), model: 'whisper-1', language: 'de' }));
  t.match(badLanguage, { status: 400, error: { param: 'language', message: /English-only/ } });

  const wrongKey = await refused(new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong-key-0123456789', maxRetries: 0 }).models.list());
  t.equal(wrongKey.status, 401);

  const unknown = await fetch(`${base}/v1/audio/speech`, { method: 'POST', headers: { Authorization: `Bearer ${apiKey}` } });
  t.equal(unknown.status, 404);
  t.match(
    await unknown.json(),
    { error: { message: /No such resource/, type: 'invalid_request_error', param: null, code: null } },
    'unmatched /v1/audio paths are OpenAI’s',
  );
  const unauthorized = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST' });
  t.equal(unauthorized.status, 401);
  t.match(await unauthorized.json(), { error: { type: 'invalid_request_error', code: 'invalid_api_key' } });
  t.same(spoolFiles(), [], 'no refusal leaves a file');
});

t.test('models: the list and retrieve, beside IBM’s models in the same body', async (t) => {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  t.same(ids, ['whisper-1', 'scripted']);
  t.match(await client.models.retrieve('whisper-1'), { id: 'whisper-1', object: 'model', owned_by: 'earshot' });
  t.match(await client.models.retrieve('scripted'), { id: 'scripted', object: 'model' });
  t.ok(Number.isInteger((await client.models.retrieve('whisper-1')).created));

  const headers = { Authorization: `Bearer ${apiKey}` };
  const list = (await (await fetch(`${base}/v1/models`, { headers })).json()) as { models: Array<{ name: string }>; object: string };
  t.equal(list.object, 'list');
  t.ok(
    list.models.some((m) => m.name === 'en-US_BroadbandModel'),
    "IBM's models are there too",
  );
  t.match(
    await (await fetch(`${base}/v1/models/en-US_BroadbandModel`, { headers })).json(),
    { name: 'en-US_BroadbandModel', language: 'en-US' },
    'IBM names: IBM’s model',
  );
  const missing = await fetch(`${base}/v1/models/gpt-4o`, { headers });
  t.equal(missing.status, 404, 'names neither serves: 404');
});
