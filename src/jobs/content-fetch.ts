import { open, rm } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

import type { CidrPolicy } from '../delivery/cidr.js';
import { checkIpLiteral, describeNetworkError, displayUrl, guardedLookup, targetPort } from '../delivery/http-client.js';
import { SNIFF_BYTES, sniffAudio } from '../engine/audio-sniff.js';
import { type AudioFormat, declaresAudio, detectAudioFormat, parseAudioMediaType } from '../engine/media-type.js';
import { AppError } from '../errors.js';
import type { FetchedAudio } from './job-service.js';

/** A download that receives nothing for this long gives up (connecting, waiting for the answer, or mid-body). */
export const defaultIdleTimeoutMs = 30_000;
/** The longest a whole download may take: 1 GB (IBM's upload limit) at under 300 kB/s. */
export const defaultTotalTimeoutMs = 60 * 60_000;

export const contentUserAgent = 'earshot-fetch/1 (earshot speech-to-text appliance)';

export interface FetchContentOptions {
  /** An http: or https: URL without credentials. */
  url: string;
  /** Where the body goes: a new file (it must not exist), fsynced once complete, removed on any failure. */
  path: string;
  /** Where connections may go (the callbacks' allow-list); checked on the resolved address, at connect time. */
  policy: CidrPolicy;
  /** Larger bodies fail with ERR_CONTENT_TOO_LARGE, declared (Content-Length) or as they arrive. */
  maxBytes: number;
  /**
   * The most the disk could ever hold of it (its size, less the space kept free): a body
   * that declares more fails with ERR_CONTENT_TOO_LARGE at once, where a full disk would
   * only make its job wait for space that can never come.
   */
  diskBytes?: number;
  /** Longest time without a byte from the host, from the request on (default 30 s). */
  idleTimeoutMs?: number;
  /** Longest time for the whole download (default 1 h). */
  totalTimeoutMs?: number;
  /** Aborting removes the partial file and rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Called with the bytes written so far after each chunk (the scheduler's sign of progress). */
  onProgress?: (bytes: number) => void;
  userAgent?: string;
}

export interface FetchedContent {
  bytes: number;
  /** The response's Content-Type, as sent (undefined when it sent none). */
  contentType: string | undefined;
}

/**
 * Checks an audio URL before anything is connected to: an absolute http(s) URL without
 * credentials. The address is checked later, when the download connects.
 * @throws AppError ERR_CONTENT_REFUSED saying what is wrong with the URL
 */
export function checkContentUrl(url: unknown): URL {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new AppError('ERR_CONTENT_REFUSED', `The audio URL ${JSON.stringify(url)} is not an absolute http: or https: URL`);
  }
  if (typeof url !== 'string' || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new AppError('ERR_CONTENT_REFUSED', `The audio URL ${displayUrl(parsed)} is not an http: or https: URL`);
  }
  if (parsed.username || parsed.password) {
    // As for callbacks: credentials in a URL would let it speak for their owner (earshot's
    // own API, a router's admin page); signed URLs (a SAS in the query) are the way.
    throw new AppError(
      'ERR_CONTENT_REFUSED',
      `The audio URL ${displayUrl(parsed)} carries credentials (user:password@); give a URL without them, such as a signed URL`,
    );
  }
  return parsed;
}

/** A failure of the connection or exchange with the host as the ERR_CONTENT_* code that says what to fix. */
function contentError(err: unknown, url: URL): AppError {
  const shown = displayUrl(url);
  if (err instanceof AppError) {
    // guardedLookup refuses addresses outside the policy with the callbacks' code.
    if (err.code === 'ERR_TARGET_FORBIDDEN')
      return new AppError('ERR_CONTENT_REFUSED', `The audio URL ${shown} is not allowed: ${err.message}`, { cause: err });
    return err;
  }
  const { dns, what } = describeNetworkError(err as NodeJS.ErrnoException);
  if (dns) {
    return new AppError(
      'ERR_CONTENT_UNREACHABLE',
      `Could not resolve the host ${url.hostname} of the audio URL ${shown} (${what}): check the URL and the device's DNS`,
      {
        cause: err,
      },
    );
  }
  return new AppError('ERR_CONTENT_UNREACHABLE', `Could not read the audio URL ${shown}: ${what}`, { cause: err });
}

/** The ERR_CONTENT_* failure of a response that is not a 2xx. */
function statusError(res: IncomingMessage, url: URL): AppError {
  const shown = displayUrl(url);
  const status = res.statusCode ?? 0;
  const answered = `${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  if (status >= 300 && status < 400) {
    let location = '';
    try {
      if (res.headers.location) location = ` to ${displayUrl(new URL(res.headers.location, url))}`;
    } catch {
      // A Location that is no URL: the status says enough.
    }
    return new AppError(
      'ERR_CONTENT_REDIRECT',
      `The audio URL ${shown} answered ${answered}, a redirect${location}; redirects are not followed (their target would escape the address check): give the final URL`,
    );
  }
  if (status === 404 || status === 410) {
    return new AppError('ERR_CONTENT_NOT_FOUND', `The audio URL ${shown} answered ${answered}: check the URL, and that the file still exists`);
  }
  const hint = status === 401 || status === 403 ? ': the URL may need a signature (SAS) that grants reading, or its signature expired' : '';
  return new AppError('ERR_CONTENT_UNREACHABLE', `The audio URL ${shown} answered ${answered}${hint}`);
}

const tooLarge = (url: URL, what: string, maxBytes: number) =>
  new AppError('ERR_CONTENT_TOO_LARGE', `The audio at ${displayUrl(url)} ${what}, over the limit of ${maxBytes} bytes (EARSHOT_MAX_UPLOAD_BYTES)`);

/**
 * Downloads `url` into a new file at `path` and fsyncs it, under the callbacks' address
 * policy (checked on the address connected to, so DNS rebinding cannot reach the LAN's
 * other hosts or this service). Never follows redirects; fails when the host sends nothing
 * for `idleTimeoutMs` or the whole takes longer than `totalTimeoutMs`, and when the body
 * is larger than `maxBytes`. On any failure the partial file is removed.
 *
 * @throws AppError ERR_CONTENT_REFUSED (URL or address not allowed), ERR_CONTENT_REDIRECT,
 *   ERR_CONTENT_NOT_FOUND (404/410), ERR_CONTENT_UNREACHABLE (DNS, connection, early
 *   close, other statuses), ERR_CONTENT_TOO_LARGE, ERR_CONTENT_TIMEOUT, ERR_ABORTED (the
 *   signal); errors of the file itself (ENOSPC) as the file system reported them, so that
 *   a full disk is recognised as such.
 */
export async function fetchContent(o: FetchContentOptions): Promise<FetchedContent> {
  const url = checkContentUrl(o.url);
  let host: string;
  try {
    // IP literals are connected to without a lookup: checked here.
    host = checkIpLiteral(url, o.policy);
  } catch (err) {
    throw contentError(err, url);
  }
  const shown = displayUrl(url);
  const idleMs = o.idleTimeoutMs ?? defaultIdleTimeoutMs;
  const totalMs = o.totalTimeoutMs ?? defaultTotalTimeoutMs;
  if (o.signal?.aborted) throw new AppError('ERR_ABORTED', `Fetching ${shown} was aborted`, { cause: o.signal.reason });

  const file = await open(o.path, 'wx', 0o600);
  let fileClosed = false;
  // The first reason the download was stopped (timeout, abort): it wins over the socket
  // errors that stopping it causes.
  let stopped: AppError | undefined;
  let response: IncomingMessage | undefined;
  const get = url.protocol === 'https:' ? https.get : http.get;
  const req = get({
    protocol: url.protocol,
    hostname: host,
    port: url.port || undefined,
    path: `${url.pathname}${url.search}`,
    headers: { 'User-Agent': o.userAgent ?? contentUserAgent, 'Accept-Encoding': 'identity' },
    lookup: guardedLookup(o.policy, targetPort(url)),
    // A connection of its own: no pooled socket outlives the address check that admitted it.
    agent: false,
  });
  const stop = (err: AppError) => {
    stopped ??= err;
    req.destroy(err);
    response?.destroy(err);
  };
  let idleTimer: NodeJS.Timeout | undefined;
  const stillAlive = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => stop(new AppError('ERR_CONTENT_TIMEOUT', `The audio URL ${shown} sent nothing for ${idleMs} ms`)), idleMs);
  };
  stillAlive();
  const totalTimer = setTimeout(
    () => stop(new AppError('ERR_CONTENT_TIMEOUT', `Fetching the audio URL ${shown} took longer than ${totalMs} ms; give a faster host or a smaller file`)),
    totalMs,
  );
  const onAbort = () => stop(new AppError('ERR_ABORTED', `Fetching ${shown} was aborted`, { cause: o.signal?.reason }));
  o.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', (err) => reject(stopped ?? contentError(err, url)));
    });
    response = res;
    stillAlive();
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw statusError(res, url);
    const declared = Number(res.headers['content-length']);
    if (declared > o.maxBytes) throw tooLarge(url, `is ${declared} bytes (Content-Length)`, o.maxBytes);
    if (o.diskBytes !== undefined && declared > o.diskBytes) {
      throw new AppError(
        'ERR_CONTENT_TOO_LARGE',
        `The audio at ${displayUrl(url)} is ${declared} bytes (Content-Length), more than this device's disk can ever hold (${o.diskBytes} bytes beside the space it keeps free)`,
      );
    }

    let bytes = 0;
    const chunks = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (err) {
        throw stopped ?? contentError(err, url);
      }
      if (next.done) break;
      stillAlive();
      bytes += next.value.length;
      if (bytes > o.maxBytes) throw tooLarge(url, `grew past ${o.maxBytes} bytes as it arrived`, o.maxBytes);
      // Not wrapped: a full disk must reach the disk-space handling as the ENOSPC it is.
      for (let at = 0; at < next.value.length; ) at += (await file.write(next.value, at)).bytesWritten;
      o.onProgress?.(bytes);
    }
    if (stopped) throw stopped;
    if (!res.complete) throw new AppError('ERR_CONTENT_UNREACHABLE', `The audio URL ${shown} closed the connection before the whole file arrived`);
    await file.sync();
    fileClosed = true;
    await file.close();
    return { bytes, contentType: res.headers['content-type'] };
  } catch (err) {
    if (!fileClosed) await file.close().catch(() => {});
    await rm(o.path, { force: true });
    throw err;
  } finally {
    clearTimeout(idleTimer);
    clearTimeout(totalTimer);
    o.signal?.removeEventListener('abort', onAbort);
    req.destroy();
  }
}

/**
 * The format of fetched audio: what the response's Content-Type says, or, when it says
 * nothing (none, `application/octet-stream`, a malformed header), what the first bytes
 * show (the decoder has the last word). A type that is not audio at all (a storage
 * service's `text/plain`) is accepted when the bytes are audio, with a warning.
 * @throws AppError ERR_AUDIO_UNSUPPORTED (an audio type earshot cannot decode, or data
 *   that is not audio under a type that is not audio); ERR_INVALID_ARGUMENT (bad
 *   parameters of a raw type, such as audio/l16 without a rate)
 */
export function fetchedAudioFormat(contentType: string | undefined, head: Buffer): { format: AudioFormat; warning?: string } {
  // As for an upload whose type is not audio: what the bytes are called, and the decoder,
  // which sniffs the data itself, finds the rest.
  const sniffed = (): AudioFormat | undefined => {
    const audio = sniffAudio(head);
    return audio && { kind: 'auto', mediaType: audio.mediaType };
  };
  let declares: boolean;
  try {
    declares = declaresAudio(contentType);
  } catch {
    // A malformed header says nothing.
    return { format: sniffed() ?? parseAudioMediaType(undefined) };
  }
  if (!declares) return detectAudioFormat(contentType!, head);
  const format = parseAudioMediaType(contentType);
  if (format.kind !== 'auto' || format.container) return { format };
  return { format: sniffed() ?? format };
}

/**
 * Fetches a job's audio (`fetchContent`) and tells its format (`fetchedAudioFormat`):
 * what the scheduler's fetch step does. Nothing is left at `path` when it fails.
 */
export async function fetchJobAudio(o: FetchContentOptions): Promise<FetchedAudio> {
  const { bytes, contentType } = await fetchContent(o);
  try {
    const handle = await open(o.path, 'r');
    let head: Buffer;
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(SNIFF_BYTES), 0, SNIFF_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
    const { format, warning } = fetchedAudioFormat(contentType, head);
    return { bytes, contentType: contentType ?? 'application/octet-stream', format, ...(warning ? { warnings: [warning] } : {}) };
  } catch (err) {
    await rm(o.path, { force: true });
    throw err;
  }
}
