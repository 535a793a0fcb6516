/**
 * One Wyoming connection: its events in order, its transcription. `describe` → `info`;
 * `transcribe` (optional) then `audio-start` / `audio-chunk` / `audio-stop` →
 * `transcript-start`, a `transcript-chunk` per segment as the engine produces it, the
 * `transcript` (sent for clients that know no streaming, as the protocol asks) and
 * `transcript-stop`. Upstream's clients do not ask for streaming: a program that announces
 * `supports_transcript_streaming` streams, and clients that do not know the events skip
 * them. The audio goes to the spool as it arrives (JobService.submit's upload), never into
 * memory; the job is answered and deleted.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { Socket } from 'node:net';

import type { ModelAbilities } from '../dialect.js';
import { RAW_RATE_RANGE } from '../engine/media-type.js';
import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
import type { JobRequest, JobService } from '../jobs/job-service.js';
import { transcriptOnce } from '../jobs/synchronous.js';
import type { Logger } from '../log.js';
import { EventParser, encodeEvent, type FrameLimits, type WyomingEvent, WyomingProtocolError } from './events.js';

/** What every session shares (built once by the dialect). */
export interface SessionOptions {
  jobs: JobService;
  /** What the loaded model transcribes (throws ERR_NOT_READY while it loads). */
  model: () => ModelAbilities;
  /** The `info` event's data (built per `describe`: the model may have loaded since). */
  info: () => Record<string, unknown>;
  /** The service's upload limit (EARSHOT_MAX_UPLOAD_BYTES): the most audio one transcription may send. */
  maxAudioBytes: number;
  /** EARSHOT_MAX_AUDIO_SECONDS: refused as it streams in rather than after the decoder read it all. */
  maxAudioSeconds: number;
  frameLimits?: FrameLimits;
  log: Logger;
}

/** A streaming client does not wait on us: past this many unhandled events, its socket pauses. */
const maxQueuedEvents = 64;

/**
 * Results are not kept (the answer goes out on the connection): the job is deleted once
 * answered. This is the backstop when that never happens (a crash meanwhile).
 */
const resultsTtlMs = 10 * 60_000;

interface AudioFormat {
  rate: number;
  width: number;
  channels: number;
}

/** What `transcribe` asked for (defaults when the client started with `audio-start`). */
interface TranscribeRequest {
  language: string | undefined;
  name: string | undefined;
}

/** Audio being received: the spool file of a job that is not committed yet. */
interface Intake {
  format: AudioFormat;
  file: FileHandle;
  bytes: number;
  maxBytes: number;
  /** Settles `submit`'s receive step: resolve on `audio-stop`, reject when the client left or misbehaved. */
  finish(err?: Error): void;
  submitted: Promise<Job>;
}

const defaultRequest = (): TranscribeRequest => ({ language: undefined, name: undefined });

const optionalString = (data: Record<string, unknown>, key: string, event: string): string | undefined => {
  const value = data[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new WyomingProtocolError(`Expected a string for ${key} of '${event}' but received ${JSON.stringify(value)}`);
  return value.trim() || undefined;
};

/** The languages the model transcribes: whisper knows them all, an English-only model transcribes English. */
export const servedLanguages = (served: ModelAbilities): readonly string[] => (served.multilingual ? served.languages : ['en']);

/**
 * The whisper language for a Wyoming `language` (`en`, `de`, `en-US`, `pt_BR`: the
 * primary subtag is whisper's code); none: what the model can do (detect, or English).
 */
export function whisperLanguage(asked: string | undefined, served: ModelAbilities): string {
  if (asked === undefined) return served.multilingual ? 'auto' : 'en';
  const code = asked.split(/[-_]/)[0]!.toLowerCase();
  if (servedLanguages(served).includes(code)) return code;
  throw new WyomingProtocolError(
    served.multilingual
      ? `The language '${asked}' is not one the whisper model on this device knows`
      : `The language '${asked}' is not available: this device runs an English-only whisper model`,
    'ERR_INVALID_ARGUMENT',
  );
}

/** Checks an `audio-start` or `audio-chunk`'s format: 16-bit samples, one or two channels, a rate the decoder resamples. */
export function audioFormat(data: Record<string, unknown>, event: string): AudioFormat {
  const { rate, width, channels } = data;
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < RAW_RATE_RANGE.min || rate > RAW_RATE_RANGE.max) {
    throw new WyomingProtocolError(
      `Expected a sample rate from ${RAW_RATE_RANGE.min} to ${RAW_RATE_RANGE.max} for rate of '${event}' but received ${JSON.stringify(rate)}`,
    );
  }
  if (width !== 2) throw new WyomingProtocolError(`Expected 2 (16-bit samples) for width of '${event}' but received ${JSON.stringify(width)}`);
  if (channels !== 1 && channels !== 2) throw new WyomingProtocolError(`Expected 1 or 2 for channels of '${event}' but received ${JSON.stringify(channels)}`);
  return { rate, width, channels };
}

const sameFormat = (a: AudioFormat, b: AudioFormat) => a.rate === b.rate && a.width === b.width && a.channels === b.channels;

/** `transcript-start`'s language: the one asked for; none when whisper detects it (the `transcript` has it). */
const languageData = (language: string | undefined): Record<string, unknown> => (language && language !== 'auto' ? { language } : {});

/** The error event's text and code for whatever went wrong. */
function errorEvent(err: unknown): { text: string; code: string } {
  if (err instanceof WyomingProtocolError || err instanceof AppError) return { text: err.message, code: err.code };
  return { text: 'Internal error', code: 'ERR_INTERNAL' };
}

/**
 * One connection's session. Events are handled one at a time in the order they came
 * (a chunk's write finishes before the next is looked at); `closed` resolves once the
 * connection is gone and nothing of its transcription is left but an answered job's
 * deletion (or, for a job being transcribed when the client left, its deletion once
 * finished: JobService.discard).
 */
export class WyomingSession {
  private readonly parser: EventParser;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private request: TranscribeRequest | undefined;
  private intake: Intake | undefined;
  private readonly aborts = new AbortController();
  /** An `error` was sent: later events are not handled. */
  private ending = false;
  /** The input stopped making sense: nothing more is read. */
  private unreadable = false;
  /** Resolves when the connection closed and the session cleaned up after itself. */
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly o: SessionOptions,
  ) {
    this.parser = new EventParser(o.frameLimits);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => o.log.debug('connection error', { error: err }));
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.aborts.abort();
        // After whatever is being handled: a chunk being written finishes before the file goes.
        this.enqueue(async () => {
          await this.dropIntake(new AppError('ERR_ABORTED', 'the client closed the connection'));
          resolve();
        });
      });
    });
  }

  /** Closes the connection (the service stops). */
  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.unreadable) return;
    let events: WyomingEvent[];
    try {
      events = this.parser.push(chunk);
    } catch (err) {
      // After the events before it: they were well-formed and are answered first.
      this.enqueue(() => this.fail(err));
      this.unreadable = true;
      return;
    }
    for (const event of events) this.enqueue(() => this.handle(event));
  }

  private enqueue(step: () => Promise<void>): void {
    this.queued++;
    if (this.queued > maxQueuedEvents) this.socket.pause();
    this.queue = this.queue
      .then(step)
      .catch((err) => this.fail(err))
      .finally(() => {
        this.queued--;
        if (this.queued <= maxQueuedEvents / 2 && !this.socket.destroyed) this.socket.resume();
      });
  }

  private get gone(): boolean {
    return this.aborts.signal.aborted;
  }

  private send(type: string, data?: Record<string, unknown>): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeEvent({ type, data }));
  }

  /** Answers with an `error` event and ends the session. */
  private async fail(err: unknown): Promise<void> {
    if (this.gone) return;
    this.ending = true;
    const { text, code } = errorEvent(err);
    if (!(err instanceof WyomingProtocolError || err instanceof AppError)) this.o.log.error('wyoming session failed', { error: err as Error });
    else this.o.log.info('wyoming session refused', { code, message: text });
    this.send('error', { text, code });
    await this.dropIntake(err instanceof Error ? err : new Error(String(err)));
    this.socket.end();
  }

  private async handle(event: WyomingEvent): Promise<void> {
    if (this.gone || this.ending) return;
    switch (event.type) {
      case 'describe':
        return this.send('info', this.o.info());
      case 'ping':
        return this.send('pong', event.data.text === undefined ? {} : { text: event.data.text });
      case 'transcribe':
        return this.transcribe(event);
      case 'audio-start':
        return this.audioStart(audioFormat(event.data, event.type));
      case 'audio-chunk':
        return this.audioChunk(event);
      case 'audio-stop':
        return this.audioStop();
      default:
        // As the library's servers do: an event this program has no use for is ignored.
        this.o.log.debug('wyoming event ignored', { type: event.type });
    }
  }

  private async transcribe(event: WyomingEvent): Promise<void> {
    if (this.intake) throw new WyomingProtocolError("'transcribe' came while audio was streaming: send it before 'audio-start'");
    const language = optionalString(event.data, 'language', 'transcribe');
    // Checked now, so a wrong language is refused before any audio is sent.
    whisperLanguage(language, this.o.model());
    this.request = {
      language,
      name: optionalString(event.data, 'name', 'transcribe'),
    };
  }

  private async audioStart(format: AudioFormat): Promise<void> {
    if (this.intake) throw new WyomingProtocolError("'audio-start' came while audio was already streaming: send 'audio-stop' first");
    const request = this.request ?? defaultRequest();
    this.request = request;
    const served = this.o.model();
    const jobRequest: JobRequest = {
      contentType: `audio/l16;rate=${format.rate};channels=${format.channels};endianness=little-endian`,
      format: { kind: 'l16', mediaType: 'audio/l16', rate: format.rate, channels: format.channels, endianness: 'little' },
      model: request.name ?? 'wyoming',
      options: { language: whisperLanguage(request.language, served) },
      output: { timestamps: false, wordConfidence: false, profanity: 'none' },
      resultsTtlMs,
      synchronous: true,
      interactive: true,
      streamed: true,
    };
    const bytesPerSecond = format.rate * format.channels * format.width;
    const maxBytes = Math.min(this.o.maxAudioBytes, this.o.maxAudioSeconds * bytesPerSecond);

    let opened!: (file: FileHandle) => void;
    const fileOpened = new Promise<FileHandle>((resolve) => (opened = resolve));
    let finish!: (err?: Error) => void;
    const streamed = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
    streamed.catch(() => {});
    const submitted = this.o.jobs.submit(jobRequest, async (path) => {
      const file = await open(path, 'wx', 0o600);
      opened(file);
      try {
        await streamed;
        await file.sync();
        return { bytes: this.intake?.bytes ?? 0 };
      } finally {
        await file.close().catch(() => {});
      }
    });
    submitted.catch(() => {});
    // The queue may be full (submit refuses before any audio): that is the answer then.
    const file = await Promise.race([fileOpened, submitted.then(() => undefined)]);
    if (!file) throw new AppError('ERR_INTERNAL', 'the upload finished before it started');
    this.intake = { format, file, bytes: 0, maxBytes, finish, submitted };
  }

  private async audioChunk(event: WyomingEvent): Promise<void> {
    const format = audioFormat(event.data, event.type);
    // The library's servers take chunks without an `audio-start`: the first chunk's format starts the audio.
    if (!this.intake) await this.audioStart(format);
    const intake = this.intake!;
    if (!sameFormat(format, intake.format)) {
      throw new WyomingProtocolError(
        `An 'audio-chunk' of ${format.rate} Hz, ${format.channels} channel(s) came in audio that started as ${intake.format.rate} Hz, ${intake.format.channels} channel(s)`,
      );
    }
    const payload = event.payload ?? Buffer.alloc(0);
    if (intake.bytes + payload.length > intake.maxBytes) {
      const seconds = intake.maxBytes / (intake.format.rate * intake.format.channels * intake.format.width);
      throw new AppError(
        seconds >= this.o.maxAudioSeconds ? 'ERR_AUDIO_TOO_LONG' : 'ERR_PAYLOAD_TOO_LARGE',
        `The audio exceeds the maximum of ${intake.maxBytes} bytes (${Math.floor(seconds)} s at this rate)`,
      );
    }
    await intake.file.write(payload);
    intake.bytes += payload.length;
  }

  private async audioStop(): Promise<void> {
    const intake = this.intake;
    if (!intake) throw new WyomingProtocolError("'audio-stop' came without audio: send 'audio-start' and 'audio-chunk' first");
    intake.finish();
    const job = await intake.submitted;
    this.intake = undefined;
    this.request = undefined;
    // A chunk per spoken segment as the engine produces it, each but the first with the
    // space that joins it to the text (the chunks add up to the transcript's text).
    let started = false;
    let streamed = 0;
    let spoken = 0;
    const chunk = (text: string) => {
      const trimmed = text.trim();
      if (!trimmed) return;
      if (!started) this.send('transcript-start', languageData(job.options.language));
      started = true;
      this.send('transcript-chunk', { text: spoken++ ? ` ${trimmed}` : trimmed });
    };
    for await (const segment of this.o.jobs.segments(job.id, this.aborts.signal)) {
      streamed++;
      chunk(segment.text);
    }
    const transcript = await transcriptOnce(this.o.jobs, job.id, this.aborts.signal);
    // Those the stream did not carry (it came after the job finished).
    for (const segment of transcript.segments.slice(streamed)) chunk(segment.text);
    const language = transcript.language;
    if (!started) this.send('transcript-start', { language });
    this.send('transcript', { text: transcript.text.trim(), language });
    this.send('transcript-stop');
  }

  /** Ends the audio being received, if any: `submit` then removes its file and creates no job. */
  private async dropIntake(err: Error): Promise<void> {
    const intake = this.intake;
    if (!intake) return;
    this.intake = undefined;
    intake.finish(err);
    await intake.submitted.catch(() => {});
  }
}
