import { open, rm, type FileHandle } from 'node:fs/promises';

import type { HttpResponse } from 'uWebSockets.js';

import { loadAddon } from '../engine/native.js';
import { AppError } from '../errors.js';
import { bodyEncoding, gunzip } from './content-encoding.js';

/** Past this many unconsumed bytes the socket is paused until someone reads them. */
const highWaterMark = 1 << 20;

export interface SpoolResult {
  bytes: number;
}

/**
 * Bounds on what is read and dropped of a body nobody wants before its connection closes.
 * Enough for an upload a client on the LAN sends in a few seconds; past them the
 * connection closes anyway.
 */
export interface DiscardLimits {
  maxBytes: number;
  maxMs: number;
}

/** A look at the first bytes of an upload before any of it is written (`toFile`). */
export interface Inspection {
  /** How many bytes `check` wants (fewer when the body is shorter). */
  bytes: number;
  /** Throws to refuse the upload. */
  check(head: Buffer): void;
}

/**
 * A request body as it arrives. uWS hands over chunks only while the handler's first
 * tick runs and neuters them afterwards, so every chunk is copied into a queue at once;
 * a consumer (a spool file, or a small buffer) drains the queue, and the socket is
 * paused while too much waits, so a 1 GB upload never sits in memory. A gzip body
 * (Content-Encoding) is decompressed as it is read; limits apply to what comes out.
 */
export class RequestBody {
  private chunks: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private paused = false;
  private wake: (() => void) | null = null;
  private consumed = false;
  /** Set while the rest of the body is being dropped (`discard`). */
  private discarding: { bytes: number; limits: DiscardLimits; done: () => void } | null = null;

  /** From the Content-Length header; undefined for chunked uploads. */
  readonly declaredLength: number | undefined;

  /**
   * `present`: the request carries a body (a non-zero Content-Length or chunked
   * encoding); otherwise uWS never calls onData and the body is empty.
   * `contentEncoding`: the Content-Encoding header, checked when the body is read.
   */
  constructor(
    private readonly res: HttpResponse,
    declaredLength: number | undefined,
    private readonly signal: AbortSignal,
    present: boolean,
    private readonly contentEncoding?: string,
  ) {
    this.declaredLength = declaredLength;
    signal.addEventListener(
      'abort',
      () => {
        this.wake?.();
        this.discarding?.done();
      },
      { once: true },
    );
    if (!present) {
      this.ended = true;
      return;
    }
    res.onData((chunk, isLast) => {
      if (isLast) this.ended = true;
      if (this.discarding) {
        // Counted, never copied: a refused body costs no memory.
        this.discarding.bytes += chunk.byteLength;
        if (this.ended || this.discarding.bytes > this.discarding.limits.maxBytes) this.discarding.done();
        return;
      }
      // Copy (once: a view of the sliced ArrayBuffer): uWS reuses the memory behind
      // `chunk` once this callback returns.
      const copy = Buffer.from(chunk.slice(0));
      this.chunks.push(copy);
      this.queued += copy.length;
      if (!this.ended && this.queued > highWaterMark && !this.paused) {
        this.paused = true;
        res.pause();
      }
      this.wake?.();
    });
  }

  /** Whether body bytes are still on their way (nobody read them to the end). */
  get unfinished(): boolean {
    return !this.ended;
  }

  /**
   * Drops what was queued and reads and drops the rest of the body, within `limits`. A
   * refused upload is answered after this: a socket closed with unread data makes the
   * kernel send a reset, and a client still sending would see ECONNRESET or EPIPE instead
   * of the answer. Resolves when the body ended, past a limit, or when the client left
   * (`unfinished` tells which). A reader still waiting for data fails with ERR_ABORTED.
   */
  discard(limits: DiscardLimits): Promise<void> {
    this.chunks = [];
    this.queued = 0;
    if (this.ended || this.signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), limits.maxMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.discarding = { bytes: 0, limits, done };
      this.wake?.();
      if (this.paused) {
        this.paused = false;
        this.res.resume();
      }
    });
  }

  /** The raw bytes as they arrive, at most `maxBytes` of them. */
  private async *drain(maxBytes: number): AsyncGenerator<Buffer> {
    if (this.consumed) throw new Error('request body already consumed');
    this.consumed = true;
    let total = 0;
    for (;;) {
      if (this.signal.aborted) throw new AppError('ERR_ABORTED', 'the client closed the connection');
      if (this.discarding) throw new AppError('ERR_ABORTED', 'the request was answered before its body was read');
      const chunk = this.chunks.shift();
      if (chunk) {
        this.queued -= chunk.length;
        total += chunk.length;
        if (total > maxBytes) throw tooLarge(maxBytes);
        if (this.paused && this.queued < highWaterMark / 2) {
          this.paused = false;
          this.res.resume();
        }
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  /**
   * The body as decoded bytes, at most `maxBytes` of them (a gzip body: of the
   * compressed and of the decompressed bytes).
   * @throws AppError ERR_UNSUPPORTED_MEDIA_TYPE for a Content-Encoding earshot does not decode
   */
  private decoded(maxBytes: number): AsyncGenerator<Buffer> {
    const encoding = bodyEncoding(this.contentEncoding);
    // No body at all has nothing to decompress (zlib would call it truncated).
    const empty = this.ended && this.chunks.length === 0;
    return encoding === 'gzip' && !empty ? gunzip(this.drain(maxBytes), { maxBytes }) : this.drain(maxBytes);
  }

  /**
   * Streams the body into a new file (mode 0600) and fsyncs it. The file is removed if
   * the upload fails, is aborted or is out of bounds; with `inspect`, the first bytes are
   * checked before the file is created, so a refused body never has one. `created` is
   * called once the file exists (its directory entry can be fsynced meanwhile). Resolves
   * once the data is fsynced; the descriptor's close runs on after that (nothing of the
   * file's durability depends on it). A body that has all arrived is written in one go.
   */
  async toFile(file: string, limits: { maxBytes: number; minBytes?: number; inspect?: Inspection; created?: () => void }): Promise<SpoolResult> {
    const chunks = this.decoded(limits.maxBytes);
    let handle: FileHandle | undefined;
    let bytes = 0;
    try {
      const head: Buffer[] = [];
      if (limits.inspect) {
        let headBytes = 0;
        while (headBytes < limits.inspect.bytes) {
          const next = await chunks.next();
          if (next.done) break;
          head.push(next.value);
          headBytes += next.value.length;
        }
        limits.inspect.check(Buffer.concat(head));
      }
      if (this.ended && bodyEncoding(this.contentEncoding) !== 'gzip') {
        // The whole body is here (a small upload usually is by now): one task on libuv's
        // pool creates, writes and fsyncs the file, not one task per step (issue 13).
        for await (const chunk of chunks) head.push(chunk);
        bytes = head.reduce((sum, chunk) => sum + chunk.length, 0);
        checkMinBytes(bytes, limits.minBytes);
        await loadAddon().writeNewFile(file, head, 0o600);
        limits.created?.();
        return { bytes };
      }
      handle = await open(file, 'wx', 0o600);
      limits.created?.();
      for (const chunk of head) {
        await handle.write(chunk);
        bytes += chunk.length;
      }
      for await (const chunk of chunks) {
        await handle.write(chunk);
        bytes += chunk.length;
      }
      checkMinBytes(bytes, limits.minBytes);
      await handle.sync();
      void handle.close().catch(() => {});
      handle = undefined;
      return { bytes };
    } catch (err) {
      await chunks.return(undefined);
      if (handle) {
        await handle.close().catch(() => {});
        await rm(file, { force: true });
      }
      throw err;
    }
  }

  /**
   * The body as decoded bytes as they arrive, at most `maxBytes` of them (then it throws
   * ERR_PAYLOAD_TOO_LARGE), for a consumer that parses as it goes (a multipart form).
   * The socket is paused while the consumer does not pull.
   */
  stream(maxBytes: number): AsyncGenerator<Buffer> {
    return this.decoded(maxBytes);
  }

  /** The whole body as text, for small bodies (JSON). */
  async text(maxBytes: number): Promise<string> {
    const parts: Buffer[] = [];
    for await (const chunk of this.decoded(maxBytes)) parts.push(chunk);
    return Buffer.concat(parts).toString('utf8');
  }

  /** The body parsed as JSON; an empty body is undefined. */
  async json(maxBytes: number): Promise<unknown> {
    const text = await this.text(maxBytes);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new AppError('ERR_INVALID_ARGUMENT', `The request body is not valid JSON: ${(err as Error).message}`);
    }
  }
}

function checkMinBytes(bytes: number, minBytes: number | undefined): void {
  if (minBytes !== undefined && bytes < minBytes) {
    throw new AppError('ERR_INVALID_ARGUMENT', `Stream was ${bytes} bytes but needs to be at least ${minBytes} bytes.`);
  }
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('ERR_PAYLOAD_TOO_LARGE', `The request body exceeds the maximum of ${maxBytes} bytes`);
}
