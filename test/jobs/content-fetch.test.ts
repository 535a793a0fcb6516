// Downloads of a job's audio against real loopback servers: streamed into a new fsynced
// file; the callbacks' address policy at connect time; no redirects; the size limit
// (declared and as it arrives); idle and total timeouts; abort; nothing left on failure.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import t, { type Test } from 'tap';

import { defaultCallbackCidrs } from '../../src/config.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { OwnEndpoints } from '../../src/delivery/own-endpoints.js';
import { type FetchContentOptions, fetchContent, fetchedAudioFormat, fetchJobAudio } from '../../src/jobs/content-fetch.js';
import { isSpaceError } from '../../src/jobs/disk-space.js';
import { startContentHost } from '../helpers/content-host.js';
import { wav } from '../helpers/pcm.js';

const loopback = new CidrPolicy(['127.0.0.0/8']);
const lan = new CidrPolicy(defaultCallbackCidrs);

function download(t: Test, url: string, options: Partial<FetchContentOptions> = {}) {
  const file = path.join(t.testdir(), 'audio.fetch');
  return { file, done: fetchContent({ url, path: file, policy: loopback, maxBytes: 1_000_000, ...options }) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a 200 is streamed into the file as it arrives; bytes and Content-Type come back', async (t) => {
  const audio = wav(1);
  const host = await startContentHost(t, async (_req, res) => {
    // Chunked, in three parts with pauses: the body is written as it comes.
    res.writeHead(200, { 'Content-Type': 'audio/wav' });
    for (let at = 0; at < audio.length; at += 12_000) {
      res.write(audio.subarray(at, at + 12_000));
      await sleep(20);
    }
    res.end();
  });
  const progress: number[] = [];
  const { file, done } = download(t, `${host.base}/files/a.wav?sig=abc`, { onProgress: (bytes) => progress.push(bytes) });
  t.same(await done, { bytes: audio.length, contentType: 'audio/wav' });
  t.same(readFileSync(file), audio);
  t.same(host.requests, ['/files/a.wav?sig=abc'], 'the query (a signature) is sent');
  t.ok(progress.length >= 3, `progress after each chunk (${progress.length})`);
  t.equal(progress.at(-1), audio.length);
});

t.test('the file must be new: an existing one is not overwritten', async (t) => {
  const host = await startContentHost(t, (_req, res) => res.end('x'));
  const { file, done } = download(t, `${host.base}/a`);
  await done;
  await t.rejects(fetchContent({ url: `${host.base}/a`, path: file, policy: loopback, maxBytes: 10 }), { code: 'EEXIST' });
});

t.test('404 and 410: ERR_CONTENT_NOT_FOUND; other statuses: ERR_CONTENT_UNREACHABLE; no file left', async (t) => {
  const host = await startContentHost(t, (req, res) => {
    res.statusCode = Number(req.url!.slice(1));
    res.end('error page');
  });
  for (const [status, code, message] of [
    [404, 'ERR_CONTENT_NOT_FOUND', /answered 404 Not Found: check the URL/],
    [410, 'ERR_CONTENT_NOT_FOUND', /answered 410 Gone/],
    [403, 'ERR_CONTENT_UNREACHABLE', /answered 403 Forbidden: the URL may need a signature/],
    [500, 'ERR_CONTENT_UNREACHABLE', /answered 500 Internal Server Error/],
  ] as const) {
    const { file, done } = download(t, `${host.base}/${status}`);
    await t.rejects(done, { code, message }, String(status));
    t.notOk(existsSync(file), `no file after ${status}`);
  }
});

t.test('a redirect is not followed: ERR_CONTENT_REDIRECT names where it pointed', async (t) => {
  const host = await startContentHost(t, (req, res) => {
    if (req.url === '/moved') {
      res.writeHead(302, { Location: '/elsewhere?token=secret' });
      res.end();
    } else {
      res.end('the target');
    }
  });
  const { file, done } = download(t, `${host.base}/moved`);
  await t.rejects(done, { code: 'ERR_CONTENT_REDIRECT', message: new RegExp(`answered 302 Found, a redirect to ${host.base}/elsewhere;.*give the final URL`) });
  t.notOk(existsSync(file));
  t.same(host.requests, ['/moved'], 'the target was never asked');
});

t.test('addresses outside the allow-list are refused when connecting, the service itself always; URLs with credentials or another scheme before', async (t) => {
  const host = await startContentHost(t, (_req, res) => res.end('audio'));
  const refused = async (url: string, policy: CidrPolicy, message: RegExp) => {
    const { file, done } = download(t, url, { policy });
    await t.rejects(done, { code: 'ERR_CONTENT_REFUSED', message }, url);
    t.notOk(existsSync(file));
  };
  // A name is checked on the address it resolves to, at connect time (DNS rebinding).
  await refused(`http://localhost:${host.port}/a`, lan, /host localhost resolves to .*loopback address.*EARSHOT_CALLBACK_CIDRS/);
  await refused(`${host.base}/a`, lan, /127\.0\.0\.1 is a loopback address/);
  await refused(`http://169.254.169.254/latest/meta-data/`, new CidrPolicy(['0.0.0.0/0']), /link-local/);
  const itself = new CidrPolicy(['127.0.0.0/8'], new OwnEndpoints(() => [host.port]));
  await refused(`http://localhost:${host.port}/a`, itself, /this earshot service itself/);
  await refused(`http://user:pw@127.0.0.1:${host.port}/a`, loopback, /carries credentials/);
  await refused(`ftp://127.0.0.1/a`, loopback, /not an http: or https: URL/);
  await refused('not a url', loopback, /not an absolute http: or https: URL/);
  t.same(host.requests, [], 'nothing reached the host');
  // The same name passes once loopback is allowed: the refusals were the policy's.
  t.match(await download(t, `http://localhost:${host.port}/a`).done, { bytes: 5 });
});

t.test('larger than the limit: refused on Content-Length before the body, or once the chunked body grows past it', async (t) => {
  let sent = 0;
  const host = await startContentHost(t, async (req, res) => {
    if (req.url === '/declared') {
      res.writeHead(200, { 'Content-Length': '2000000' });
      res.end(Buffer.alloc(2_000_000));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'audio/wav' });
    for (let i = 0; i < 50 && !res.destroyed; i++) {
      res.write(Buffer.alloc(100_000));
      sent += 100_000;
      await sleep(5);
    }
    res.end();
  });
  const declared = download(t, `${host.base}/declared`);
  await t.rejects(declared.done, {
    code: 'ERR_CONTENT_TOO_LARGE',
    message: /is 2000000 bytes \(Content-Length\), over the limit of 1000000 bytes \(EARSHOT_MAX_UPLOAD_BYTES\)/,
  });
  t.notOk(existsSync(declared.file));
  const growing = download(t, `${host.base}/chunked`);
  await t.rejects(growing.done, { code: 'ERR_CONTENT_TOO_LARGE', message: /grew past 1000000 bytes as it arrived/ });
  t.notOk(existsSync(growing.file), 'the partial file is removed');
  await sleep(50);
  t.ok(sent < 5_000_000, `the download stopped (${sent} bytes sent)`);
});

t.test('larger than the disk can ever hold (Content-Length): refused at once, not left to wait for space', async (t) => {
  const host = await startContentHost(t, async (_req, res) => {
    res.writeHead(200, { 'Content-Length': '800000', 'Content-Type': 'audio/wav' });
    res.end(Buffer.alloc(800_000));
  });
  const refused = download(t, `${host.base}/big.wav`, { diskBytes: 500_000 });
  await t.rejects(refused.done, {
    code: 'ERR_CONTENT_TOO_LARGE',
    message: /is 800000 bytes \(Content-Length\), more than this device's disk can ever hold \(500000 bytes beside the space it keeps free\)/,
  });
  t.notOk(existsSync(refused.file));
  const fits = download(t, `${host.base}/big.wav`, { diskBytes: 800_000 });
  t.equal((await fits.done).bytes, 800_000, 'as large as the disk can hold: downloaded');
});

t.test('timeouts: no answer, a body that stalls, and the overall cap while bytes trickle', async (t) => {
  const host = await startContentHost(t, async (req, res) => {
    if (req.url === '/silent') return; // never answers
    res.writeHead(200, { 'Content-Type': 'audio/wav' });
    res.write('RIFF');
    if (req.url === '/stalls') return;
    for (let i = 0; i < 100 && !res.destroyed; i++) {
      await sleep(30);
      res.write('x');
    }
    res.end();
  });
  const silent = download(t, `${host.base}/silent`, { idleTimeoutMs: 150 });
  await t.rejects(silent.done, { code: 'ERR_CONTENT_TIMEOUT', message: /sent nothing for 150 ms/ });
  t.notOk(existsSync(silent.file));
  const stalls = download(t, `${host.base}/stalls`, { idleTimeoutMs: 150 });
  await t.rejects(stalls.done, { code: 'ERR_CONTENT_TIMEOUT', message: /sent nothing for 150 ms/ });
  t.notOk(existsSync(stalls.file), 'the partial file is removed');
  const trickle = download(t, `${host.base}/trickle`, { idleTimeoutMs: 150, totalTimeoutMs: 400 });
  await t.rejects(trickle.done, { code: 'ERR_CONTENT_TIMEOUT', message: /took longer than 400 ms/ });
  t.notOk(existsSync(trickle.file));
});

t.test('abort: before the start nothing is created; mid-body the partial file is removed', async (t) => {
  let firstChunk!: () => void;
  const sentFirst = new Promise<void>((resolve) => (firstChunk = resolve));
  const host = await startContentHost(t, (_req, res) => {
    res.writeHead(200);
    res.write(Buffer.alloc(1000));
    firstChunk();
  });
  const early = download(t, `${host.base}/a`, { signal: AbortSignal.abort() });
  await t.rejects(early.done, { code: 'ERR_ABORTED' });
  t.notOk(existsSync(early.file));
  const controller = new AbortController();
  const mid = download(t, `${host.base}/a`, { signal: controller.signal, onProgress: () => controller.abort() });
  await sentFirst;
  await t.rejects(mid.done, { code: 'ERR_ABORTED', message: /was aborted/ });
  t.notOk(existsSync(mid.file), 'the partial file is removed');
});

t.test('the connection fails: refused, reset mid-body, a name that does not resolve', async (t) => {
  const host = await startContentHost(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': '1000' });
    res.write(Buffer.alloc(100));
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const reset = download(t, `${host.base}/a`);
  await t.rejects(reset.done, {
    code: 'ERR_CONTENT_UNREACHABLE',
    message: /Could not read the audio URL .*\/a: connection reset|closed the connection before the whole file arrived/,
  });
  t.notOk(existsSync(reset.file));
  // A port that was free a moment ago: nothing listens there.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const refused = download(t, `http://127.0.0.1:${port}/a`);
  await t.rejects(refused.done, { code: 'ERR_CONTENT_UNREACHABLE', message: /connection refused \(ECONNREFUSED\)/ });
  const unresolved = download(t, 'http://no-such-host.invalid/a', { policy: new CidrPolicy(['0.0.0.0/0']) });
  await t.rejects(unresolved.done, {
    code: 'ERR_CONTENT_UNREACHABLE',
    message: /Could not resolve the host no-such-host\.invalid .*check the URL and the device's DNS/,
  });
});

t.test(
  'a full disk surfaces as the file system said it (ENOSPC), with nothing left behind',
  { skip: process.getuid?.() === 0 ? false : 'mounting a tmpfs needs root' },
  async (t) => {
    const card = mkdtempSync(path.join(os.tmpdir(), 'earshot-fetch-card-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', card], { stdio: 'pipe' });
    t.teardown(() => {
      execFileSync('umount', ['-l', card]);
      rmSync(card, { recursive: true, force: true });
    });
    const host = await startContentHost(t, (_req, res) => res.end(Buffer.alloc(3_000_000)));
    const file = path.join(card, 'audio.fetch');
    const failure = await fetchContent({ url: `${host.base}/big`, path: file, policy: loopback, maxBytes: 10_000_000 }).catch((err: unknown) => err);
    t.match(failure, { code: 'ENOSPC' });
    t.ok(isSpaceError(failure), 'the disk-space handling recognises it');
    t.notOk(existsSync(file));
  },
);

t.test('the format of fetched audio: the Content-Type, or the first bytes when it says nothing or is not audio', async (t) => {
  const head = wav(1).subarray(0, 4096);
  t.match(fetchedAudioFormat('audio/wav', head), { format: { kind: 'auto', mediaType: 'audio/wav', container: 'wav' } });
  t.match(fetchedAudioFormat('audio/l16;rate=16000', head), { format: { kind: 'l16', rate: 16000 } });
  t.same(fetchedAudioFormat('application/octet-stream', head), { format: { kind: 'auto', mediaType: 'audio/wav' } }, 'sniffed');
  t.same(fetchedAudioFormat(undefined, head), { format: { kind: 'auto', mediaType: 'audio/wav' } });
  t.same(fetchedAudioFormat(undefined, Buffer.from('????')), { format: { kind: 'auto', mediaType: 'application/octet-stream' } }, 'left to the decoder');
  t.same(fetchedAudioFormat('audio/wav;;=', head), { format: { kind: 'auto', mediaType: 'audio/wav' } }, 'a malformed header says nothing');
  t.match(fetchedAudioFormat('text/plain', head), {
    format: { mediaType: 'audio/wav' },
    warning: /"text\/plain" is not an audio format; the data was detected as WAV/,
  });
  t.throws(() => fetchedAudioFormat('text/html', Buffer.from('<html>')), { code: 'ERR_AUDIO_UNSUPPORTED' });
  t.throws(() => fetchedAudioFormat('audio/aac', head), { code: 'ERR_AUDIO_UNSUPPORTED', message: /AAC is not supported/ });
});

t.test('fetchJobAudio: the download with its format; nothing left when the format is refused', async (t) => {
  const host = await startContentHost(t, (req, res) => {
    res.writeHead(200, { 'Content-Type': req.url === '/page' ? 'text/html' : 'binary/octet-stream' });
    res.end(req.url === '/page' ? '<html>sign in</html>' : wav(1));
  });
  const dir = t.testdir();
  const audio = await fetchJobAudio({ url: `${host.base}/a`, path: path.join(dir, 'a'), policy: loopback, maxBytes: 1e6 });
  t.match(audio, { bytes: wav(1).length, contentType: 'binary/octet-stream', format: { mediaType: 'audio/wav' }, warnings: [/detected as WAV/] });
  await t.rejects(fetchJobAudio({ url: `${host.base}/page`, path: path.join(dir, 'page'), policy: loopback, maxBytes: 1e6 }), {
    code: 'ERR_AUDIO_UNSUPPORTED',
  });
  t.notOk(existsSync(path.join(dir, 'page')));
});
