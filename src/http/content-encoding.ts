import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { AppError } from '../errors.js';

/**
 * Undoing a request body's Content-Encoding while it streams. IBM documents gzip for
 * request bodies (its SDKs' `gzip` option sends it), and that is what earshot decodes:
 * `identity` is a no-op, anything else (deflate, br, zstd, gzip twice) is refused.
 */

/** What a body is decoded with. */
export type BodyEncoding = 'identity' | 'gzip';

/**
 * The coding of a body from its Content-Encoding header (a list, applied in order).
 * @throws AppError ERR_UNSUPPORTED_MEDIA_TYPE (415) naming an encoding earshot does not decode
 */
export function bodyEncoding(header: string | undefined): BodyEncoding {
  const codings = (header ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return 'identity';
  // x-gzip: RFC 9110 asks recipients to treat it as gzip.
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return 'gzip';
  throw new AppError(
    'ERR_UNSUPPORTED_MEDIA_TYPE',
    `Unsupported Content-Encoding ${JSON.stringify(header!.trim())}: send the body as it is or compressed once with gzip`,
  );
}

export interface GunzipLimits {
  /** The most decompressed bytes accepted. */
  maxBytes: number;
  /** Past `ratioAfterBytes` of output, more than this many bytes out per byte in is refused as a decompression bomb. */
  maxRatio?: number;
  ratioAfterBytes?: number;
}

/**
 * Deflate cannot expand more than 1032-fold; only long runs of one byte value come close.
 * Real audio, digital silence included, stays far below this over 16 MiB (8 minutes of
 * 16 kHz 16-bit silence): what passes it is a bomb.
 */
export const MAX_GZIP_RATIO = 1000;
export const GZIP_RATIO_AFTER_BYTES = 16 * 1024 * 1024;

/**
 * Decompresses a gzip body as its chunks arrive, so a large upload never sits in memory.
 * @throws AppError ERR_PAYLOAD_TOO_LARGE (413) past `maxBytes` of output or the ratio
 *   guard; ERR_INVALID_ARGUMENT (400) when the data is not gzip or is cut short; errors of
 *   `source` (the client went away, too many bytes on the wire) as they are.
 */
export async function* gunzip(source: AsyncIterable<Buffer>, limits: GunzipLimits): AsyncGenerator<Buffer> {
  const { maxBytes, maxRatio = MAX_GZIP_RATIO, ratioAfterBytes = GZIP_RATIO_AFTER_BYTES } = limits;
  const inflater = createGunzip();
  const input = Readable.from(source);
  input.on('error', (err) => inflater.destroy(err));
  input.pipe(inflater);
  let out = 0;
  try {
    for await (const chunk of inflater as AsyncIterable<Buffer>) {
      out += chunk.length;
      if (out > maxBytes) {
        throw new AppError('ERR_PAYLOAD_TOO_LARGE', `The request body exceeds the maximum of ${maxBytes} bytes once decompressed`);
      }
      // bytesWritten: the compressed bytes the inflater has taken in so far.
      if (out > ratioAfterBytes && out > maxRatio * inflater.bytesWritten) {
        throw new AppError(
          'ERR_PAYLOAD_TOO_LARGE',
          `The gzip body expands more than ${maxRatio}-fold (${out} bytes from ${inflater.bytesWritten}): refused as a decompression bomb`,
        );
      }
      yield chunk;
    }
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('Z_')) throw err;
    throw new AppError('ERR_INVALID_ARGUMENT', `The request body is not valid gzip (Content-Encoding: gzip): ${(err as Error).message}`, { cause: err });
  } finally {
    input.destroy();
    inflater.destroy();
  }
}
