// Replies whose body is a stream (server-sent events), on the real uWS server: written as
// they yield, a failure before the first piece is an error answer, a client that leaves
// ends the stream.
import { request } from 'node:http';

import t from 'tap';

import { AppError, toAppError } from '../../src/errors.js';
import { HttpServer, json, type Route } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';

/** A stream whose pieces are released one by one (`release`), recording how it ended. */
function gatedStream(pieces: string[], failAt = -1) {
  const gates: Array<() => void> = [];
  const state = { ended: false, credits: 0 };
  const gate = () => {
    if (state.credits > 0) {
      state.credits--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => gates.push(resolve));
  };
  async function* body(): AsyncGenerator<string> {
    try {
      for (const [i, piece] of pieces.entries()) {
        await gate();
        if (i === failAt) throw new AppError('ERR_INFERENCE', 'it broke');
        yield piece;
      }
    } finally {
      state.ended = true;
    }
  }
  /** Lets the next piece go (now, or when the stream gets to it). */
  const release = () => {
    const waiting = gates.shift();
    if (waiting) waiting();
    else state.credits++;
  };
  return { body: body(), release, state, gates };
}

async function serve(t: { teardown(fn: () => unknown): void }, handler: Route['handler']) {
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    groups: [
      {
        prefix: '/s',
        renderError: (error) => json(toAppError(error).status, { code: error.code }),
        routes: [{ method: 'get', pattern: '/s', name: 'stream', doc: 'a stream', auth: false, handler }],
      },
    ],
    authenticate: () => {},
    log: createLogger({ level: 'error' }),
    metrics: new Metrics(),
  });
  const port = await server.listen();
  t.teardown(() => server.close());
  return port;
}

/** GET /s: the status, then each chunk as it arrives (`onChunk`), resolving at the end. */
function get(port: number, onChunk: (chunk: string) => void, onResponse?: (res: import('node:http').IncomingMessage) => void) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/s' }, (res) => {
      onResponse?.(res);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        onChunk(c);
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('pieces go out as they are yielded, then the response ends', async (t) => {
  const stream = gatedStream(['a\n', 'b\n', 'c\n']);
  const port = await serve(t, () => ({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, body: stream.body }));
  const seen: string[] = [];
  stream.release();
  const done = get(port, (chunk) => {
    seen.push(chunk);
    // The next piece only once this one arrived: each came on its own.
    stream.release();
  });
  const { status, body } = await done;
  t.equal(status, 200);
  t.equal(body, 'a\nb\nc\n');
  t.same(seen, ['a\n', 'b\n', 'c\n'], 'one piece at a time');
  t.ok(stream.state.ended);
});

t.test('a failure before the first piece is the error answer; after it, the response ends', async (t) => {
  const early = gatedStream(['a\n'], 0);
  let port = await serve(t, () => ({ status: 200, body: early.body }));
  early.release();
  const refused = await get(port, () => {});
  t.equal(refused.status, 500);
  t.same(JSON.parse(refused.body), { code: 'ERR_INFERENCE' });

  const late = gatedStream(['a\n', 'b\n'], 1);
  port = await serve(t, () => ({ status: 200, body: late.body }));
  late.release();
  const cut = await get(port, () => late.release());
  t.equal(cut.status, 200);
  t.equal(cut.body, 'a\n', 'what came before the failure');
});

t.test('a client that leaves mid-stream: the stream is ended, nothing more is written', async (t) => {
  const stream = gatedStream(['a\n', 'b\n', 'c\n']);
  const port = await serve(t, () => ({ status: 200, body: stream.body }));
  stream.release();
  await new Promise<void>((resolve) => {
    get(
      port,
      () => {},
      (res) => {
        res.once('data', () => {
          res.destroy();
          resolve();
        });
      },
    ).catch(() => {});
  });
  // The server notices the close; the stream is returned at its next piece.
  await new Promise((resolve) => setTimeout(resolve, 200));
  stream.release();
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.ok(stream.state.ended, 'the generator was returned (its finally ran)');
  t.equal(stream.gates.length, 0, 'nobody waits on it');
});
