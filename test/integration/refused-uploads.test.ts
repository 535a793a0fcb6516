// A refused upload is answered with its error body while the client is still sending:
// the client reads the JSON, never a reset (ECONNRESET/EPIPE) in its place.
import { request, Agent } from 'node:http';
import { connect } from 'node:net';
import { BasicAuthenticator } from 'ibm-watson/auth/index.js';
import SpeechToTextV1 from 'ibm-watson/speech-to-text/v1.js';
import t, { type Test } from 'tap';

import { startApp } from '../helpers/app.js';

const mb = 1024 * 1024;

interface Outcome {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** A socket error the client saw (it should see none). */
  error?: string;
}

/**
 * POSTs `total` bytes in 1 MiB pieces as fast as the socket takes them, the way a plain
 * node:http client does; chunked when `chunked`, else with a Content-Length.
 */
function upload(url: string, headers: Record<string, string>, total: number, options: { agent?: Agent | false; chunked?: boolean } = {}): Promise<Outcome> {
  const { agent, chunked = false } = options;
  return new Promise((resolve) => {
    let error: string | undefined;
    let outcome: Omit<Outcome, 'error'> | undefined;
    const finish = () => outcome && resolve({ ...outcome, ...(error ? { error } : {}) });
    const req = request(
      url,
      { method: 'POST', headers: { ...(chunked ? {} : { 'Content-Length': String(total) }), ...headers }, ...(agent !== undefined ? { agent } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          outcome = { status: res.statusCode ?? 0, headers: res.headers, body };
          // Give a late socket error the chance to show.
          setTimeout(finish, 50);
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
      if (!outcome) resolve({ status: 0, headers: {}, body: '', error });
    });
    const piece = Buffer.alloc(mb, 0x55);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(piece.length, total - sent);
        sent += n;
        if (!req.write(n === piece.length ? piece : piece.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/**
 * A client that reads nothing until it has sent the whole body (as blocking HTTP clients
 * do): it only gets the answer if the server reads the body instead of resetting.
 */
function uploadThenRead(base: string, headers: Record<string, string>, total: number): Promise<{ response: string; error?: string }> {
  return new Promise((resolve) => {
    const { hostname, port } = new URL(base);
    const socket = connect(Number(port), hostname);
    let response = '';
    let error: string | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (response += c));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ response, ...(error ? { error } : {}) }));
    socket.pause();
    const head = Object.entries({ Host: hostname, 'Content-Length': String(total), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    socket.write(`POST /v1/recognitions HTTP/1.1\r\n${head.join('')}Connection: close\r\n\r\n`);
    const piece = Buffer.alloc(mb, 0x55);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
      socket.resume();
    };
    pump();
  });
}

const ibmShape = (t: Test, outcome: Outcome, status: number, error: RegExp, name: string) => {
  t.equal(outcome.error, undefined, `${name}: no socket error`);
  t.equal(outcome.status, status, name);
  t.match(JSON.parse(outcome.body || '{}'), { code: status, error }, `${name}: the JSON error body`);
};

t.test('401 for a 20 MB upload with a wrong key: the client reads the JSON; nothing of it is kept in memory', async (t) => {
  const app = await startApp(t);
  const url = `${app.base}/v1/recognitions`;
  const wrong = { Authorization: `Basic ${Buffer.from('apikey:wrong').toString('base64')}`, 'Content-Type': 'audio/wav' };

  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const started = performance.now();
  const keepAlive = await upload(url, wrong, 20 * mb);
  const ms = performance.now() - started;
  clearInterval(sampler);
  ibmShape(t, keepAlive, 401, /Unauthorized/, 'keep-alive client');
  const growth = (peak - before) / mb;
  t.comment(`20 MB refused with 401 in ${ms.toFixed(0)} ms; RSS +${growth.toFixed(1)} MB (client and server in one process)`);
  t.ok(growth < 20, `RSS grew ${growth.toFixed(1)} MB, less than the body`);

  // A client that says Connection: close (Node's http without an agent, Node 18's default).
  const closing = await upload(url, wrong, 20 * mb, { agent: false });
  ibmShape(t, closing, 401, /Unauthorized/, 'Connection: close client');

  const blocking = await uploadThenRead(app.base, wrong, 20 * mb);
  t.equal(blocking.error, undefined, 'a client that reads only after sending: no socket error');
  t.match(blocking.response, /^HTTP\/1\.1 401 Unauthorized\r\n[\s\S]*\r\n\r\n\{"code":401,"code_description":"Unauthorized"/, 'and the whole answer');

  // IBM's SDK with its defaults (axios).
  const stt = new SpeechToTextV1({ authenticator: new BasicAuthenticator({ username: 'apikey', password: 'wrong' }), serviceUrl: app.base });
  const err = await stt.createJob({ audio: Buffer.alloc(20 * mb, 0x55), contentType: 'audio/wav' }).then(
    () => undefined,
    (e: { status: number; body: string; message: string }) => e,
  );
  t.equal(err?.status, 401, `the SDK sees the status (${err?.message})`);
  t.match(JSON.parse(err?.body ?? '{}'), { code: 401, code_description: 'Unauthorized' }, 'and the body');

  // The connection still serves: the next upload on a keep-alive agent goes through.
  t.equal((await fetch(`${app.base}/v1/recognitions`, { headers: app.auth })).status, 200);
});

t.test('413, 415 and 503 for a 20 MB upload: the client reads the JSON', async (t) => {
  const app = await startApp(t, { EARSHOT_MAX_UPLOAD_BYTES: String(10 * mb) });
  const url = `${app.base}/v1/recognitions`;
  ibmShape(t, await upload(url, { ...app.auth, 'Content-Type': 'audio/wav' }, 20 * mb), 413, /exceeds the maximum of 10485760 bytes/, '413 declared too large');
  // Chunked: refused by the running count, mid-body.
  ibmShape(
    t,
    await upload(url, { ...app.auth, 'Content-Type': 'audio/wav' }, 20 * mb, { chunked: true }),
    413,
    /exceeds the maximum of 10485760 bytes/,
    '413 by the running count',
  );
  ibmShape(t, await upload(url, { ...app.auth, 'Content-Type': 'application/json' }, 9 * mb), 415, /not a supported audio format/, '415 not audio');

  // Shutting down: a request on a connection that is already open gets 503.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const warm = await upload(`${app.base}/v1/recognitions`, { ...app.auth, 'Content-Type': 'audio/wav' }, 10, { agent });
  t.equal(warm.status, 400, 'a first request opens the connection');
  app.app.http.close();
  const draining = await upload(url, { ...app.auth, 'Content-Type': 'audio/wav' }, 20 * mb, { agent });
  ibmShape(t, draining, 503, /shutting down/, '503 shutting down');
  t.equal(draining.headers['retry-after'], '5');
});
