// Mutations of valid audio files for the decoder fuzzer: bit flips, overwritten bytes,
// truncations, cut and repeated ranges, and lies in what headers state (sizes, sample rates,
// channel counts, chunk and page lengths, frame headers), found by walking each container.
// Ogg pages can get their CRC recomputed after a change, so that the lie reaches the codec
// instead of stopping at the checksum.
import fc from 'fast-check';

export const containers = ['wav', 'flac', 'mp3', 'vorbis', 'opus', 'aiff', 'au'] as const;
export type Container = (typeof containers)[number];

/** A number a header states: where, how wide, which byte order. */
export interface Field {
  name: string;
  offset: number;
  bytes: 1 | 2 | 4;
  endian: 'le' | 'be';
}

const le = (name: string, offset: number, bytes: 1 | 2 | 4): Field => ({ name, offset, bytes, endian: 'le' });
const be = (name: string, offset: number, bytes: 1 | 2 | 4): Field => ({ name, offset, bytes, endian: 'be' });

function indexesOf(buf: Buffer, text: string, limit = 64): number[] {
  const found: number[] = [];
  for (let i = buf.indexOf(text); i >= 0 && found.length < limit; i = buf.indexOf(text, i + 1)) found.push(i);
  return found;
}

/** RIFF (le) or IFF (be) chunks after the 12-byte file header: [id, offset of the chunk]. */
function chunks(buf: Buffer, endian: 'le' | 'be'): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (let at = 12; at + 8 <= buf.length && out.length < 32; ) {
    out.push([buf.toString('latin1', at, at + 4), at]);
    const size = endian === 'le' ? buf.readUInt32LE(at + 4) : buf.readUInt32BE(at + 4);
    at += 8 + size + (size & 1);
  }
  return out;
}

/** Every header field of a valid file that can be made to lie. */
export function headerFields(container: Container, buf: Buffer): Field[] {
  const fields: Field[] = [];
  switch (container) {
    case 'wav':
      fields.push(le('RIFF size', 4, 4));
      for (const [id, at] of chunks(buf, 'le')) {
        fields.push(le(`${id} size`, at + 4, 4));
        if (id === 'fmt ') {
          fields.push(le('format tag', at + 8, 2), le('channels', at + 10, 2), le('sample rate', at + 12, 4), le('byte rate', at + 16, 4));
          fields.push(le('block align', at + 20, 2), le('bits per sample', at + 22, 2));
        }
      }
      break;
    case 'aiff':
      fields.push(be('FORM size', 4, 4));
      for (const [id, at] of chunks(buf, 'be')) {
        fields.push(be(`${id} size`, at + 4, 4));
        if (id === 'COMM') {
          fields.push(be('channels', at + 8, 2), be('sample frames', at + 10, 4), be('sample size', at + 14, 2));
          fields.push(be('rate exponent', at + 16, 2), be('rate mantissa', at + 18, 4));
        }
        if (id === 'SSND') fields.push(be('SSND offset', at + 8, 4), be('SSND block size', at + 12, 4));
      }
      break;
    case 'au':
      fields.push(be('data offset', 4, 4), be('data size', 8, 4), be('encoding', 12, 4), be('sample rate', 16, 4), be('channels', 20, 4));
      break;
    case 'flac': {
      fields.push(be('block type', 4, 1), be('block length', 5, 2), be('block length low', 7, 1));
      fields.push(be('min block size', 8, 2), be('max block size', 10, 2), be('min frame size', 12, 2), be('max frame size', 15, 2));
      // Sample rate (20 bits), channels (3), bits per sample (5), total samples (36): byte by byte.
      for (let i = 18; i < 26; i++) fields.push(be(`streaminfo byte ${i}`, i, 1));
      // Frame headers: sync 0xFFF8, then block size / sample rate codes, channels / sample size.
      const first = buf.indexOf(Buffer.from([0xff, 0xf8]), 42);
      for (let at = first, n = 0; at >= 0 && n < 4; at = buf.indexOf(Buffer.from([0xff, 0xf8]), at + 2), n++) {
        fields.push(be(`frame ${n} sizes`, at + 2, 1), be(`frame ${n} channels`, at + 3, 1));
      }
      break;
    }
    case 'mp3': {
      let frame = 0;
      for (let at = 0; at + 4 <= buf.length && frame < 6; at++) {
        if (buf[at] !== 0xff || ((buf[at + 1] ?? 0) & 0xe0) !== 0xe0) continue;
        fields.push(be(`frame ${frame} version/layer`, at + 1, 1), be(`frame ${frame} bitrate/rate`, at + 2, 1), be(`frame ${frame} mode`, at + 3, 1));
        frame++;
        at += 100;
      }
      for (const at of [...indexesOf(buf, 'Xing', 1), ...indexesOf(buf, 'Info', 1)]) {
        fields.push(be('Xing flags', at + 4, 4), be('Xing frames', at + 8, 4), be('Xing bytes', at + 12, 4));
      }
      break;
    }
    case 'vorbis':
    case 'opus': {
      for (const [n, at] of indexesOf(buf, 'OggS', 8).entries()) {
        fields.push(le(`page ${n} header type`, at + 5, 1), le(`page ${n} granule`, at + 6, 4), le(`page ${n} granule high`, at + 10, 4));
        fields.push(le(`page ${n} serial`, at + 14, 4), le(`page ${n} sequence`, at + 18, 4), le(`page ${n} segments`, at + 26, 1));
        fields.push(le(`page ${n} first lacing`, at + 27, 1));
      }
      for (const at of indexesOf(buf, '\x01vorbis', 1)) {
        fields.push(le('vorbis channels', at + 11, 1), le('vorbis rate', at + 12, 4), le('vorbis blocksizes', at + 28, 1));
      }
      for (const at of indexesOf(buf, 'OpusHead', 1)) {
        fields.push(le('opus version', at + 8, 1), le('opus channels', at + 9, 1), le('opus pre-skip', at + 10, 2));
        fields.push(le('opus rate', at + 12, 4), le('opus gain', at + 16, 2), le('opus mapping family', at + 18, 1));
      }
      break;
    }
  }
  return fields.filter((f) => f.offset + f.bytes <= buf.length);
}

// ---- Ogg's CRC (polynomial 0x04c11db7, no reflection, initial 0) ----------------------------

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/** Recomputes the CRC of every Ogg page that is whole, so that changes get past the checksum. */
export function fixOggCrcs(buf: Buffer): void {
  for (const at of indexesOf(buf, 'OggS', 10_000)) {
    if (at + 27 > buf.length) continue;
    const segments = buf[at + 26]!;
    if (at + 27 + segments > buf.length) continue;
    let length = 27 + segments;
    for (let i = 0; i < segments; i++) length += buf[at + 27 + i]!;
    if (at + length > buf.length) continue;
    buf.writeUInt32LE(0, at + 22);
    let crc = 0;
    for (let i = at; i < at + length; i++) crc = ((crc << 8) ^ crcTable[((crc >>> 24) ^ buf[i]!) & 0xff]!) >>> 0;
    buf.writeUInt32LE(crc, at + 22);
  }
}

// ---- mutations -----------------------------------------------------------------------------

export type Mutation =
  /** A header field set to a lie: `value` picks from the lies for its width. */
  | { kind: 'lie'; field: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'overwrite'; at: number; bytes: number[] }
  | { kind: 'truncate'; keep: number }
  | { kind: 'cut'; at: number; length: number }
  | { kind: 'repeat'; at: number; length: number; times: number };

export interface MutatedInput {
  container: Container;
  mutations: Mutation[];
  /** Recompute Ogg CRCs after mutating (vorbis and opus only). */
  fixCrc: boolean;
  /** How the upload's type is declared: as the container is, detected from the data, or wrongly. */
  declared: 'right' | 'auto' | 'wrong';
}

/** Values a header field may lie with, for its width and its true value. */
function lies(field: Field, truth: number): number[] {
  const max = field.bytes === 4 ? 0xffffffff : field.bytes === 2 ? 0xffff : 0xff;
  const values = [
    0,
    1,
    2,
    3,
    7,
    16,
    17,
    255,
    max,
    max - 1,
    Math.floor(max / 2),
    Math.floor(max / 2) + 1,
    truth + 1,
    truth - 1,
    truth * 2,
    Math.floor(truth / 2),
  ];
  if (field.bytes === 4) values.push(999, 1000, 8000, 44_100, 768_000, 768_001, 0x7fffffff, 0x80000000, 0x10000000);
  return values.map((v) => ((v % (max + 1)) + (max + 1)) % (max + 1));
}

function readField(buf: Buffer, f: Field): number {
  if (f.bytes === 1) return buf[f.offset]!;
  if (f.bytes === 2) return f.endian === 'le' ? buf.readUInt16LE(f.offset) : buf.readUInt16BE(f.offset);
  return f.endian === 'le' ? buf.readUInt32LE(f.offset) : buf.readUInt32BE(f.offset);
}

function writeField(buf: Buffer, f: Field, value: number): void {
  if (f.bytes === 1) buf[f.offset] = value;
  else if (f.bytes === 2) f.endian === 'le' ? buf.writeUInt16LE(value, f.offset) : buf.writeUInt16BE(value, f.offset);
  else f.endian === 'le' ? buf.writeUInt32LE(value, f.offset) : buf.writeUInt32BE(value, f.offset);
}

/** Positions: half of them in the first 256 bytes, where the headers are. */
const position = fc.oneof(fc.nat(255), fc.nat(1 << 24));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('lie' as const), field: fc.nat(10_000), value: fc.nat(100) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), at: position, bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat(1 << 24) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: position, length: fc.integer({ min: 1, max: 4096 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('repeat' as const),
      at: position,
      length: fc.integer({ min: 1, max: 2048 }),
      times: fc.integer({ min: 1, max: 8 }),
    }),
  },
);

export const mutatedInput: fc.Arbitrary<MutatedInput> = fc.record({
  container: fc.constantFrom(...containers),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
  fixCrc: fc.boolean(),
  declared: fc.oneof(
    { weight: 7, arbitrary: fc.constant('right' as const) },
    { weight: 2, arbitrary: fc.constant('auto' as const) },
    { weight: 1, arbitrary: fc.constant('wrong' as const) },
  ),
});

/** Applies the mutations in order; returns the bytes and what each mutation did. */
export function mutate(valid: Buffer, input: MutatedInput): { bytes: Buffer; described: string[] } {
  let buf = Buffer.from(valid);
  const described: string[] = [];
  for (const m of input.mutations) {
    if (buf.length === 0) break;
    switch (m.kind) {
      case 'lie': {
        const fields = headerFields(input.container, buf);
        if (!fields.length) break;
        const field = fields[m.field % fields.length]!;
        const truth = readField(buf, field);
        const options = lies(field, truth);
        const value = options[m.value % options.length]!;
        writeField(buf, field, value);
        described.push(`${field.name} @${field.offset}: ${truth} → ${value}`);
        break;
      }
      case 'flip': {
        const at = m.at % buf.length;
        buf[at] = buf[at]! ^ (1 << m.bit);
        described.push(`flip bit ${m.bit} @${at}`);
        break;
      }
      case 'overwrite': {
        const at = m.at % buf.length;
        Buffer.from(m.bytes).copy(buf, at);
        described.push(`overwrite @${at}: ${Buffer.from(m.bytes).toString('hex')}`);
        break;
      }
      case 'truncate': {
        const keep = m.keep % buf.length;
        buf = buf.subarray(0, keep);
        described.push(`truncate to ${keep} bytes`);
        break;
      }
      case 'cut': {
        const at = m.at % buf.length;
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.length)]);
        described.push(`cut ${m.length} bytes @${at}`);
        break;
      }
      case 'repeat': {
        const at = m.at % buf.length;
        const part = buf.subarray(at, at + m.length);
        buf = Buffer.concat([buf.subarray(0, at + part.length), ...Array<Buffer>(m.times).fill(part), buf.subarray(at + part.length)]);
        described.push(`repeat ${part.length} bytes @${at} ${m.times}×`);
        break;
      }
    }
  }
  if (input.fixCrc && (input.container === 'vorbis' || input.container === 'opus')) {
    buf = Buffer.from(buf);
    fixOggCrcs(buf);
    described.push('Ogg CRCs recomputed');
  }
  return { bytes: buf, described };
}
