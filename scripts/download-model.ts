// Downloads a whisper.cpp model (or whisper.cpp's Silero VAD model) onto the device and
// checks it against the SHA-256 pinned in scripts/lib/model-catalog.ts. The transfer is
// curl's and the checksum sha256sum's, both on every Raspberry Pi OS; this file picks the
// URL and the checksum and adds what curl's own options do not do:
//
// - Written to <dir>/ggml-NAME.bin.part, renamed to ggml-NAME.bin only after the checksum
//   matches; a mismatch deletes the part file and exits 1.
// - Resumable: a part file left by an interrupted run (power cut, Ctrl-C, dropped
//   connection) is continued with `curl -C -`. curl runs with --no-buffer, so what arrived
//   is in the file when it is killed. A server that ignores the range (curl exit 33) makes
//   the download start over.
// - Retries in a loop of our own, each one resuming: `curl --retry` truncates the file
//   back to where the attempt began (what a dropped connection brought is thrown away) and
//   only retries a dropped connection with --retry-all-errors. A failure after which more
//   bytes had arrived does not count against --retries.
// - Idempotent: a file already present with the pinned checksum is left alone (exit 0).
// - Progress: curl's bar on a terminal, a plain line every 15 s otherwise (the journal).

import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { CatalogError, MODEL_CATALOG, WHISPER_BASE_URL, findModel, isValidModelName, parseCatalog, type CatalogEntry } from './lib/model-catalog.js';
import { runIfMain } from './lib/cli.js';

export { MODEL_CATALOG, parseCatalog, type CatalogEntry } from './lib/model-catalog.js';

/** Why a download failed; `retryable` failures are retried (resuming) before giving up. */
export type DownloadErrorCode =
  | 'NOT_FOUND'
  | 'HTTP_STATUS'
  | 'TIMEOUT'
  | 'NETWORK'
  | 'TRUNCATED'
  | 'TOO_MANY_REDIRECTS'
  | 'SIZE_MISMATCH'
  | 'CHECKSUM_MISMATCH'
  | 'EXISTS_MISMATCH'
  | 'MISSING_TOOL';

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
  /** Drop a connection that brings no data for this many whole seconds (default 30). */
  timeoutSeconds?: number;
  /** Retries after a retryable failure, each resuming the part file (default 3; 0: none). */
  retries?: number;
  /** Delay before the first retry, doubled each time (default 2 000 ms). */
  retryDelayMs?: number;
  /** Progress output (default 'none'). */
  progress?: ProgressMode;
  /** One line of human output (no newline). */
  log?: (line: string) => void;
  /** Sent as a bearer token to the first host only (curl drops it across a redirect to another host). */
  token?: string;
}

const REDIRECTS = 10;
/** Between two progress lines in 'lines' mode. */
const PROGRESS_EVERY_MS = 15_000;

/** "12.3 MB": decimal megabytes, as Hugging Face shows sizes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  return `${(bytes / 1_000_000_000).toFixed(2)} GB`;
}

/** A progress line for the journal: `tiny.en: 50% (1.0 MB of 2.0 MB, 1.2 MB/s, 0:01 left)`. */
export function progressLine(label: string, received: number, total: number | null, bytesPerSecond: number): string {
  const speed = `${formatBytes(Math.round(bytesPerSecond))}/s`;
  if (!total) return `${label}: ${formatBytes(received)} (${speed})`;
  const left = bytesPerSecond > 0 ? Math.round((total - received) / bytesPerSecond) : null;
  const eta = left === null ? '--:--' : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  return `${label}: ${Math.floor((received / total) * 100)}% (${formatBytes(received)} of ${formatBytes(total)}, ${speed}, ${eta} left)`;
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

/** Runs a tool to completion: its exit code and stdout. */
function run(command: string, args: string[], opts: { stdin?: string; stderr?: 'inherit' | 'ignore'; onSpawn?: (kill: () => void) => void } = {}) {
  return new Promise<{ code: number; stdout: string }>((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', opts.stderr ?? 'ignore'] });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new DownloadError('MISSING_TOOL', `${command} is not installed: sudo apt-get install ${command === 'curl' ? 'curl' : 'coreutils'}`)
          : err,
      ),
    );
    child.on('close', (code, signal) => resolvePromise({ code: code ?? (signal === 'SIGKILL' ? 137 : 143), stdout }));
    child.stdin?.on('error', () => {}).end(opts.stdin);
    opts.onSpawn?.(() => child.kill('SIGTERM'));
  });
}

/** Lower-case hex digest of `file` by sha256sum (or sha1sum). */
async function digest(tool: 'sha256sum' | 'sha1sum', file: string): Promise<string> {
  const { code, stdout } = await run(tool, ['--', file]);
  const hex = /^\\?([0-9a-f]{40,64})\s/.exec(stdout)?.[1];
  if (code !== 0 || !hex) throw new Error(`${tool} ${file} failed (exit ${code})`);
  return hex;
}

/** Stops the curl of the running download (SIGINT/SIGTERM of the CLI): the part file stays. */
let stopCurl: (() => void) | null = null;

/**
 * One curl run: continues (or starts) the part file. Resolves when curl says the transfer
 * is complete, or with 'range-ignored' when the server answered the resume with the whole
 * file (curl then writes nothing); throws a DownloadError saying why not.
 */
async function curl(
  url: string,
  part: string,
  o: Required<Pick<DownloadOptions, 'timeoutSeconds' | 'progress'>> & { token?: string },
): Promise<'done' | 'range-ignored'> {
  const host = new URL(url).host;
  const args = [
    '--location',
    '--max-redirs',
    String(REDIRECTS),
    '--proto',
    '=http,https',
    '--proto-redir',
    '=http,https',
    '--fail',
    '--no-buffer',
    '--continue-at',
    '-',
    '--output',
    part,
    '--user-agent',
    'earshot-download-model/2',
    '--connect-timeout',
    String(o.timeoutSeconds),
    '--speed-limit',
    '1',
    '--speed-time',
    String(o.timeoutSeconds),
    '--write-out',
    '%{http_code}\\n%{errormsg}\\n%{size_download}',
    ...(o.progress === 'bar' ? ['--progress-bar'] : ['--silent']),
  ];
  // The token goes in on stdin (a config file), not on the command line where ps shows it.
  const stdin = o.token ? `header = "Authorization: Bearer ${o.token.replace(/["\\]/g, '\\$&')}"\n` : '';
  if (stdin) args.push('--config', '-');
  args.push('--', url);
  const { code, stdout } = await run('curl', args, { stdin, stderr: o.progress === 'bar' ? 'inherit' : 'ignore', onSpawn: (kill) => (stopCurl = kill) });
  stopCurl = null;
  if (code === 0) return 'done';
  if (code === 33) return 'range-ignored';
  const [status = '0', message = '', bytes = '0'] = stdout.split('\n');
  const http = Number(status);
  const got = `after ${formatBytes(Number(bytes))}`;
  switch (code) {
    case 22:
      if (http === 404) throw new DownloadError('NOT_FOUND', `${url} was not found (HTTP 404)`);
      if (http === 401 || http === 403)
        throw new DownloadError('HTTP_STATUS', `${url} refused the download (HTTP ${http}); if the host needs a token, set HF_TOKEN`);
      throw new DownloadError('HTTP_STATUS', `${url} answered HTTP ${http}`, http >= 500 || http === 429 || http === 408);
    case 28:
      throw new DownloadError('TIMEOUT', `no data from ${host} for ${o.timeoutSeconds} s ${got} (curl: ${message})`, true);
    case 18:
      throw new DownloadError('TRUNCATED', `${host} closed the connection ${got} (curl: ${message})`, true);
    case 47:
      throw new DownloadError('TOO_MANY_REDIRECTS', `more than ${REDIRECTS} redirects (curl: ${message})`);
    case 5:
    case 6:
    case 7:
    case 16:
    case 35:
    case 52:
    case 55:
    case 56:
    case 92:
      throw new DownloadError('NETWORK', `${host}: ${message} ${got} (curl exit ${code})`, true);
    default:
      throw new DownloadError('NETWORK', `${host}: ${message || 'failed'} (curl exit ${code})`);
  }
}

/**
 * Downloads `entry` into `dir` unless it is already there with the right checksum.
 * Throws a DownloadError (with a string `code`) on failure; the part file is kept when the
 * failure is one a later run can resume from, and deleted when its content is wrong.
 */
export async function downloadModel(options: DownloadOptions): Promise<void> {
  const { entry } = options;
  const verify = options.verify ?? true;
  const log = options.log ?? (() => {});
  const retries = options.retries ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 2000;
  const dir = resolve(options.dir);
  const dest = join(dir, entry.file);
  const part = `${dest}.part`;
  const sha256 = verify ? entry.sha256 : null;
  const sha1 = verify ? (entry.sha1 ?? null) : null;
  const size = entry.size ?? null;

  /** Why `file` is not the pinned one, or null when it is; and its SHA-256. */
  const check = async (file: string): Promise<{ wrong: string | null; sha256: string }> => {
    const got = await digest('sha256sum', file);
    if (sha256 !== null && got !== sha256) return { wrong: `SHA-256 ${got}, expected ${sha256}`, sha256: got };
    const got1 = sha1 !== null ? await digest('sha1sum', file) : null;
    if (sha1 !== null && got1 !== sha1) return { wrong: `SHA-1 ${got1}, expected ${sha1}`, sha256: got };
    return { wrong: null, sha256: got };
  };

  const present = await fileSize(dest);
  if (present !== null) {
    const { wrong, sha256: got } = await check(dest);
    if (!wrong) {
      log(`${entry.name} is already present${verify ? ' and verified' : ' (not verified)'}: ${dest} (sha256 ${got})`);
      return;
    }
    // scripts/ensure-model leaves a generated random-weight stand-in under the real name
    // when it could not download: the real model replaces it without --force.
    const standIn = await readFile(`${dest}.json`, 'utf8').then(
      (t) => t.includes('make-test-model'),
      () => false,
    );
    if (standIn) {
      log(`${dest} is a generated random-weight stand-in: replacing it with the real model`);
      await rm(`${dest}.json`, { force: true });
    } else if (!options.force) {
      throw new DownloadError('EXISTS_MISMATCH', `${dest} already exists with ${wrong}: left alone (pass --force to replace it)`);
    }
    log(`${dest} has ${wrong}: downloading a replacement`);
  }

  await mkdir(dir, { recursive: true });
  const url = options.url ?? entry.url;
  log(`downloading ${entry.name}${size ? ` (${formatBytes(size)})` : ''} from ${url} to ${dest}`);
  const curlOptions = { timeoutSeconds: options.timeoutSeconds ?? 30, progress: options.progress ?? 'none', token: options.token };
  for (let failures = 0; ; ) {
    const before = (await fileSize(part)) ?? 0;
    if (size !== null && before > size) {
      log(`${part} is larger than the expected ${size} bytes: starting over`);
      await rm(part, { force: true });
      continue;
    }
    if (size !== null && before === size) break; // complete: a run stopped before checking it
    if (before > 0) log(`resuming at ${formatBytes(before)}${size ? ` of ${formatBytes(size)}` : ''}`);
    const started = Date.now();
    const ticker =
      curlOptions.progress === 'lines'
        ? setInterval(() => {
            void fileSize(part).then((now) => {
              if (now !== null) log(progressLine(entry.name, now, size, ((now - before) * 1000) / (Date.now() - started)));
            });
          }, PROGRESS_EVERY_MS)
        : null;
    try {
      if ((await curl(url, part, curlOptions)) === 'done') break;
      log(`the server ignored the range request (HTTP 200): downloading from the start`);
      await rm(part, { force: true });
    } catch (err) {
      if (!(err instanceof DownloadError)) throw err;
      const after = (await fileSize(part)) ?? 0;
      if (after === 0) await rm(part, { force: true });
      if (after <= before) failures++;
      if (!err.retryable || retries === 0 || failures > retries) {
        if (err.retryable && after > 0) err.message += `; ${formatBytes(after)} kept in ${part}: run again to resume`;
        throw err;
      }
      const delay = retryDelayMs * 2 ** Math.max(0, failures - 1);
      log(`${err.message}; retrying in ${(delay / 1000).toFixed(delay < 1000 ? 2 : 1)} s`);
      await new Promise((r) => setTimeout(r, delay));
    } finally {
      if (ticker) clearInterval(ticker);
    }
  }

  const bytes = (await fileSize(part)) ?? 0;
  if (size !== null && bytes !== size) {
    await rm(part, { force: true });
    throw new DownloadError('SIZE_MISMATCH', `${new URL(url).host} offers ${bytes} bytes but the catalog pins ${size}: the download was deleted`);
  }
  log(`checking ${entry.name}`);
  const { wrong, sha256: got } = await check(part);
  if (wrong) {
    await rm(part, { force: true });
    throw new DownloadError('CHECKSUM_MISMATCH', `${entry.file} is corrupt or not the pinned file: ${wrong}. The download was deleted; nothing was installed`);
  }
  // On an SD card a power cut must not leave a renamed file with holes: data, then the rename.
  await sync(part);
  await rename(part, dest);
  await sync(dir);
  log(`${entry.name} ${sha256 ? 'verified and ' : ''}saved: ${dest} (${formatBytes(bytes)}, sha256 ${got})`);
}

async function sync(path: string): Promise<void> {
  // Some filesystems refuse to fsync a directory, which is fine.
  try {
    const fd = await open(path, 'r');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
  } catch {
    /* best effort */
  }
}

// ---------------------------------------------------------------------------------------
// Command line

export const USAGE = `Usage: scripts/download-model NAME [options]
       scripts/download-model --list

Downloads ggml-NAME.bin (a whisper.cpp model, or the Silero VAD model silero-v5.1.2) with
curl and checks it against the SHA-256 pinned in scripts/lib/model-catalog.ts.

Options:
  --dir DIR            where models go (default: $EARSHOT_MODELS_DIR, else ./models)
  --base-url URL       fetch URL/ggml-NAME.bin instead of the catalog's host
                       (default: $EARSHOT_MODEL_BASE_URL, else the catalog's URL)
  --catalog FILE       use this catalog, {"models":[{name,file?,url?,sha256,sha1?,size?}]},
                       instead of the built-in one (default: $EARSHOT_MODEL_CATALOG)
  --sha256 HEX         expect this SHA-256 (for a model the catalog does not pin)
  --no-verify          do not check checksums (the SHA-256 is still printed)
  --force              replace a file already present whose checksum differs
  --timeout SECONDS    drop a connection that brings no data this long (default 30)
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

function wholeNumber(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`Expected a whole number >= ${min} for ${flag} but received "${value}"`);
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
export async function parseCli(argv: string[], env: NodeJS.ProcessEnv, isTTY: boolean): Promise<CliRequest | { print: string }> {
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

  if (parsed.positionals.length !== 1) throw new UsageError(`Expected one model name but received ${parsed.positionals.length}`);
  const name = parsed.positionals[0] as string;
  if (!isValidModelName(name)) throw new UsageError(`Expected a model name (letters, digits, ".", "_", "-") but received "${name}"`);
  const sha256 = v.sha256?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new UsageError(`Expected 64 hex digits for --sha256 but received "${v.sha256}"`);
  const verify = !v['no-verify'];

  let entry = findModel(catalog, name);
  if (!entry) {
    if (sha256 === undefined && verify) {
      throw new UsageError(
        `unknown model "${name}". Known: ${catalog.map((e) => e.name).join(', ')}.\n` + `To fetch ggml-${name}.bin anyway, pass --sha256 HEX (or --no-verify).`,
      );
    }
    const file = `ggml-${name}.bin`;
    entry = { name, file, url: `${WHISPER_BASE_URL}/${file}`, sha256: null, sha1: null, size: null };
  }
  if (sha256 !== undefined) {
    // The user's hash replaces the pinned ones (e.g. for a newer upstream upload).
    entry = { ...entry, sha256, sha1: null, size: entry.sha256 === sha256 ? (entry.size ?? null) : null };
  } else if (entry.sha256 === null && verify) {
    throw new UsageError(`the catalog pins no SHA-256 for "${entry.name}": pass --sha256 HEX (or --no-verify)`);
  }

  const progress = v.progress ?? (isTTY ? 'bar' : 'lines');
  if (progress !== 'bar' && progress !== 'lines' && progress !== 'none') {
    throw new UsageError(`Expected bar, lines or none for --progress but received "${progress}"`);
  }
  const retryDelay = v['retry-delay'] === undefined ? 2 : Number(v['retry-delay']);
  if (!Number.isFinite(retryDelay) || retryDelay < 0 || v['retry-delay']?.trim() === '') {
    throw new UsageError(`Expected a number >= 0 for --retry-delay but received "${v['retry-delay']}"`);
  }
  const baseUrl = v['base-url'] ?? env.EARSHOT_MODEL_BASE_URL;
  let url = entry.url;
  if (baseUrl !== undefined && baseUrl !== '') {
    let protocol = '';
    try {
      protocol = new URL(baseUrl).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`Expected an http(s) URL for --base-url but received "${baseUrl}"`);
    url = `${baseUrl.replace(/\/+$/, '')}/${entry.file}`;
  }
  const options: DownloadOptions = {
    entry,
    url,
    dir: resolve(v.dir ?? env.EARSHOT_MODELS_DIR ?? 'models'),
    verify,
    force: v.force === true,
    timeoutSeconds: wholeNumber(v.timeout, '--timeout', 1) ?? 30,
    retries: wholeNumber(v.retries, '--retries', 0) ?? 3,
    retryDelayMs: retryDelay * 1000,
    progress: v.quiet ? 'none' : progress,
  };
  if (env.HF_TOKEN) options.token = env.HF_TOKEN;
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
    stopCurl?.();
    console.error(`download-model: ${signal}: stopped; the partial download is kept and the next run resumes it`);
    process.exit(code);
  };
  process.once('SIGINT', stop('SIGINT', 130));
  process.once('SIGTERM', stop('SIGTERM', 143));
  try {
    await downloadModel({ ...options, log: quiet ? () => {} : (line) => console.log(`download-model: ${line}`) });
    return 0;
  } catch (err) {
    const code = err instanceof DownloadError ? ` [${err.code}]` : '';
    console.error(`download-model: error${code}: ${(err as Error).message}`);
    return 1;
  }
}

await runIfMain(import.meta.url, main);
