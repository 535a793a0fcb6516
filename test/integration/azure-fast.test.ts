// Azure's fast transcription (`POST /speechtotext/transcriptions:transcribe`) against the
// real service: forms built as Microsoft's samples build them (fetch + FormData with a
// Blob, the definition a JSON string), either order of the parts, Azure's error shape for
// every refusal, the upload limit with nothing left in the spool, and a large form that
// streams to disk instead of sitting in memory.
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import t, { type Test } from 'tap';

import { apiKey, startApp } from '../helpers/app.js';
import { sendWithFlatMemory } from '../helpers/body-memory.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { profanity, scriptedModel } from '../helpers/scripted-models.js';

const key = { 'Ocp-Apim-Subscription-Key': apiKey };
const transcribePath = '/speechtotext/transcriptions:transcribe';

interface Result {
  durationMilliseconds: number;
  combinedPhrases: Array<{ channel?: number; text: string }>;
  phrases: Array<{
    channel?: number;
    offsetMilliseconds: number;
    durationMilliseconds: number;
    text: string;
    words: Array<{ text: string; offsetMilliseconds: number; durationMilliseconds: number }>;
    locale: string;
    confidence: number;
  }>;
}

/** Parts in the order given; a string is a field, a Buffer a file part named audio.wav. */
function form(parts: Array<[string, string | Buffer]>): FormData {
  const data = new FormData();
  for (const [name, value] of parts) {
    if (typeof value === 'string') data.append(name, value);
    else data.append(name, new Blob([value], { type: 'audio/wav' }), 'audio.wav');
  }
  return data;
}

async function transcribe(base: string, body: FormData | string, version = '2024-11-15', headers: Record<string, string> = {}) {
  const query = version ? `?api-version=${version}` : '';
  const res = await fetch(`${base}${transcribePath}${query}`, { method: 'POST', headers: { ...key, ...headers }, body });
  const text = await res.text();
  return { status: res.status, text, json: text ? (JSON.parse(text) as any) : undefined };
}

const spoolFiles = (stateDir: string) => readdirSync(path.join(stateDir, 'spool'));

function checkShape(t: Test, result: Result) {
  let previous = -1;
  for (const phrase of result.phrases) {
    t.ok(phrase.offsetMilliseconds >= previous, `phrase offsets do not go back (${phrase.offsetMilliseconds})`);
    previous = phrase.offsetMilliseconds;
    t.ok(Number.isInteger(phrase.offsetMilliseconds) && Number.isInteger(phrase.durationMilliseconds), 'whole milliseconds');
    let word = phrase.offsetMilliseconds - 1;
    for (const w of phrase.words) {
      t.ok(w.offsetMilliseconds >= word, `word offsets do not go back (${w.text} at ${w.offsetMilliseconds})`);
      word = w.offsetMilliseconds;
      t.ok(w.offsetMilliseconds + w.durationMilliseconds <= result.durationMilliseconds + 20, 'words end within the audio');
    }
    t.ok(phrase.confidence >= 0 && phrase.confidence <= 1, 'a confidence');
  }
}

t.test('a form as Microsoft samples send it: 200 with the TranscribeResult; the job is gone afterwards', async (t) => {
  const model = await scriptedModel(t, profanity);
  const { base, auth, stateDir } = await startApp(t, { EARSHOT_MODEL: model });

  const res = await transcribe(
    base,
    form([
      ['definition', JSON.stringify({ locales: ['en-US'], profanityFilterMode: 'None' })],
      ['audio', wav(2.5)],
    ]),
  );
  t.equal(res.status, 200, res.text);
  const result = res.json as Result;
  t.same(Object.keys(result).sort(), ['combinedPhrases', 'durationMilliseconds', 'phrases']);
  t.ok(Math.abs(result.durationMilliseconds - 2500) <= 10, `durationMilliseconds ${result.durationMilliseconds}`);
  t.same(result.combinedPhrases, [{ text: 'What the fuck is this? Shit happens.' }], 'no channel unless channels were given');
  t.same(
    result.phrases.map((p) => p.text),
    ['What the fuck is this?', 'Shit happens.'],
  );
  t.same(
    result.phrases[0]!.words.map((w) => w.text),
    ['What', 'the', 'fuck', 'is', 'this?'],
  );
  t.same(Object.keys(result.phrases[0]!).sort(), ['confidence', 'durationMilliseconds', 'locale', 'offsetMilliseconds', 'text', 'words']);
  t.equal(result.phrases[0]!.locale, 'en-US');
  checkShape(t, result);

  // Nothing kept: not listed as a batch transcription, not in IBM's list, no audio left.
  const listed = (await (await fetch(`${base}/speechtotext/v3.1/transcriptions`, { headers: key })).json()) as { values: unknown[] };
  t.same(listed.values, []);
  const ibm = (await (await fetch(`${base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: unknown[] };
  t.same(ibm.recognitions, [], 'the job was deleted once answered');
  t.same(spoolFiles(stateDir), []);

  const later = await transcribe(base, form([['audio', wav(2.5)]]), '2025-10-15');
  t.equal(later.status, 200, `2025-10-15 too, and without a definition (the reference makes it optional): ${later.text}`);
  t.equal((later.json as Result).combinedPhrases[0]!.text, 'What the **** is this? **** happens.', 'Masked is the default');
});

t.test('definition after the audio; Masked, Removed and Tags; channels [0] labels phrases', async (t) => {
  const model = await scriptedModel(t, profanity);
  const { base } = await startApp(t, { EARSHOT_MODEL: model });

  const masked = await transcribe(
    base,
    form([
      ['audio', wav(2.5)],
      ['definition', JSON.stringify({ locales: ['en-GB'], profanityFilterMode: 'Masked', channels: [0] })],
    ]),
  );
  t.equal(masked.status, 200, masked.text);
  const result = masked.json as Result;
  t.same(result.combinedPhrases, [{ channel: 0, text: 'What the **** is this? **** happens.' }]);
  t.same(
    result.phrases[0]!.words.map((w) => w.text),
    ['What', 'the', '****', 'is', 'this?'],
  );
  t.same(
    result.phrases.map((p) => [p.channel, p.locale]),
    [
      [0, 'en-GB'],
      [0, 'en-GB'],
    ],
  );
  checkShape(t, result);

  const removed = await transcribe(
    base,
    form([
      ['audio', wav(2.5)],
      ['definition', JSON.stringify({ profanityFilterMode: 'Removed' })],
    ]),
  );
  t.equal((removed.json as Result).combinedPhrases[0]!.text, 'What the is this? happens.');
  const tagged = await transcribe(
    base,
    form([
      ['definition', JSON.stringify({ profanityFilterMode: 'Tags' })],
      ['audio', wav(2.5)],
    ]),
  );
  t.equal((tagged.json as Result).combinedPhrases[0]!.text, 'What the <profanity>fuck</profanity> is this? <profanity>Shit</profanity> happens.');
});

t.test("refusals: 400 (415 for a body that is no form) in Azure's error shape, nothing left in the spool", async (t) => {
  const { base, stateDir } = await startApp(t);
  const good = JSON.stringify({ locales: ['en-US'] });
  const cases: Array<{
    what: string;
    body: FormData | string;
    version?: string;
    headers?: Record<string, string>;
    status: number;
    inner: string;
    message: RegExp;
  }> = [
    { what: 'no api-version', body: form([['audio', wav(1)]]), version: '', status: 400, inner: 'MissingApiVersion', message: /api-version/ },
    {
      what: 'a version fast transcription does not have',
      body: form([['audio', wav(1)]]),
      version: 'v3.1',
      status: 400,
      inner: 'UnsupportedApiVersion',
      message: /2024-11-15, 2025-10-15/,
    },
    { what: 'no audio part', body: form([['definition', good]]), status: 400, inner: 'InvalidRequestBodyFormat', message: /no audio part/ },
    {
      what: 'definition not JSON',
      body: form([
        ['definition', '{locales: en-US'],
        ['audio', wav(1)],
      ]),
      status: 400,
      inner: 'InvalidRequestBodyFormat',
      message: /not valid JSON/,
    },
    {
      what: 'definition not an object',
      body: form([
        ['audio', wav(1)],
        ['definition', '["en-US"]'],
      ]),
      status: 400,
      inner: 'InvalidRequestBodyFormat',
      message: /JSON object/,
    },
    {
      what: 'an unknown locale',
      body: form([
        ['definition', JSON.stringify({ locales: ['xx-XX'] })],
        ['audio', wav(1)],
      ]),
      status: 400,
      inner: 'InvalidLocale',
      message: /xx-XX/,
    },
    {
      what: 'a bad profanityFilterMode',
      body: form([
        ['audio', wav(1)],
        ['definition', JSON.stringify({ profanityFilterMode: 'Bleep' })],
      ]),
      status: 400,
      inner: 'InvalidParameterValue',
      message: /Masked/,
    },
    {
      what: 'two channels',
      body: form([
        ['definition', JSON.stringify({ channels: [0, 1] })],
        ['audio', wav(1)],
      ]),
      status: 400,
      inner: 'InvalidChannels',
      message: /separately/,
    },
    {
      what: 'diarization',
      body: form([
        ['definition', JSON.stringify({ diarization: { enabled: true, maxSpeakers: 2 } })],
        ['audio', wav(1)],
      ]),
      status: 400,
      inner: 'InvalidParameterValue',
      message: /diarization/,
    },
    {
      what: 'an unknown part',
      body: form([
        ['audio', wav(1)],
        ['extra', 'x'],
      ]),
      status: 400,
      inner: 'InvalidRequestBodyFormat',
      message: /Unexpected form part 'extra'/,
    },
    {
      what: 'two audio parts',
      body: form([
        ['audio', wav(1)],
        ['audio', wav(1)],
      ]),
      status: 400,
      inner: 'InvalidRequestBodyFormat',
      message: /more than one audio/,
    },
    {
      what: 'a definition over 64 KB',
      body: form([
        ['definition', JSON.stringify({ locales: ['en-US'], pad: 'x'.repeat(70_000) })],
        ['audio', wav(1)],
      ]),
      status: 400,
      inner: 'InvalidPayload',
      message: /65536 bytes/,
    },
    {
      what: 'JSON instead of a form',
      body: good,
      headers: { 'Content-Type': 'application/json' },
      status: 415,
      inner: 'InvalidRequestBodyFormat',
      message: /multipart\/form-data/,
    },
  ];
  for (const c of cases) {
    const res = await transcribe(base, c.body, c.version ?? '2024-11-15', c.headers);
    t.equal(res.status, c.status, `${c.what}: ${res.text}`);
    t.equal(res.json.code, c.status === 415 ? 'UnsupportedMediaType' : 'InvalidRequest', c.what);
    t.equal(res.json.innerError?.code, c.inner, c.what);
    t.match(res.json.message, c.message, c.what);
    t.notOk('error' in res.json, 'not wrapped: the Error of the 2024-11-15 and 2025-10-15 swaggers is {code, message, innerError}');
  }
  t.same(spoolFiles(stateDir), [], 'no refused upload left a file');
  const listed = (await (await fetch(`${base}/speechtotext/v3.1/transcriptions`, { headers: key })).json()) as { values: unknown[] };
  t.same(listed.values, [], 'no job was created');
});

/** A multipart body sent in 1 MB chunks without Content-Length (chunked): the limit is the running count. */
function sendForm(base: string, audioBytes: number, definition: string, options: { definitionFirst: boolean; sampled?: () => void }) {
  const boundary = '----earshot-fast-test';
  const definitionPart = `--${boundary}\r\nContent-Disposition: form-data; name="definition"\r\n\r\n${definition}\r\n`;
  const audioHead = `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`;
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${base}${transcribePath}?api-version=2024-11-15`,
      { method: 'POST', headers: { ...key, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Transfer-Encoding': 'chunked' } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // The service may answer (and close) before everything is sent: that is the point of a limit.
    req.on('error', (err) => (err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' || reject(err));
    if (options.definitionFirst) req.write(definitionPart);
    req.write(audioHead);
    let sent = 0;
    const pump = () => {
      while (sent < audioBytes) {
        sent += chunk.length;
        options.sampled?.();
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.write('\r\n');
      if (!options.definitionFirst) req.write(definitionPart);
      req.end(`--${boundary}--\r\n`);
    };
    pump();
  });
}

t.test('over EARSHOT_MAX_UPLOAD_BYTES: 413 by Content-Length or by the running count, and the spool is empty', async (t) => {
  const { base, stateDir } = await startApp(t, { EARSHOT_MAX_UPLOAD_BYTES: String(4 * 1024 * 1024) });
  const declared = await transcribe(base, form([['audio', Buffer.alloc(5 * 1024 * 1024)]]));
  t.equal(declared.status, 413, declared.text);
  t.match(declared.json, { code: 'InvalidRequest', innerError: { code: 'InvalidPayload' } });

  const counted = await sendForm(base, 8 * 1024 * 1024, '{}', { definitionFirst: true });
  t.equal(counted.status, 413, counted.body);
  t.match(JSON.parse(counted.body), { code: 'InvalidRequest', message: /exceeds the maximum of 4194304 bytes/ });
  await until(() => spoolFiles(stateDir).length === 0, 2000, 'the partial upload to go');
  t.same(spoolFiles(stateDir), [], 'the partial audio file was removed');
});

t.test('256 MB and 512 MB forms stream to the spool: memory does not grow with them, definition checked after the audio', async (t) => {
  const { base, stateDir } = await startApp(t);
  let spoolSeen = 0;
  const sampler = setInterval(() => (spoolSeen = Math.max(spoolSeen, spoolFiles(stateDir).length)), 20);
  // The definition comes last and names a locale this device does not serve: the audio
  // has to be streamed all the way, then the upload is refused and its file removed.
  const res = await sendWithFlatMemory(t, async (total) => {
    const started = performance.now();
    const answer = await sendForm(base, total, JSON.stringify({ locales: ['xx-XX'] }), { definitionFirst: false });
    const seconds = (performance.now() - started) / 1000;
    t.comment(`${total / 2 ** 20} MB form in ${seconds.toFixed(2)} s (${(total / 2 ** 20 / seconds).toFixed(0)} MB/s)`);
    return answer;
  });
  clearInterval(sampler);
  t.equal(res.status, 400, res.body);
  t.match(JSON.parse(res.body), { innerError: { code: 'InvalidLocale' } });
  t.equal(spoolSeen, 1, 'the audio went to a spool file while it arrived');
  t.same(spoolFiles(stateDir), [], 'and the file is gone after the refusal');
});
