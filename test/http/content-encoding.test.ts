// Request bodies' Content-Encoding: which ones are decoded, and gzip decoded as it streams.
import { gzipSync } from 'node:zlib';
import t from 'tap';

import { AppError } from '../../src/errors.js';
import { bodyEncoding, GZIP_RATIO_AFTER_BYTES, gunzip, MAX_GZIP_RATIO } from '../../src/http/content-encoding.js';

/** `data` in pieces of `size` bytes, as a socket delivers it. */
async function* pieces(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const collect = async (source: AsyncIterable<Buffer>) => {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
};

t.test('bodyEncoding: none, identity and gzip; everything else is 415 naming it', async (t) => {
  for (const header of [undefined, '', 'identity', ' Identity ', 'identity, identity']) t.equal(bodyEncoding(header), 'identity', String(header));
  for (const header of ['gzip', 'GZIP', 'x-gzip', 'identity, gzip', 'gzip,identity']) t.equal(bodyEncoding(header), 'gzip', header);
  for (const header of ['br', 'deflate', 'zstd', 'compress', 'gzip, gzip', 'gzip, br']) {
    const error = t.throws(() => bodyEncoding(header), header) as AppError;
    t.match(error, { code: 'ERR_UNSUPPORTED_MEDIA_TYPE', status: 415, message: `Unsupported Content-Encoding "${header}"` }, header);
  }
});

t.test('gunzip decodes across any chunking, and several gzip members in a row', async (t) => {
  const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff));
  const gz = gzipSync(data);
  for (const size of [1, 7, 1024, gz.length]) t.same(await collect(gunzip(pieces(gz, size), { maxBytes: 1e9 })), data, `pieces of ${size}`);
  const twice = Buffer.concat([gzipSync(Buffer.from('hello ')), gzipSync(Buffer.from('world'))]);
  t.equal((await collect(gunzip(pieces(twice, 5), { maxBytes: 100 }))).toString(), 'hello world');
});

t.test('gunzip: maxBytes counts decompressed bytes', async (t) => {
  const gz = gzipSync(Buffer.alloc(10_000, 1));
  t.equal((await collect(gunzip(pieces(gz, 100), { maxBytes: 10_000 }))).length, 10_000, 'exactly the limit');
  await t.rejects(collect(gunzip(pieces(gz, 100), { maxBytes: 9_999 })), {
    code: 'ERR_PAYLOAD_TOO_LARGE',
    message: 'The request body exceeds the maximum of 9999 bytes once decompressed',
  });
});

t.test('gunzip: the ratio guard refuses a bomb past its minimum, not before', async (t) => {
  t.equal(MAX_GZIP_RATIO, 1000);
  t.equal(GZIP_RATIO_AFTER_BYTES, 16 * 1024 * 1024);
  const size = 4 * 1024 * 1024;
  const zeros = gzipSync(Buffer.alloc(size));
  t.ok(zeros.length * MAX_GZIP_RATIO < size, `4 MiB of zeros is ${zeros.length} bytes of gzip`);
  await t.rejects(collect(gunzip(pieces(zeros, 256), { maxBytes: 1e9, ratioAfterBytes: 64 * 1024 })), {
    code: 'ERR_PAYLOAD_TOO_LARGE',
    message: /^The gzip body expands more than 1000-fold \(\d+ bytes from \d+\): refused as a decompression bomb$/,
  });
  t.equal((await collect(gunzip(pieces(zeros, 256), { maxBytes: 1e9 }))).length, size, 'below the minimum: accepted');
  t.equal((await collect(gunzip(pieces(zeros, 256), { maxBytes: 1e9, ratioAfterBytes: 0, maxRatio: 2000 }))).length, size, 'a looser ratio');
});

t.test('gunzip: data that is not gzip, or is cut short, is 400; errors of the source pass as they are', async (t) => {
  await t.rejects(collect(gunzip(pieces(Buffer.from('plain text, not gzip'), 4), { maxBytes: 100 })), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'The request body is not valid gzip (Content-Encoding: gzip): incorrect header check',
  });
  const gz = gzipSync(Buffer.alloc(1000, 7));
  await t.rejects(collect(gunzip(pieces(gz.subarray(0, gz.length - 5), 10), { maxBytes: 10_000 })), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /not valid gzip .*unexpected end of file/,
  });
  async function* failing(): AsyncGenerator<Buffer> {
    yield gz.subarray(0, 10);
    throw new AppError('ERR_ABORTED', 'the client closed the connection');
  }
  await t.rejects(collect(gunzip(failing(), { maxBytes: 10_000 })), { code: 'ERR_ABORTED', message: 'the client closed the connection' });
});

t.test('gunzip: a consumer that stops early stops the source', async (t) => {
  let finished = false;
  async function* source(): AsyncGenerator<Buffer> {
    try {
      yield* pieces(gzipSync(Buffer.alloc(1024 * 1024, 3)), 64);
    } finally {
      finished = true;
    }
  }
  for await (const part of gunzip(source(), { maxBytes: 1e9 })) {
    t.ok(part.length > 0);
    break;
  }
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(finished, 'the source was closed');
});
