// scripts/download-model against loopback HTTP servers serving generated files, through
// the real entry point (the bash wrapper, which runs dist/scripts/download-model.js, which
// runs curl and sha256sum) with a test catalog that pins the generated files' hashes.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import t from 'tap';

import { MODEL_CATALOG, parseCatalog, parseCli, progressLine } from '../../scripts/download-model.js';
import { VAD_BASE_URL, WHISPER_BASE_URL } from '../../scripts/lib/model-catalog.js';
import { projectRoot } from '../../src/paths.js';

const CLI = path.join(projectRoot, 'scripts', 'download-model');
const SIZE = 256 * 1024;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------------------------------
// Loopback servers

interface Hit {
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  status?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, hit: Hit, nth: number) => void;

interface TestServer {
  base: string;
  hits: Hit[];
  routes: Map<string, Handler>;
  hitsFor(p: string): Hit[];
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const hits: Hit[] = [];
  const routes = new Map<string, Handler>();
  const server: Server = createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const hit: Hit = { path: p, range: req.headers.range, authorization: req.headers.authorization };
    hits.push(hit);
    const nth = hits.filter((h) => h.path === p).length;
    const handler = routes.get(p);
    if (!handler) {
      hit.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    handler(req, res, hit, nth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    routes,
    hitsFor: (p) => hits.filter((h) => h.path === p),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface ServeOptions {
  /** Answer Range requests with 206 (default true). */
  ranges?: boolean;
  /** Send this many body bytes, then drop the connection. */
  cutAt?: number;
  /** Send this many body bytes, then go silent (the connection stays open). */
  stallAt?: number;
  /** Send the body in this many pieces, this far apart. */
  pieces?: number;
  pieceDelayMs?: number;
}

/** Answers like a static file server (or a broken one). */
function serve(data: Buffer, req: IncomingMessage, res: ServerResponse, hit: Hit, opts: ServeOptions = {}): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (m && opts.ranges !== false) {
    start = Number(m[1]);
    if (start >= data.length) {
      hit.status = 416;
      res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }).end();
      return;
    }
    hit.status = 206;
    res.writeHead(206, {
      'Content-Length': data.length - start,
      'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}`,
      'Accept-Ranges': 'bytes',
    });
  } else {
    hit.status = 200;
    res.writeHead(200, { 'Content-Length': data.length, 'Accept-Ranges': opts.ranges === false ? 'none' : 'bytes' });
  }
  const body = data.subarray(start);
  if (opts.cutAt !== undefined) {
    res.write(body.subarray(0, opts.cutAt), () => setTimeout(() => req.socket.destroy(), 20));
    return;
  }
  if (opts.stallAt !== undefined) {
    res.write(body.subarray(0, opts.stallAt));
    return; // closed by the client's timeout or by server.closeAllConnections()
  }
  const pieces = opts.pieces ?? 1;
  const step = Math.ceil(body.length / pieces);
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    const chunk = body.subarray(i * step, (i + 1) * step);
    i++;
    if (i >= pieces) res.end(chunk);
    else {
      res.write(chunk);
      setTimeout(next, opts.pieceDelayMs ?? 0);
    }
  };
  next();
}

// ---------------------------------------------------------------------------------------
// Fixtures: one generated file per scenario, a catalog pinning them, a CLI runner

interface Fixture {
  name: string;
  file: string;
  data: Buffer;
}

function fixture(name: string, size = SIZE): Fixture {
  return { name, file: `ggml-${name}.bin`, data: randomBytes(size) };
}

const F = {
  good: fixture('good'),
  corrupt: fixture('corrupt'),
  truncated: fixture('truncated'),
  flaky: fixture('flaky'),
  unavailable: fixture('unavailable'),
  missing: fixture('missing'),
  stall: fixture('stall'),
  slow: fixture('slow'),
  interrupt: fixture('interrupt'),
  norange: fixture('norange'),
  redirected: fixture('redirected'),
  loop: fixture('loop'),
  sized: fixture('sized'),
  existing: fixture('existing'),
  unpinned: fixture('unpinned'),
  bar: fixture('bar'),
};

const origin = await startServer();
const cdn = await startServer();
t.teardown(() => Promise.all([origin.close(), cdn.close()]));

const serveRoute = (f: Fixture, opts?: (nth: number) => ServeOptions) =>
  origin.routes.set(`/${f.file}`, (req, res, hit, nth) => serve(f.data, req, res, hit, opts?.(nth)));

serveRoute(F.good);
serveRoute(F.existing);
serveRoute(F.unpinned);
serveRoute(F.bar, () => ({ pieces: 4, pieceDelayMs: 30 }));
// Serves the right length but one flipped byte.
const corrupted = Buffer.from(F.corrupt.data);
corrupted[1000] = corrupted[1000]! ^ 0xff;
origin.routes.set(`/${F.corrupt.file}`, (req, res, hit) => serve(corrupted, req, res, hit));
// The first response stops a third of the way in; later ones are whole.
const CUT = Math.floor(SIZE / 3);
serveRoute(F.truncated, (nth) => (nth === 1 ? { cutAt: CUT } : {}));
serveRoute(F.flaky, (nth) => (nth <= 2 ? { cutAt: CUT } : {}));
serveRoute(F.stall, () => ({ stallAt: 4096 }));
origin.routes.set(`/${F.unavailable.file}`, (_req, res, hit) => {
  hit.status = 503;
  res.writeHead(503).end('busy');
});
// Ten pieces 150 ms apart: 1.5 s in all, never idle for the 1 s timeout.
serveRoute(F.slow, () => ({ pieces: 10, pieceDelayMs: 150 }));
// The first response sends half, then hangs until the client is killed.
const HALF = SIZE / 2;
serveRoute(F.interrupt, (nth) => (nth === 1 ? { stallAt: HALF } : {}));
serveRoute(F.norange, () => ({ ranges: false }));
serveRoute(F.sized);
// Like Hugging Face: the origin redirects to a CDN on another host (a relative hop, then an absolute one).
origin.routes.set(`/${F.redirected.file}`, (_req, res, hit) => {
  hit.status = 302;
  res.writeHead(302, { Location: `/resolve/${F.redirected.file}` }).end();
});
origin.routes.set(`/resolve/${F.redirected.file}`, (_req, res, hit) => {
  hit.status = 307;
  res.writeHead(307, { Location: `${cdn.base}/blobs/${F.redirected.file}?signed=1` }).end();
});
cdn.routes.set(`/blobs/${F.redirected.file}`, (req, res, hit) => serve(F.redirected.data, req, res, hit));
origin.routes.set(`/${F.loop.file}`, (_req, res, hit) => {
  hit.status = 302;
  res.writeHead(302, { Location: `/${F.loop.file}` }).end();
});

const workDir = await mkdtemp(path.join(tmpdir(), 'earshot-download-'));
t.teardown(() => rm(workDir, { recursive: true, force: true }));
const catalogFile = path.join(workDir, 'catalog.json');
await writeFile(
  catalogFile,
  JSON.stringify({
    models: Object.values(F)
      .filter((f) => f !== F.unpinned)
      .map((f) => ({
        name: f.name,
        file: f.file,
        url: `${origin.base}/${f.file}`,
        sha256: sha256(f.data),
        // "sized" pins a size the server does not offer.
        size: f === F.sized ? f.data.length + 1 : f.data.length,
      }))
      .concat([{ name: 'nohash', file: 'ggml-nohash.bin', url: `${origin.base}/ggml-nohash.bin`, sha256: null as never, size: 1 }]),
  }),
);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let dirs = 0;
async function freshDir(): Promise<string> {
  return mkdtemp(path.join(workDir, `models-${++dirs}-`));
}

function runCli(args: string[], env: Record<string, string> = {}, onSpawn?: (kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(CLI, args, {
      env: { PATH: process.env.PATH, EARSHOT_MODEL_CATALOG: catalogFile, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.((s) => child.kill(s));
  });
}

const download = (name: string, dir: string, ...extra: string[]) => runCli([name, '--dir', dir, '--retries', '0', '--progress', 'lines', ...extra]);

async function sizeOf(p: string): Promise<number | null> {
  try {
    return (await stat(p)).size;
  } catch {
    return null;
  }
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------------------------------
// Scenarios

t.test('good download, then an idempotent second run', async (t) => {
  const dir = await freshDir();
  const first = await download('good', dir);
  t.equal(first.code, 0, first.stderr);
  const dest = path.join(dir, F.good.file);
  t.same(await readFile(dest), F.good.data);
  t.notOk(existsSync(`${dest}.part`), 'no part file left');
  t.match(first.stdout, /good verified and saved/);
  t.match(first.stdout, new RegExp(sha256(F.good.data)));
  t.equal(origin.hitsFor(`/${F.good.file}`).length, 1);

  const second = await download('good', dir);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /good is already present and verified/);
  t.equal(origin.hitsFor(`/${F.good.file}`).length, 1, 'no second request');
});

t.test('corrupt file: refused, nothing left behind', async (t) => {
  const dir = await freshDir();
  const r = await download('corrupt', dir);
  t.equal(r.code, 1);
  t.match(r.stderr, /\[CHECKSUM_MISMATCH\]/);
  t.match(r.stderr, new RegExp(`expected ${sha256(F.corrupt.data)}`));
  t.match(r.stderr, /download was deleted/);
  t.notOk(existsSync(path.join(dir, F.corrupt.file)));
  t.notOk(existsSync(path.join(dir, `${F.corrupt.file}.part`)));
});

t.test('truncated: the part is kept and the next run resumes it with Range', async (t) => {
  const dir = await freshDir();
  const part = path.join(dir, `${F.truncated.file}.part`);
  const first = await download('truncated', dir);
  t.equal(first.code, 1);
  t.match(first.stderr, /\[TRUNCATED\]/);
  t.match(first.stderr, /run again to resume/);
  t.equal(await sizeOf(part), CUT, 'everything received is kept');
  t.notOk(existsSync(path.join(dir, F.truncated.file)));

  const second = await download('truncated', dir);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /resuming at/);
  const hits = origin.hitsFor(`/${F.truncated.file}`);
  t.equal(hits.length, 2);
  t.equal(hits[0]!.range, undefined);
  t.equal(hits[1]!.range, `bytes=${CUT}-`);
  t.equal(hits[1]!.status, 206);
  t.same(await readFile(path.join(dir, F.truncated.file)), F.truncated.data);
  t.notOk(existsSync(part));
});

t.test('interrupted connections are retried within one run, resuming each time', async (t) => {
  const dir = await freshDir();
  // Two broken connections but --retries 1: each brought bytes, so neither counts.
  const r = await runCli(['flaky', '--dir', dir, '--retries', '1', '--retry-delay', '0.05', '--progress', 'none']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /TRUNCATED|closed the connection|broke after/);
  t.match(r.stdout, /retrying in 0\.05 s[\s\S]*retrying in 0\.05 s/);
  const hits = origin.hitsFor(`/${F.flaky.file}`);
  t.same(
    hits.map((h) => h.range),
    [undefined, `bytes=${CUT}-`, `bytes=${2 * CUT}-`],
  );
  t.same(await readFile(path.join(dir, F.flaky.file)), F.flaky.data);

  // Failures that bring nothing are retried --retries times, with a growing delay.
  const busy = await runCli(['unavailable', '--dir', dir, '--retries', '2', '--retry-delay', '0.05', '--progress', 'none']);
  t.equal(busy.code, 1);
  t.match(busy.stderr, /\[HTTP_STATUS\]: .*answered HTTP 503/);
  t.match(busy.stdout, /retrying in 0\.05 s[\s\S]*retrying in 0\.10 s/);
  t.equal(origin.hitsFor(`/${F.unavailable.file}`).length, 3);
});

t.test('a killed download resumes where it stopped', async (t) => {
  const dir = await freshDir();
  const part = path.join(dir, `${F.interrupt.file}.part`);
  const first = await runCli(['interrupt', '--dir', dir, '--progress', 'none'], {}, (kill) => {
    waitFor(async () => (await sizeOf(part)) === HALF, 10_000).then(
      () => kill('SIGTERM'),
      () => kill('SIGKILL'),
    );
  });
  t.equal(first.code, 143);
  t.match(first.stderr, /SIGTERM: stopped; the partial download is kept/);
  t.equal(await sizeOf(part), HALF);

  const second = await download('interrupt', dir);
  t.equal(second.code, 0, second.stderr);
  const hits = origin.hitsFor(`/${F.interrupt.file}`);
  t.equal(hits.at(-1)!.range, `bytes=${HALF}-`);
  t.same(await readFile(path.join(dir, F.interrupt.file)), F.interrupt.data);
});

t.test('404', async (t) => {
  const dir = await freshDir();
  const r = await download('missing', dir);
  t.equal(r.code, 1);
  t.match(r.stderr, /\[NOT_FOUND\].*ggml-missing\.bin was not found \(HTTP 404\)/);
  t.notOk(existsSync(path.join(dir, F.missing.file)));
  t.notOk(existsSync(path.join(dir, `${F.missing.file}.part`)));
});

t.test('a stalled server times out; a slow but steady one does not', async (t) => {
  const dir = await freshDir();
  const started = Date.now();
  const stalled = await download('stall', dir, '--timeout', '1');
  t.equal(stalled.code, 1);
  t.match(stalled.stderr, /\[TIMEOUT\]: no data from 127\.0\.0\.1:\d+ for 1 s/);
  // curl's speed check averages over its last 5 s of samples: the 4 kB that did arrive
  // keep it above 1 B/s for a few seconds more than --timeout.
  t.ok(Date.now() - started < 10_000, 'gave up promptly');
  t.equal(await sizeOf(path.join(dir, `${F.stall.file}.part`)), 4096, 'what arrived is kept for a resume');

  const slow = await download('slow', dir, '--timeout', '1');
  t.equal(slow.code, 0, slow.stderr);
  t.same(await readFile(path.join(dir, F.slow.file)), F.slow.data);
});

t.test('a server that ignores Range: starts over instead of appending', async (t) => {
  // curl refuses the 200 to its range request (exit 33) without writing; the second request starts from 0.
  const dir = await freshDir();
  const part = path.join(dir, `${F.norange.file}.part`);
  await writeFile(part, randomBytes(50_000)); // leftovers that must not end up in the file
  const r = await download('norange', dir);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /ignored the range request \(HTTP 200\): downloading from the start/);
  const hits = origin.hitsFor(`/${F.norange.file}`);
  t.same(
    hits.map((h) => [h.range, h.status]),
    [
      ['bytes=50000-', 200],
      [undefined, 200],
    ],
  );
  t.same(await readFile(path.join(dir, F.norange.file)), F.norange.data);
});

t.test('redirects are followed to another host; the token stays with the first', async (t) => {
  const dir = await freshDir();
  const r = await download('redirected', dir, '--progress', 'none');
  t.equal(r.code, 0, r.stderr);
  t.same(await readFile(path.join(dir, F.redirected.file)), F.redirected.data);
  t.equal(origin.hitsFor(`/${F.redirected.file}`).length, 1);
  t.equal(origin.hitsFor(`/resolve/${F.redirected.file}`).length, 1);
  t.equal(cdn.hitsFor(`/blobs/${F.redirected.file}`).length, 1);

  const dir2 = await freshDir();
  await writeFile(path.join(dir2, `${F.redirected.file}.part`), F.redirected.data.subarray(0, 1000));
  const resumed = await runCli(['redirected', '--dir', dir2, '--progress', 'none'], { HF_TOKEN: 'secret' });
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(origin.hitsFor(`/${F.redirected.file}`).at(-1)!.authorization, 'Bearer secret');
  const cdnHit = cdn.hitsFor(`/blobs/${F.redirected.file}`).at(-1)!;
  t.equal(cdnHit.authorization, undefined, 'no token sent to the CDN');
  t.equal(cdnHit.range, 'bytes=1000-', 'the range survives the redirects');
  t.same(await readFile(path.join(dir2, F.redirected.file)), F.redirected.data);

  const loop = await download('loop', await freshDir());
  t.equal(loop.code, 1);
  t.match(loop.stderr, /\[TOO_MANY_REDIRECTS\]: more than 10 redirects/);
});

t.test('a size the server does not offer is refused, nothing left behind', async (t) => {
  const dir = await freshDir();
  const r = await download('sized', dir);
  t.equal(r.code, 1);
  t.match(r.stderr, /\[SIZE_MISMATCH\].*offers 262144 bytes but the catalog pins 262145/);
  t.notOk(existsSync(path.join(dir, `${F.sized.file}.part`)));
  t.notOk(existsSync(path.join(dir, F.sized.file)));
});

t.test('an existing file with another checksum is left alone unless --force', async (t) => {
  const dir = await freshDir();
  const dest = path.join(dir, F.existing.file);
  await writeFile(dest, 'a generated test model');
  const r = await download('existing', dir);
  t.equal(r.code, 1);
  t.match(r.stderr, /\[EXISTS_MISMATCH\].*pass --force to replace it/);
  t.equal(await readFile(dest, 'utf8'), 'a generated test model');
  t.equal(origin.hitsFor(`/${F.existing.file}`).length, 0);

  const forced = await download('existing', dir, '--force');
  t.equal(forced.code, 0, forced.stderr);
  t.same(await readFile(dest), F.existing.data);
});

t.test('models without a pinned hash need --sha256 or --no-verify', async (t) => {
  const dir = await freshDir();
  const unknown = await download('unpinned', dir);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown model "unpinned".*\n.*--sha256/);
  const nohash = await download('nohash', dir);
  t.equal(nohash.code, 2);
  t.match(nohash.stderr, /pins no SHA-256 for "nohash"/);

  const base = ['--base-url', origin.base];
  const wrong = await download('unpinned', dir, ...base, '--sha256', 'ab'.repeat(32));
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /CHECKSUM_MISMATCH/);
  const right = await download('unpinned', dir, ...base, '--sha256', sha256(F.unpinned.data).toUpperCase());
  t.equal(right.code, 0, right.stderr);
  t.same(await readFile(path.join(dir, F.unpinned.file)), F.unpinned.data);

  const dir2 = await freshDir();
  const unverified = await runCli(['unpinned', '--dir', dir2, '--no-verify'], { EARSHOT_MODEL_BASE_URL: `${origin.base}/` });
  t.equal(unverified.code, 0, unverified.stderr);
  t.match(unverified.stdout, new RegExp(`saved: .* sha256 ${sha256(F.unpinned.data)}`));
});

t.test('usage errors exit 2', async (t) => {
  const r = await runCli(['../x']);
  t.equal(r.code, 2);
  t.match(r.stderr, /^download-model: Expected a model name .* but received "\.\.\/x"\nRun "scripts\/download-model --help"/);
  const env = { EARSHOT_MODEL_CATALOG: catalogFile };
  const cases: Array<[string[], RegExp]> = [
    [[], /Expected one model name but received 0/],
    [['a', 'b'], /Expected one model name but received 2/],
    [['good', '--timeout', 'soon'], /Expected a whole number >= 1 for --timeout but received "soon"/],
    [['good', '--timeout', '0.5'], /Expected a whole number >= 1 for --timeout/],
    [['good', '--retry-delay', 'x'], /Expected a number >= 0 for --retry-delay/],
    [['good', '--retries', '1.5'], /Expected a whole number >= 0 for --retries/],
    [['good', '--progress', 'fancy'], /Expected bar, lines or none for --progress/],
    [['good', '--base-url', 'ftp://x'], /Expected an http\(s\) URL for --base-url/],
    [['good', '--sha256', 'xyz'], /Expected 64 hex digits for --sha256/],
    [['good', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) await t.rejects(parseCli(args, env, false), message, args.join(' '));
  const bad = path.join(workDir, 'bad-catalog.json');
  await writeFile(bad, JSON.stringify({ models: [{ name: 'x', sha256: 'nope' }] }));
  await t.rejects(parseCli(['x', '--catalog', bad], {}, false), /Expected null or 64 hex digits for .* models\[0\]\.sha256 but received "nope"/);
  // The defaults a systemd unit or the install script relies on.
  const req = await parseCli(['tiny.en-q5_1'], { EARSHOT_MODELS_DIR: '/var/lib/earshot/models' }, false);
  t.ok('options' in req);
  if ('options' in req) {
    t.equal(req.options.dir, '/var/lib/earshot/models');
    t.equal(req.options.url, 'https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-tiny.en-q5_1.bin');
    t.equal(req.options.progress, 'lines', 'plain lines when not on a terminal');
    t.equal(req.options.entry.sha256, 'c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b');
  }
  const tty = await parseCli(['tiny.en-f16'], {}, true);
  t.ok('options' in tty && tty.options.progress === 'bar' && tty.entry.name === 'tiny.en', 'a bar on a terminal; -f16 alias');
});

t.test("EARSHOT_MODELS_DIR is the default directory; curl's bar is drawn on request", async (t) => {
  const dir = await freshDir();
  const r = await runCli(['bar', '--progress', 'bar'], { EARSHOT_MODELS_DIR: dir });
  t.equal(r.code, 0, r.stderr);
  t.ok(existsSync(path.join(dir, F.bar.file)));
  t.match(r.stderr, /\r#+ +100\.0%/);
});

// ---------------------------------------------------------------------------------------
// Pieces

t.test('progress lines for the journal', async (t) => {
  t.equal(progressLine('tiny.en', 1_000_000, 2_000_000, 500_000), 'tiny.en: 50% (1.0 MB of 2.0 MB, 500.0 kB/s, 0:02 left)');
  t.equal(progressLine('x', 1_500, null, 0), 'x: 1.5 kB (0 B/s)', 'no size known');
  t.match(progressLine('x', 10, 100, 0), /--:-- left/);
});

t.test('the built-in catalog', async (t) => {
  const names = MODEL_CATALOG.map((e) => e.name);
  t.equal(new Set(names).size, names.length, 'names are unique');
  for (const size of ['tiny', 'base', 'small']) {
    for (const lang of [size, `${size}.en`]) {
      for (const quant of ['', '-q5_1', '-q8_0']) t.ok(names.includes(`${lang}${quant}`), `${lang}${quant} is listed`);
    }
  }
  t.ok(names.includes('silero-v5.1.2'));

  // URLs as whisper.cpp's own download scripts build them.
  const models = path.join(projectRoot, 'node_modules/nodejs-whisper/cpp/whisper.cpp/models');
  const listed = async (script: string) => {
    const text = await readFile(path.join(models, script), 'utf8');
    const src = /^src="([^"]+)"/m.exec(text)![1]!;
    const pfx = /^pfx="([^"]+)"/m.exec(text)![1]!;
    const list = /^models="([^"]+)"/m.exec(text)![1]!.split(/\s+/);
    return { prefix: `${src}/${pfx}`, list };
  };
  const whisper = await listed('download-ggml-model.sh');
  const vad = await listed('download-vad-model.sh');
  t.equal(`${WHISPER_BASE_URL}/ggml`, whisper.prefix);
  t.equal(`${VAD_BASE_URL}/ggml`, vad.prefix);
  // On the model host but not in the script's list.
  const alsoOnHost = new Set(['tiny.en-q8_0', 'base.en-q8_0', 'small.en-q8_0']);
  for (const e of MODEL_CATALOG) {
    const script = e.name.startsWith('silero-') ? vad : whisper;
    t.equal(e.url, `${script.prefix}-${e.name}.bin`, `${e.name}: URL`);
    t.equal(e.file, `ggml-${e.name}.bin`);
    t.ok(script.list.includes(e.name) || alsoOnHost.has(e.name), `${e.name} is one of whisper.cpp's names`);
    t.match(e.sha256, /^[0-9a-f]{64}$/, `${e.name}: SHA-256 pinned`);
    t.ok(e.size && e.size > 0, `${e.name}: size pinned`);
    t.ok(e.source, `${e.name}: source noted`);
  }
  // The catalog survives its own file format.
  t.same(
    parseCatalog(JSON.stringify({ models: MODEL_CATALOG }), 'built-in').map((e) => e.sha256),
    MODEL_CATALOG.map((e) => e.sha256),
  );
});
