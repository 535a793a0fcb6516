// Downloads a whisper.cpp model (or whisper.cpp's Silero VAD model) onto the device and
// checks it against the SHA-256 pinned in scripts/lib/model-catalog.ts. Only Node's
// built-ins: http/https, crypto, fs.
//
//   scripts/download-model NAME [--dir DIR] [--base-url URL] [...]   (see USAGE below)
//
// - Written to <dir>/ggml-NAME.bin.part, renamed to ggml-NAME.bin only after the checksum
//   matches; a mismatch deletes the part file and exits 1.
// - Resumable: a part file left by an interrupted run (power cut, Ctrl-C, dropped
//   connection) is continued with an HTTP Range request; a server that ignores Range is
//   detected (200 instead of 206) and the download starts over. Network errors are
//   retried, resuming each time, for as long as bytes keep arriving.
// - Redirects are followed (Hugging Face answers with a redirect to its CDN), up to a
//   limit; a connection idle for --timeout seconds is dropped.
// - Idempotent: a file already present with the pinned checksum is left alone (exit 0).
// - Progress: a bar on a terminal, a plain line every 15 s otherwise (the journal).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { join, resolve } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';

import {
  CatalogError,
  MODEL_CATALOG,
  WHISPER_BASE_URL,
  findModel,
  isValidModelName,
  parseCatalog,
  type CatalogEntry,
} from './lib/model-catalog.js';
import { runIfMain } from './lib/cli.js';

export { MODEL_CATALOG, parseCatalog, type CatalogEntry } from './lib/model-catalog.js';

/** Why a download failed; `retryable` failures are retried (resuming) before giving up. */
export type DownloadErrorCode =
  | 'NOT_FOUND'
  | 'HTTP_STATUS'
  | 'TIMEOUT'
  | 'NETWORK'
  | 'TRUNCATED'
  | 'BAD_RANGE'
  | 'TOO_MANY_REDIRECTS'
  | 'SIZE_MISMATCH'
  | 'CHECKSUM_MISMATCH'
  | 'EXISTS_MISMATCH';

export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

export type ProgressMode = 'bar' | 'lines' | 'none';

export interface DownloadOptions {
  /** What to fetch: file name, pinned checksums and size. */
  entry: CatalogEntry;
  /** Where from (defaults to entry.url). */
  url?: string;
  /** Directory the model goes to (created if missing). */
  dir: string;
  /** Compare checksums (default true). When false the SHA-256 is still computed and reported. */
  verify?: boolean;
  /** Replace a file already present whose checksum differs (default false: refuse). */
  force?: boolean;
  /** Drop a connection with no data for this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Redirects followed per request (default 10). */
  maxRedirects?: number;
  /**
   * Retries after a retryable failure, each resuming the part file (default 3; 0: none).
   * A failure after which the part file had grown does not count.
   */
  retries?: number;
  /** Delay before the first retry, doubled each time (default 2 000 ms). */
  retryDelayMs?: number;
  /** Progress output (default 'none'). */
  progress?: ProgressMode;
  /** In 'lines' mode, the least time between two progress lines (default 15 000 ms). */
  progressIntervalMs?: number;
  /** One line of human output (no newline). */
  log?: (line: string) => void;
  /** Raw terminal output, for the progress bar. */
  write?: (text: string) => void;
  /** Extra request headers, sent to the first host only (never across a redirect to another origin). */
  headers?: Record<string, string>;
}

export interface DownloadResult {
  status: 'downloaded' | 'present';
  path: string;
  bytes: number;
  sha256: string;
  /** Bytes that were already in the part file when this run started downloading. */
  resumedFrom: number;
}

const USER_AGENT = 'earshot-download-model/1';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** SHA-256 and SHA-1 of a file, in one read. */
export async function hashFile(path: string): Promise<{ sha256: string; sha1: string; bytes: number }> {
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  let bytes = 0;
  await pipeline(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        sha256.update(chunk);
        sha1.update(chunk);
        bytes += chunk.length;
        done();
      },
    }),
  );
  return { sha256: sha256.digest('hex'), sha1: sha1.digest('hex'), bytes };
}

async function fileSize(path: string): Promise<number | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** "12.3 MB": decimal megabytes, as Hugging Face shows sizes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  return `${(bytes / 1_000_000_000).toFixed(2)} GB`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(h ? 2 : 1, '0')}:${String(s % 60).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

/** Progress of one transfer: redraws a bar on a terminal, or logs a line now and then. */
export class ProgressReporter {
  private readonly startedAt = Date.now();
  private lastDraw = 0;
  private lastLine: number;
  private lastWidth = 0;

  constructor(
    private readonly mode: ProgressMode,
    private readonly label: string,
    private readonly total: number | null,
    private readonly start: number,
    private readonly out: { log: (line: string) => void; write: (text: string) => void },
    private readonly intervalMs = 15_000,
  ) {
    this.lastLine = this.startedAt;
  }

  update(received: number, final = false): void {
    const now = Date.now();
    if (this.mode === 'bar') {
      if (!final && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const line = this.render(received, now);
      const pad = Math.max(0, this.lastWidth - line.length);
      this.lastWidth = line.length;
      this.out.write(`\r${line}${' '.repeat(pad)}${final ? '\n' : ''}`);
    } else if (this.mode === 'lines' && !final && now - this.lastLine >= this.intervalMs) {
      this.lastLine = now;
      this.out.log(this.render(received, now, false));
    }
  }

  private render(received: number, now: number, bar = true): string {
    const seconds = (now - this.startedAt) / 1000;
    const rate = seconds > 0 ? (received - this.start) / seconds : 0;
    const speed = `${formatBytes(Math.round(rate))}/s`;
    if (this.total === null || this.total <= 0) return `${this.label} ${formatBytes(received)} ${speed}`;
    const fraction = Math.min(1, received / this.total);
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const eta = rate > 0 ? formatDuration((this.total - received) / rate) : '--:--';
    const amounts = `${formatBytes(received)} of ${formatBytes(this.total)}`;
    if (!bar) return `${this.label}: ${percent.trim()} (${amounts}, ${speed}, ${eta} left)`;
    const width = 24;
    const filled = Math.round(fraction * width);
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent} ${amounts} ${speed} ETA ${eta}`;
  }
}

interface ContentRange {
  start: number | null;
  end: number | null;
  total: number | null;
}

/** Parses `bytes 100-199/1000`, `bytes 100-199/*` and `bytes * /1000` (RFC 9110 14.4). */
export function parseContentRange(header: string | undefined): ContentRange | null {
  if (!header) return null;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(header);
  if (!m) return null;
  return {
    start: m[1] === undefined ? null : Number(m[1]),
    end: m[2] === undefined ? null : Number(m[2]),
    total: m[3] === '*' ? null : Number(m[3]),
  };
}

function contentLength(res: IncomingMessage): number | null {
  const v = res.headers['content-length'];
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

interface Transfer {
  res: IncomingMessage;
  url: URL;
  /** Set when the idle timeout fired, so that the resulting stream error is reported as a timeout. */
  timedOut: () => boolean;
}

/** GET `url`, following redirects; resolves with the first non-redirect response. */
function request(
  start: URL,
  headers: Record<string, string>,
  firstHostHeaders: Record<string, string>,
  timeoutMs: number,
  maxRedirects: number,
): Promise<Transfer> {
  return new Promise((resolvePromise, reject) => {
    let redirects = 0;
    const go = (url: URL): void => {
      const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
      if (!client) {
        reject(new DownloadError('HTTP_STATUS', `Expected an http or https URL but received ${url.href}`));
        return;
      }
      const h = { ...headers, ...(url.origin === start.origin ? firstHostHeaders : {}) };
      let timedOut = false;
      // A fresh connection per request (no keep-alive pool) so nothing outlives the download.
      const req = client.request(url, { method: 'GET', headers: h, agent: false });
      req.setTimeout(timeoutMs, () => {
        timedOut = true;
        req.destroy(new DownloadError('TIMEOUT', `no data from ${url.host} for ${timeoutMs / 1000} s`, true));
      });
      req.on('error', (err) => {
        if (err instanceof DownloadError) reject(err);
        else reject(new DownloadError('NETWORK', `${url.host}: ${err.message}`, true));
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (REDIRECTS.has(status) && location) {
          res.resume();
          req.destroy();
          if (++redirects > maxRedirects) {
            reject(new DownloadError('TOO_MANY_REDIRECTS', `more than ${maxRedirects} redirects, last to ${location}`));
            return;
          }
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            reject(new DownloadError('HTTP_STATUS', `${url.host} redirected to an invalid URL: ${location}`));
            return;
          }
          go(next);
          return;
        }
        resolvePromise({ res, url, timedOut: () => timedOut });
      });
      req.end();
    };
    go(start);
  });
}

function statusError(status: number, url: URL): DownloadError {
  const where = `${url.origin}${url.pathname}`;
  if (status === 404) return new DownloadError('NOT_FOUND', `${where} was not found (HTTP 404)`);
  if (status === 401 || status === 403) {
    return new DownloadError('HTTP_STATUS', `${where} refused the download (HTTP ${status}); if the host needs a token, set HF_TOKEN`);
  }
  const retryable = status >= 500 || status === 429 || status === 408;
  return new DownloadError('HTTP_STATUS', `${where} answered HTTP ${status}`, retryable);
}

interface AttemptContext {
  url: URL;
  part: string;
  size: number | null;
  label: string;
  timeoutMs: number;
  maxRedirects: number;
  progress: ProgressMode;
  progressIntervalMs: number;
  log: (line: string) => void;
  write: (text: string) => void;
  headers: Record<string, string>;
}

/** One request: continues (or starts) the part file. Resolves when the part is complete. */
async function attempt(ctx: AttemptContext): Promise<void> {
  let have = (await fileSize(ctx.part)) ?? 0;
  if (ctx.size !== null && have > ctx.size) {
    ctx.log(`${ctx.part} is larger than the expected ${ctx.size} bytes: starting over`);
    await rm(ctx.part, { force: true });
    have = 0;
  }
  if (ctx.size !== null && have === ctx.size && have > 0) return;

  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, 'Accept-Encoding': 'identity' };
  if (have > 0) headers.Range = `bytes=${have}-`;
  const { res, url, timedOut } = await request(ctx.url, headers, ctx.headers, ctx.timeoutMs, ctx.maxRedirects);
  const status = res.statusCode ?? 0;

  let append = false;
  let total: number | null = null;
  if (status === 206) {
    const range = parseContentRange(res.headers['content-range']);
    if (!range || range.start !== have) {
      res.destroy();
      await rm(ctx.part, { force: true });
      throw new DownloadError('BAD_RANGE',
        `asked ${url.host} for bytes from ${have} but got "${res.headers['content-range'] ?? 'no Content-Range'}": starting over`, true);
    }
    append = have > 0;
    const length = contentLength(res);
    total = range.total ?? (length === null ? null : have + length);
  } else if (status === 200) {
    if (have > 0) ctx.log(`${url.host} ignored the range request (HTTP 200): downloading from the start`);
    total = contentLength(res);
  } else if (status === 416 && have > 0) {
    res.resume();
    const range = parseContentRange(res.headers['content-range']);
    if (range?.total === have) return; // the part file already holds everything
    await rm(ctx.part, { force: true });
    throw new DownloadError('BAD_RANGE', `${url.host} cannot resume at byte ${have} (HTTP 416): starting over`, true);
  } else {
    res.resume();
    throw statusError(status, url);
  }

  if (ctx.size !== null && total !== null && total !== ctx.size) {
    res.destroy();
    if (append) await rm(ctx.part, { force: true });
    throw new DownloadError('SIZE_MISMATCH',
      `${url.host} offers ${total} bytes but the catalog pins ${ctx.size} bytes for this file: not downloading it`);
  }

  const start = append ? have : 0;
  if (start > 0) ctx.log(`resuming at ${formatBytes(start)}${total ? ` of ${formatBytes(total)}` : ''}`);
  const expected = total ?? ctx.size;
  const progress = new ProgressReporter(ctx.progress, ctx.label, expected, start, { log: ctx.log, write: ctx.write },
    ctx.progressIntervalMs);
  let received = start;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (expected !== null && received > expected) {
        done(new DownloadError('SIZE_MISMATCH', `${url.host} sent more than the expected ${expected} bytes`));
        return;
      }
      progress.update(received);
      done(null, chunk);
    },
  });
  const file = await open(ctx.part, append ? 'a' : 'w');
  try {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        file.write(chunk).then(() => done(), done);
      },
    });
    await pipeline(res, meter, sink);
    // On an SD card a power cut must not leave a "complete" part file with holes.
    await file.sync();
  } catch (err) {
    if (ctx.progress === 'bar') ctx.write('\n');
    if (err instanceof DownloadError) {
      if (err.code === 'SIZE_MISMATCH') await rm(ctx.part, { force: true });
      throw err;
    }
    if (timedOut()) {
      throw new DownloadError('TIMEOUT', `no data from ${url.host} for ${ctx.timeoutMs / 1000} s after ${formatBytes(received)}`, true);
    }
    throw new DownloadError('TRUNCATED',
      `the connection to ${url.host} broke after ${formatBytes(received)}${expected ? ` of ${formatBytes(expected)}` : ''} (${(err as Error).message})`, true);
  } finally {
    await file.close();
  }
  if (expected !== null && received !== expected) {
    if (ctx.progress === 'bar') ctx.write('\n');
    throw new DownloadError('TRUNCATED',
      `${url.host} closed the connection after ${formatBytes(received)} of ${formatBytes(expected)}`, true);
  }
  progress.update(received, true);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename durable; some filesystems refuse to fsync a directory, which is fine.
  try {
    const fd = await open(dir, 'r');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Downloads `entry` into `dir` unless it is already there with the right checksum.
 * Throws a DownloadError (with a string `code`) on failure; the part file is kept when the
 * failure is one a later run can resume from, and deleted when its content is wrong.
 */
export async function downloadModel(options: DownloadOptions): Promise<DownloadResult> {
  const { entry } = options;
  const verify = options.verify ?? true;
  const log = options.log ?? (() => {});
  const write = options.write ?? (() => {});
  const retries = options.retries ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 2000;
  const dir = resolve(options.dir);
  const dest = join(dir, entry.file);
  const part = `${dest}.part`;
  const sha256 = verify ? entry.sha256 : null;
  const sha1 = verify ? (entry.sha1 ?? null) : null;

  const mismatch = (got: { sha256: string; sha1: string }): string | null => {
    if (sha256 !== null && got.sha256 !== sha256) return `SHA-256 ${got.sha256}, expected ${sha256}`;
    if (sha1 !== null && got.sha1 !== sha1) return `SHA-1 ${got.sha1}, expected ${sha1}`;
    return null;
  };

  if ((await fileSize(dest)) !== null) {
    const got = await hashFile(dest);
    const wrong = mismatch(got);
    if (!wrong) {
      log(`${entry.name} is already present${verify ? ' and verified' : ' (not verified)'}: ${dest} (sha256 ${got.sha256})`);
      return { status: 'present', path: dest, bytes: got.bytes, sha256: got.sha256, resumedFrom: 0 };
    }
    // scripts/setup leaves a generated random-weight stand-in under the real name when it
    // could not download: the real model replaces it without --force.
    const standIn = await readFile(`${dest}.json`, 'utf8').then((t) => t.includes('make-test-model'), () => false);
    if (standIn) {
      log(`${dest} is a generated random-weight stand-in: replacing it with the real model`);
      await rm(`${dest}.json`, { force: true });
    } else if (!options.force) {
      throw new DownloadError('EXISTS_MISMATCH',
        `${dest} already exists with ${wrong}: left alone (pass --force to replace it)`);
    }
    log(`${dest} has ${wrong}: downloading a replacement`);
  }

  await mkdir(dir, { recursive: true });
  const url = new URL(options.url ?? entry.url);
  const resumedFrom = (await fileSize(part)) ?? 0;
  const size = entry.size ?? null;
  log(`downloading ${entry.name}${size ? ` (${formatBytes(size)})` : ''} from ${url.href} to ${dest}`);
  const ctx: AttemptContext = {
    url,
    part,
    size,
    label: entry.name,
    timeoutMs: options.timeoutMs ?? 30_000,
    maxRedirects: options.maxRedirects ?? 10,
    progress: options.progress ?? 'none',
    progressIntervalMs: options.progressIntervalMs ?? 15_000,
    log,
    write,
    headers: options.headers ?? {},
  };
  // A failure after which more bytes had arrived does not count against `retries`: a
  // long download over a flaky link keeps going as long as it makes progress.
  for (let failures = 0; ; ) {
    const before = (await fileSize(part)) ?? 0;
    try {
      await attempt(ctx);
      break;
    } catch (err) {
      const e = err instanceof DownloadError ? err : new DownloadError('NETWORK', (err as Error).message, true);
      const progressed = ((await fileSize(part)) ?? 0) > before;
      if (!progressed) failures++;
      if (!e.retryable || retries === 0 || failures > retries) {
        const kept = e.retryable ? await fileSize(part) : null;
        if (kept) e.message += `; ${formatBytes(kept)} kept in ${part}: run again to resume`;
        throw e;
      }
      const delay = retryDelayMs * 2 ** Math.max(0, failures - 1);
      log(`${e.message}; retrying in ${(delay / 1000).toFixed(delay < 1000 ? 2 : 1)} s`);
      await sleep(delay);
    }
  }

  log(`checking ${entry.name}`);
  const got = await hashFile(part);
  const wrong = mismatch(got);
  if (wrong) {
    await rm(part, { force: true });
    throw new DownloadError('CHECKSUM_MISMATCH',
      `${entry.file} is corrupt or not the pinned file: ${wrong}. The download was deleted; nothing was installed`);
  }
  await rename(part, dest);
  await syncDir(dir);
  log(`${entry.name} ${sha256 ? 'verified and ' : ''}saved: ${dest} (${formatBytes(got.bytes)}, sha256 ${got.sha256})`);
  return { status: 'downloaded', path: dest, bytes: got.bytes, sha256: got.sha256, resumedFrom };
}

// ---------------------------------------------------------------------------------------
// Command line

export const USAGE = `Usage: scripts/download-model NAME [options]
       scripts/download-model --list

Downloads ggml-NAME.bin (a whisper.cpp model, or the Silero VAD model silero-v5.1.2) and
checks it against the SHA-256 pinned in scripts/lib/model-catalog.ts.

Options:
  --dir DIR            where models go (default: $EARSHOT_MODELS_DIR, else ./models)
  --base-url URL       fetch URL/ggml-NAME.bin instead of the catalog's host
                       (default: $EARSHOT_MODEL_BASE_URL, else the catalog's URL)
  --catalog FILE       use this catalog, {"models":[{name,file?,url?,sha256,sha1?,size?}]},
                       instead of the built-in one (default: $EARSHOT_MODEL_CATALOG)
  --sha256 HEX         expect this SHA-256 (for a model the catalog does not pin)
  --no-verify          do not check checksums (the SHA-256 is still printed)
  --force              replace a file already present whose checksum differs
  --timeout SECONDS    drop a connection idle this long (default 30)
  --retries N          retries after a network error, each resuming; a failure that
                       brought more bytes does not count (default 3, 0: no retry)
  --retry-delay SECONDS  delay before the first retry, doubled each time (default 2)
  --progress MODE      bar, lines or none (default: bar on a terminal, lines otherwise)
  --quiet              only errors
  --list               list the models in the catalog
  -h, --help

HF_TOKEN, when set, is sent as a bearer token to the first host (never across a redirect
to another host), as whisper.cpp's download script does.
Exit status: 0 downloaded or already present, 1 failed, 2 usage error.`;

class UsageError extends Error {}

export interface CliRequest {
  entry: CatalogEntry;
  options: DownloadOptions;
  quiet: boolean;
}

function positiveNumber(value: string | undefined, flag: string, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`Expected ${integer ? 'a whole number' : 'a number'} >= 0 for ${flag} but received "${value}"`);
  }
  return n;
}

async function loadCatalog(file: string | undefined): Promise<readonly CatalogEntry[]> {
  if (file === undefined || file === '') return MODEL_CATALOG;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the catalog ${file}: ${(err as Error).message}`);
  }
  try {
    return parseCatalog(text, file);
  } catch (err) {
    if (err instanceof CatalogError) throw new UsageError(err.message);
    throw err;
  }
}

function listCatalog(catalog: readonly CatalogEntry[]): string {
  const rows = catalog.map((e) => {
    const size = e.size ? formatBytes(e.size) : '?';
    return `  ${e.name.padEnd(22)} ${size.padStart(9)}  ${e.sha256 ?? '(no pinned SHA-256: needs --sha256 or --no-verify)'}`;
  });
  return ['Models (name, size, SHA-256):', ...rows].join('\n');
}

/** Parses the command line into a download request; 'help' and 'list' print and exit. */
export async function parseCli(
  argv: string[],
  env: NodeJS.ProcessEnv,
  isTTY: boolean,
): Promise<CliRequest | { print: string }> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        dir: { type: 'string' },
        'base-url': { type: 'string' },
        catalog: { type: 'string' },
        sha256: { type: 'string' },
        'no-verify': { type: 'boolean' },
        force: { type: 'boolean' },
        timeout: { type: 'string' },
        retries: { type: 'string' },
        'retry-delay': { type: 'string' },
        progress: { type: 'string' },
        quiet: { type: 'boolean' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return { print: USAGE };
  const catalog = await loadCatalog(v.catalog ?? env.EARSHOT_MODEL_CATALOG);
  if (v.list) return { print: listCatalog(catalog) };

  if (parsed.positionals.length !== 1) {
    throw new UsageError(`Expected one model name but received ${parsed.positionals.length}`);
  }
  const name = parsed.positionals[0] as string;
  if (!isValidModelName(name)) {
    throw new UsageError(`Expected a model name (letters, digits, ".", "_", "-") but received "${name}"`);
  }
  const sha256 = v.sha256?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new UsageError(`Expected 64 hex digits for --sha256 but received "${v.sha256}"`);
  }
  const verify = !v['no-verify'];

  let entry = findModel(catalog, name);
  if (!entry) {
    if (sha256 === undefined && verify) {
      throw new UsageError(`unknown model "${name}". Known: ${catalog.map((e) => e.name).join(', ')}.\n` +
        `To fetch ggml-${name}.bin anyway, pass --sha256 HEX (or --no-verify).`);
    }
    const file = `ggml-${name}.bin`;
    entry = { name, file, url: `${WHISPER_BASE_URL}/${file}`, sha256: null, sha1: null, size: null };
  }
  if (sha256 !== undefined) {
    // The user's hash replaces the pinned ones (e.g. for a newer upstream upload).
    entry = { ...entry, sha256, sha1: null, size: entry.sha256 === sha256 ? entry.size ?? null : null };
  } else if (entry.sha256 === null && verify) {
    throw new UsageError(`the catalog pins no SHA-256 for "${entry.name}": pass --sha256 HEX (or --no-verify)`);
  }

  const progress = v.progress ?? (isTTY ? 'bar' : 'lines');
  if (progress !== 'bar' && progress !== 'lines' && progress !== 'none') {
    throw new UsageError(`Expected bar, lines or none for --progress but received "${progress}"`);
  }
  const timeout = positiveNumber(v.timeout, '--timeout') ?? 30;
  if (timeout <= 0) throw new UsageError(`Expected a number > 0 for --timeout but received "${v.timeout}"`);
  const baseUrl = v['base-url'] ?? env.EARSHOT_MODEL_BASE_URL;
  let url = entry.url;
  if (baseUrl !== undefined && baseUrl !== '') {
    try {
      const base = new URL(baseUrl);
      if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http');
    } catch {
      throw new UsageError(`Expected an http(s) URL for --base-url but received "${baseUrl}"`);
    }
    url = `${baseUrl.replace(/\/+$/, '')}/${entry.file}`;
  }
  const dir = v.dir ?? env.EARSHOT_MODELS_DIR ?? 'models';
  const headers: Record<string, string> = {};
  if (env.HF_TOKEN) headers.Authorization = `Bearer ${env.HF_TOKEN}`;

  const options: DownloadOptions = {
    entry,
    url,
    dir: resolve(dir),
    verify,
    force: v.force === true,
    timeoutMs: timeout * 1000,
    retries: positiveNumber(v.retries, '--retries', true) ?? 3,
    retryDelayMs: (positiveNumber(v['retry-delay'], '--retry-delay') ?? 2) * 1000,
    progress: v.quiet ? 'none' : progress,
    headers,
  };
  return { entry, options, quiet: v.quiet === true };
}

async function main(argv: string[]): Promise<number> {
  let request;
  try {
    request = await parseCli(argv, process.env, process.stdout.isTTY === true);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`download-model: ${err.message}\nRun "scripts/download-model --help" for the options.`);
    return 2;
  }
  if ('print' in request) {
    console.log(request.print);
    return 0;
  }
  const { options, quiet } = request;
  const stop = (signal: NodeJS.Signals, code: number) => () => {
    if (options.progress === 'bar') process.stdout.write('\n');
    console.error(`download-model: ${signal}: stopped; the partial download is kept and the next run resumes it`);
    process.exit(code);
  };
  process.once('SIGINT', stop('SIGINT', 130));
  process.once('SIGTERM', stop('SIGTERM', 143));
  try {
    await downloadModel({
      ...options,
      log: quiet ? () => {} : (line) => console.log(`download-model: ${line}`),
      write: (text) => process.stdout.write(text),
    });
    return 0;
  } catch (err) {
    const code = err instanceof DownloadError ? ` [${err.code}]` : '';
    console.error(`download-model: error${code}: ${(err as Error).message}`);
    return 1;
  }
}

await runIfMain(import.meta.url, main);
