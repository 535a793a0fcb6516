// RequestBody over a stand-in for uWS's response: spooling with a look at the first bytes,
// gzip, back-pressure, and dropping the rest of a refused body without keeping it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import type { HttpResponse } from 'uWebSockets.js';

import { RequestBody } from '../../src/http/body.js';

/** What RequestBody uses of uWS's HttpResponse; `send` plays the client. */
class FakeResponse {
  private handler: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  paused = false;
  pauses = 0;
  resumes = 0;
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void) {
    this.handler = handler;
  }
  pause() {
    this.paused = true;
    this.pauses++;
  }
  resume() {
    this.paused = false;
    this.resumes++;
  }
  send(bytes: Buffer, isLast = false) {
    // uWS lends its memory for the call only: RequestBody must copy, so this is wiped after.
    const lent = new Uint8Array(bytes).buffer;
    this.handler!(lent, isLast);
    new Uint8Array(lent).fill(0xee);
  }
}

function setup(options: { encoding?: string; present?: boolean } = {}) {
  const res = new FakeResponse();
  const controller = new AbortController();
  const body = new RequestBody(res as unknown as HttpResponse, undefined, controller.signal, options.present ?? true, options.encoding);
  return { res, body, controller };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('toFile copies every chunk as it comes, and checks the minimum', async (t) => {
  const dir = t.testdir();
  const { res, body } = setup();
  const file = path.join(dir, 'a.upload');
  const done = body.toFile(file, { maxBytes: 1000 });
  res.send(Buffer.from('hello '));
  await tick();
  res.send(Buffer.from('world'), true);
  t.same(await done, { bytes: 11 });
  t.equal(readFileSync(file, 'utf8'), 'hello world');

  const short = setup();
  short.res.send(Buffer.from('tiny'), true);
  await t.rejects(short.body.toFile(path.join(dir, 'b.upload'), { maxBytes: 1000, minBytes: 5 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /Stream was 4 bytes/,
  });
  t.notOk(existsSync(path.join(dir, 'b.upload')), 'the short file is removed');
});

t.test('toFile with inspect: the first bytes are checked before any file exists', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'x.upload');
  const { res, body } = setup();
  const heads: string[] = [];
  const done = body.toFile(file, {
    maxBytes: 1000,
    inspect: {
      bytes: 6,
      check: (head) => {
        heads.push(head.toString());
        t.notOk(existsSync(file), 'no file while the head is checked');
      },
    },
  });
  for (const piece of ['abc', 'def', 'ghi']) {
    res.send(Buffer.from(piece));
    await tick();
  }
  res.send(Buffer.alloc(0), true);
  t.same(await done, { bytes: 9 });
  t.same(heads, ['abcdef'], 'the head: chunks until at least `bytes`');
  t.equal(readFileSync(file, 'utf8'), 'abcdefghi', 'then the head and the rest, in order');

  const refused = setup();
  refused.res.send(Buffer.from(`{"json":"${'x'.repeat(100)}`));
  const error = new Error('not audio');
  await t.rejects(
    refused.body.toFile(path.join(dir, 'y.upload'), {
      maxBytes: 1000,
      inspect: {
        bytes: 100,
        check: () => {
          throw error;
        },
      },
    }),
    error,
  );
  t.notOk(existsSync(path.join(dir, 'y.upload')), 'a refused body never had a file');
  t.ok(refused.body.unfinished, 'the rest of it has not arrived');

  const shorter = setup();
  shorter.res.send(Buffer.from('ab'), true);
  let seen = '';
  await shorter.body.toFile(path.join(dir, 'z.upload'), {
    maxBytes: 10,
    inspect: {
      bytes: 100,
      check: (head) => {
        seen = head.toString();
      },
    },
  });
  t.equal(seen, 'ab', 'a body shorter than the look is looked at whole');
});

t.test('a gzip body is decompressed for toFile, text and json; limits count what comes out', async (t) => {
  const dir = t.testdir();
  const data = Buffer.from('audio '.repeat(1000));
  const gz = gzipSync(data);
  const spooled = setup({ encoding: 'gzip' });
  const done = spooled.body.toFile(path.join(dir, 'g.upload'), { maxBytes: 10_000, minBytes: 5000 });
  spooled.res.send(gz.subarray(0, 10));
  await tick();
  spooled.res.send(gz.subarray(10), true);
  t.same(await done, { bytes: data.length });
  t.same(readFileSync(path.join(dir, 'g.upload')), data);

  const json = setup({ encoding: 'x-gzip' });
  json.res.send(gzipSync(Buffer.from('{"a":1}')), true);
  t.same(await json.body.json(100), { a: 1 });

  const large = setup({ encoding: 'gzip' });
  large.res.send(gz, true);
  await t.rejects(large.body.text(1000), { code: 'ERR_PAYLOAD_TOO_LARGE', message: /1000 bytes once decompressed/ });

  const none = setup({ encoding: 'gzip', present: false });
  t.equal(await none.body.text(10), '', 'no body at all: nothing to decompress');

  const brotli = setup({ encoding: 'br' });
  brotli.res.send(Buffer.from('x'), true);
  await t.rejects(brotli.body.text(10), { code: 'ERR_UNSUPPORTED_MEDIA_TYPE', status: 415, message: /"br"/ });
});

t.test('a body that waits unread pauses the socket; reading it resumes', async (t) => {
  const { res, body } = setup();
  for (let i = 0; i < 3; i++) res.send(Buffer.alloc(512 * 1024, i));
  t.ok(res.paused, 'paused past the high-water mark');
  res.send(Buffer.alloc(10), true);
  t.equal((await body.text(10 * 1024 * 1024)).length, 3 * 512 * 1024 + 10);
  t.equal(res.resumes, 1, 'resumed once drained');
});

t.test('discard drops what waits and counts the rest without keeping it, until the body ends', async (t) => {
  const { res, body } = setup();
  for (let i = 0; i < 3; i++) res.send(Buffer.alloc(512 * 1024));
  t.ok(res.paused);
  let resolved = false;
  const discarding = body.discard({ maxBytes: 10 * 1024 * 1024, maxMs: 60_000 }).then(() => (resolved = true));
  t.notOk(res.paused, 'the socket reads again');
  for (let i = 0; i < 10; i++) res.send(Buffer.alloc(1024 * 1024));
  await tick();
  t.notOk(resolved, 'still reading');
  t.equal(res.pauses, 1, 'never paused again: nothing is kept');
  res.send(Buffer.alloc(100), true);
  await discarding;
  t.notOk(body.unfinished, 'the body ended: the connection can stay');
  await t.rejects(body.text(10), { code: 'ERR_ABORTED', message: /answered before its body was read/ }, 'nothing left to read');
});

t.test('discard stops at its byte and time limits, when the client leaves, and at once for a finished body', async (t) => {
  const bytes = setup();
  const byBytes = bytes.body.discard({ maxBytes: 1000, maxMs: 60_000 });
  bytes.res.send(Buffer.alloc(600));
  bytes.res.send(Buffer.alloc(600));
  await byBytes;
  t.ok(bytes.body.unfinished, 'past maxBytes: unfinished, the connection closes');

  const time = setup();
  const started = Date.now();
  await time.body.discard({ maxBytes: 1000, maxMs: 30 });
  t.ok(Date.now() - started >= 25 && time.body.unfinished, 'past maxMs');

  const gone = setup();
  const byAbort = gone.body.discard({ maxBytes: 1000, maxMs: 60_000 });
  gone.controller.abort();
  await byAbort;
  t.pass('the client left');

  const finished = setup();
  finished.res.send(Buffer.from('all'), true);
  await finished.body.discard({ maxBytes: 1, maxMs: 60_000 });
  t.notOk(finished.body.unfinished);
});

t.test('a reader waiting for data when the body is discarded fails with ERR_ABORTED', async (t) => {
  const { res, body } = setup();
  res.send(Buffer.from('part'));
  const reading = body.text(1000);
  await tick();
  const discarding = body.discard({ maxBytes: 1000, maxMs: 60_000 });
  await t.rejects(reading, { code: 'ERR_ABORTED' });
  res.send(Buffer.alloc(0), true);
  await discarding;
});
