// The Wyoming server against the real service, with a client written here from the
// protocol (rhasspy/wyoming's event.py: a JSON header line, then `data_length` bytes of
// JSON data, then `payload_length` bytes of payload): what Home Assistant does, and what
// a careless or hostile client does.
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';

import t from 'tap';

import { projectRoot } from '../../src/paths.js';
import type { WyomingDialect } from '../../src/wyoming/dialect.js';
import { type RunningApp, startApp } from '../helpers/app.js';
import { until } from '../helpers/poll.js';
import { profanity, scriptedModel } from '../helpers/scripted-models.js';

interface Event {
  type: string;
  data: Record<string, unknown>;
  payload?: Buffer;
}

/** A Wyoming client: writes events in either header layout, reads events until the server closes. */
class Client {
  private buffer = Buffer.alloc(0);
  private readonly received: Event[] = [];
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  private parse(): void {
    for (;;) {
      const newline = this.buffer.indexOf(0x0a);
      if (newline < 0) return;
      const header = JSON.parse(this.buffer.subarray(0, newline).toString()) as Record<string, unknown>;
      const dataLength = (header.data_length as number | undefined) ?? 0;
      const payloadLength = (header.payload_length as number | undefined) ?? 0;
      const end = newline + 1 + dataLength + payloadLength;
      if (this.buffer.length < end) return;
      const block = dataLength ? (JSON.parse(this.buffer.subarray(newline + 1, newline + 1 + dataLength).toString()) as Record<string, unknown>) : {};
      const event: Event = { type: header.type as string, data: { ...((header.data as object) ?? {}), ...block } };
      if (payloadLength) event.payload = this.buffer.subarray(newline + 1 + dataLength, end);
      this.received.push(event);
      this.buffer = this.buffer.subarray(end);
    }
  }

  /** Sends an event: its data in a block of its own (the library's layout) or inline in the header (older releases'). */
  send(type: string, data?: Record<string, unknown>, payload?: Buffer, layout: 'block' | 'inline' = 'block'): void {
    const header: Record<string, unknown> = { type, version: '1.8.0' };
    let block = Buffer.alloc(0);
    if (data && layout === 'inline') header.data = data;
    if (data && layout === 'block') {
      block = Buffer.from(JSON.stringify(data));
      header.data_length = block.length;
    }
    if (payload) header.payload_length = payload.length;
    this.socket.write(Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), block, payload ?? Buffer.alloc(0)]));
  }

  /** The next event, or undefined once the server closed the connection. */
  async next(timeoutMs = 60_000): Promise<Event | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.received.length && !this.closed) {
      if (Date.now() > deadline) throw new Error('no event from the server in time');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.received.shift();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** 16-bit little-endian PCM of a tone with a little noise: `seconds` at `rate`, `channels` interleaved. */
function pcm(seconds: number, rate: number, channels: number): Buffer {
  const frames = Math.round(seconds * rate);
  const out = Buffer.alloc(frames * channels * 2);
  let seed = 7;
  for (let i = 0; i < frames; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const value = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate) + ((seed % 2000) - 1000));
    for (let c = 0; c < channels; c++) out.writeInt16LE(value, (i * channels + c) * 2);
  }
  return out;
}

/** Sends `audio` as Home Assistant does: audio-start, chunks of 1024 frames, audio-stop. */
function stream(client: Client, audio: Buffer, format: { rate: number; width: number; channels: number }, layout: 'block' | 'inline' = 'block'): void {
  client.send('audio-start', format, undefined, layout);
  const chunkBytes = 1024 * format.channels * 2;
  for (let at = 0; at < audio.length; at += chunkBytes) client.send('audio-chunk', format, audio.subarray(at, at + chunkBytes), layout);
  client.send('audio-stop', undefined, undefined, layout);
}

/**
 * The answer to one transcription: `transcript-start`, `transcript-chunk`s, the
 * `transcript`, `transcript-stop` (a streaming program's answer); resolves to every event
 * with when it came (`log`, shared with the caller's own entries), checking their order.
 */
async function answer(client: Client, log: string[] = [], onEvent?: (event: Event) => void): Promise<Event[]> {
  const events: Event[] = [];
  for (let event = await client.next(); event; event = await client.next()) {
    events.push(event);
    log.push(event.type);
    onEvent?.(event);
    if (event.type === 'transcript-stop' || event.type === 'error') break;
  }
  const types = events.map((e) => e.type).join(' ');
  if (!/^transcript-start( transcript-chunk)* transcript transcript-stop$/.test(types)) throw new Error(`unexpected answer: ${types}`);
  return events;
}

/** What a client that knows no streaming reads: the `transcript` (it skips the other events). */
const transcriptOf = async (client: Client) => (await answer(client)).find((e) => e.type === 'transcript');

const wyomingPort = (running: RunningApp) => (running.app.dialect('wyoming') as WyomingDialect).port!;

const recognitions = async (running: RunningApp) =>
  ((await (await fetch(`${running.base}/v1/recognitions`, { headers: running.auth })).json()) as { recognitions: unknown[] }).recognitions;

const spoolFiles = (running: RunningApp) => readdirSync(path.join(running.stateDir, 'spool'));

t.test('Home Assistant: describe, then transcribe in any format, either layout, side by side', async (t) => {
  const running = await startApp(t);
  const port = wyomingPort(running);
  t.ok(port > 0, 'port 0 bound a free port');

  const describer = await Client.open(port);
  describer.send('describe');
  const info = await describer.next();
  t.equal(info?.type, 'info');
  const asr = (info!.data.asr as Array<Record<string, unknown>>)[0]!;
  const version = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
  t.match(asr, {
    name: 'earshot',
    installed: true,
    version,
    attribution: { name: 'whisper.cpp', url: 'https://github.com/ggml-org/whisper.cpp' },
    supports_transcript_streaming: true,
  });
  const models = asr.models as Array<Record<string, unknown>>;
  t.equal(models.length, 1);
  t.match(models[0], { name: 'test.en-q5_0', installed: true, attribution: { name: 'whisper.cpp' } });
  t.same(models[0]!.languages, ['en'], 'an English-only model transcribes English only');
  describer.close();

  const formats = [
    { rate: 16000, channels: 1, layout: 'block' as const },
    { rate: 22050, channels: 1, layout: 'inline' as const },
    { rate: 44100, channels: 2, layout: 'block' as const },
  ];
  for (const { rate, channels, layout } of formats) {
    const client = await Client.open(port);
    client.send('transcribe', { language: 'en' }, undefined, layout);
    stream(client, pcm(1.5, rate, channels), { rate, width: 2, channels }, layout);
    const transcript = await transcriptOf(client);
    t.equal(transcript?.type, 'transcript', `${rate} Hz, ${channels} channel(s), data ${layout}`);
    t.type(transcript?.data.text, 'string');
    t.equal(transcript?.data.language, 'en');
    client.close();
  }

  // Two at once, one of them without `transcribe` (defaults), each its own session.
  const [a, b] = await Promise.all([Client.open(port), Client.open(port)]);
  a!.send('transcribe', { language: 'en-US', name: 'whatever' });
  stream(a!, pcm(1, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  stream(b!, pcm(1, 22050, 1), { rate: 22050, width: 2, channels: 1 }, 'inline');
  const [ta, tb] = await Promise.all([transcriptOf(a!), transcriptOf(b!)]);
  t.equal(ta?.type, 'transcript');
  t.equal(tb?.type, 'transcript');
  a!.close();
  b!.close();

  t.same(await recognitions(running), [], 'every answered job was deleted');
  t.same(spoolFiles(running), [], 'and its audio');
});

t.test('a client that leaves costs nothing', async (t) => {
  const running = await startApp(t);
  const port = wyomingPort(running);

  // Mid-stream: the partial audio goes, no job is created.
  const midStream = await Client.open(port);
  midStream.send('transcribe', {});
  midStream.send('audio-start', { rate: 16000, width: 2, channels: 1 });
  midStream.send('audio-chunk', { rate: 16000, width: 2, channels: 1 }, pcm(0.5, 16000, 1));
  await until(async () => spoolFiles(running).length === 1, 10_000, 'the audio to reach the spool');
  midStream.close();
  await until(async () => spoolFiles(running).length === 0, 10_000, 'the partial audio to be removed');
  t.same(await recognitions(running), [], 'no job');

  // After audio-stop: its job, queued or running, is deleted (once finished, if running).
  const waiting = await Client.open(port);
  stream(waiting, pcm(2, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  await until(async () => (await recognitions(running)).length === 1, 10_000, 'the job to be created');
  waiting.close();
  await until(async () => (await recognitions(running)).length === 0, 60_000, 'the job to be deleted');
  await until(async () => spoolFiles(running).length === 0, 10_000, 'its audio to be removed');
  t.pass('nothing left');
});

t.test('bad input: an error event, then the connection closes', async (t) => {
  const running = await startApp(t, { EARSHOT_WYOMING_PORT: '0' });
  const port = wyomingPort(running);
  const refusedWith = async (write: (c: Client) => void, code: string, text: RegExp) => {
    const client = await Client.open(port);
    write(client);
    const event = await client.next();
    t.equal(event?.type, 'error');
    t.equal(event?.data.code, code);
    t.match(event?.data.text, text);
    t.equal(await client.next(), undefined, 'closed');
  };
  await refusedWith((c) => c.socket.write('this is not json\n'), 'ERR_INVALID_ARGUMENT', /The event header is not valid JSON/);
  await refusedWith((c) => c.socket.write(`{"type": "audio-chunk", "payload_length": ${64 * 1024 * 1024}}\n`), 'ERR_PAYLOAD_TOO_LARGE', /payload_length/);
  await refusedWith((c) => c.socket.write(`{"type": "${'x'.repeat(20_000)}`), 'ERR_PAYLOAD_TOO_LARGE', /header line exceeds/);
  await refusedWith((c) => c.send('audio-start', { rate: 16000, width: 1, channels: 1 }), 'ERR_INVALID_ARGUMENT', /Expected 2 \(16-bit samples\) for width/);
  await refusedWith((c) => c.send('audio-start', { rate: 16000, width: 2, channels: 6 }), 'ERR_INVALID_ARGUMENT', /Expected 1 or 2 for channels/);
  await refusedWith((c) => c.send('transcribe', { language: 'de' }), 'ERR_INVALID_ARGUMENT', /English-only/);
  await refusedWith((c) => c.send('audio-stop'), 'ERR_INVALID_ARGUMENT', /without audio/);
  t.same(spoolFiles(running), []);
});

t.test('more audio than the service takes is refused as it streams in', async (t) => {
  const running = await startApp(t, { EARSHOT_MAX_AUDIO_SECONDS: '1' });
  const client = await Client.open(wyomingPort(running));
  stream(client, pcm(3, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  const event = await client.next();
  t.equal(event?.type, 'error');
  t.equal(event?.data.code, 'ERR_AUDIO_TOO_LONG');
  t.equal(await client.next(), undefined, 'closed');
  await until(async () => spoolFiles(running).length === 0, 10_000, 'the audio to be removed');
  t.same(await recognitions(running), []);
});

t.test('streaming transcripts: start, a chunk per segment, the transcript, stop', async (t) => {
  const model = await scriptedModel(t, profanity);
  const running = await startApp(t, { EARSHOT_MODEL: model });
  const client = await Client.open(wyomingPort(running));
  // Upstream's clients do not ask: a program that supports streaming streams.
  client.send('transcribe', { language: 'en' });
  stream(client, pcm(2, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  t.same(
    (await answer(client)).map((e) => [e.type, e.data]),
    [
      ['transcript-start', { language: 'en' }],
      ['transcript-chunk', { text: 'What the fuck is this?' }],
      ['transcript-chunk', { text: ' Shit happens.' }],
      ['transcript', { text: 'What the fuck is this? Shit happens.', language: 'en' }],
      ['transcript-stop', {}],
    ],
  );
  client.close();
});

/** Per 30 s window two segments, and one in its second half that only the last window keeps (scripted: each token once). */
const windowed = [
  { start: 0, end: 2, tokens: [' Alpha', ' bravo', '.'] },
  { start: 3, end: 5, tokens: [' Charlie', ' delta', '!'] },
  { start: 20, end: 22, tokens: [' Echo', ' foxtrot', '?'] },
];

t.test('long audio: chunks come as the windows are transcribed, before the job ends, and add up to the transcript', async (t) => {
  const model = await scriptedModel(t, windowed);
  const running = await startApp(t, { EARSHOT_MODEL: model, EARSHOT_WINDOW_SECONDS: '30' });
  // The service's side of the same log: when the job is stored as completed.
  const log: string[] = [];
  let jobId = '';
  let completedAt = 0;
  running.app.jobs.subscribe({
    notify: (job, change) => {
      if (change === 'started') jobId = job.id;
      if (change === 'completed') {
        log.push('job completed');
        completedAt = performance.now();
      }
    },
  });
  const client = await Client.open(wyomingPort(running));
  client.send('transcribe', { language: 'en' });
  stream(client, pcm(70, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  // What the engine had reported of the job when each chunk came.
  const progressAtChunk: number[] = [];
  let firstChunkAt = 0;
  const events = await answer(client, log, (event) => {
    if (event.type !== 'transcript-chunk') return;
    firstChunkAt ||= performance.now();
    progressAtChunk.push(running.app.jobs.progressOf(jobId) ?? Number.NaN);
  });
  t.comment(
    `first chunk ${Math.round(completedAt - firstChunkAt)} ms before the job completed; progress at each chunk: ${progressAtChunk.map(Math.round).join(', ')}`,
  );
  const chunks = events.filter((e) => e.type === 'transcript-chunk').map((e) => e.data.text as string);
  const transcript = events.find((e) => e.type === 'transcript')!;
  t.same(
    chunks.map((c) => c.trim()),
    ['Alpha bravo.', 'Charlie delta!', 'Alpha bravo.', 'Charlie delta!', 'Alpha bravo.', 'Charlie delta!', 'Echo foxtrot?'],
    'a chunk per final segment: none the window overlap replaced',
  );
  t.equal(chunks.join(''), transcript.data.text, 'the chunks add up to the transcript');
  t.ok(log.indexOf('transcript-chunk') < log.indexOf('job completed'), `the first chunk before the job ended: ${log.join(', ')}`);
  // Window by window: the first window's chunks came while the engine had not reached the last window (40 s of 70).
  t.ok(progressAtChunk[0]! < 40 / 0.7, `the first chunk while the first windows ran (${progressAtChunk[0]} %)`);
  t.equal(log.at(-1), 'transcript-stop');
  client.close();
});

t.test('a client that leaves mid-stream: its job finishes and is deleted, nothing kept', async (t) => {
  const model = await scriptedModel(t, windowed);
  const running = await startApp(t, { EARSHOT_MODEL: model, EARSHOT_WINDOW_SECONDS: '30' });
  const client = await Client.open(wyomingPort(running));
  client.send('transcribe', { language: 'en' });
  stream(client, pcm(120, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  t.equal((await client.next())?.type, 'transcript-start');
  t.equal((await client.next())?.type, 'transcript-chunk');
  t.equal((await recognitions(running)).length, 1, 'its job runs');
  client.close();
  await until(async () => (await recognitions(running)).length === 0, 60_000, 'the job to be deleted');
  await until(async () => spoolFiles(running).length === 0, 10_000, 'its audio to be removed');
  t.equal(running.app.jobs.feedCount, 0, 'no segment feed left');
  // The service transcribes on: the next client is answered.
  const next = await Client.open(wyomingPort(running));
  stream(next, pcm(2, 16000, 1), { rate: 16000, width: 2, channels: 1 });
  t.equal((await transcriptOf(next))?.type, 'transcript');
  next.close();
});

t.test('peers outside EARSHOT_WYOMING_CIDRS are disconnected; off means no server', async (t) => {
  const running = await startApp(t, { EARSHOT_WYOMING_CIDRS: '10.0.0.0/8' });
  const client = await Client.open(wyomingPort(running));
  client.send('describe');
  t.equal(await client.next(), undefined, 'closed without an answer');

  const off = await startApp(t, { EARSHOT_WYOMING_PORT: 'off' });
  t.equal((off.app.dialect('wyoming') as WyomingDialect).port, undefined);
});
