// The first bytes of an upload whose Content-Type is not an audio type: audio or not.
import { readFileSync } from 'node:fs';
import t from 'tap';

import { SNIFF_BYTES, sniffAudio } from '../../src/engine/audio-sniff.js';
import { jfkMp3 } from '../helpers/models.js';
import { wav } from '../helpers/pcm.js';

const jfk = readFileSync(jfkMp3);
/** jfk.mp3 without its ID3v2 tag: bare MPEG frames from the first byte. */
const bareMpeg = jfk.subarray(10 + jfk.readUInt32BE(6));
const withMagic = (magic: string, at = 0, also?: [number, string]) => {
  const b = Buffer.alloc(64);
  b.write(magic, at, 'latin1');
  if (also) b.write(also[1], also[0], 'latin1');
  return b;
};

t.test('containers by their magic numbers, as the decoder knows them', async (t) => {
  const cases: Array<[Buffer, string, string]> = [
    [wav(1), 'audio/wav', 'WAV'],
    [withMagic('RIFX', 0, [8, 'WAVE']), 'audio/wav', 'WAV'],
    [withMagic('RF64', 0, [8, 'WAVE']), 'audio/wav', 'RF64 WAV'],
    [withMagic('FORM', 0, [8, 'AIFF']), 'audio/aiff', 'AIFF'],
    [withMagic('FORM', 0, [8, 'AIFC']), 'audio/aiff', 'AIFF'],
    [withMagic('.snd'), 'audio/basic', 'AU'],
    [withMagic('dns.'), 'audio/basic', 'AU'],
    [withMagic('fLaC'), 'audio/flac', 'FLAC'],
    [withMagic('OggS'), 'audio/ogg', 'Ogg'],
    [jfk, 'audio/mpeg', 'MP3'],
  ];
  for (const [data, mediaType, name] of cases) t.same(sniffAudio(data.subarray(0, SNIFF_BYTES)), { mediaType, name }, name);
});

t.test('MPEG audio without a tag: two consecutive frame headers, or one frame that is the whole upload', async (t) => {
  t.same(sniffAudio(bareMpeg.subarray(0, SNIFF_BYTES)), { mediaType: 'audio/mpeg', name: 'MP3' });
  // jfk's frames: MPEG-2 layer III, 64 kbit/s, 16 kHz, unpadded: 72 × 64000 / 16000 bytes.
  const frame = 288;
  t.same([...bareMpeg.subarray(frame, frame + 2)], [0xff, 0xf3], 'the second frame starts there');
  t.same(sniffAudio(bareMpeg.subarray(0, frame)), { mediaType: 'audio/mpeg', name: 'MP3' }, 'one whole frame as the whole upload');
  const broken = Buffer.from(bareMpeg.subarray(0, SNIFF_BYTES));
  broken.fill(0, frame, frame + 4);
  t.equal(sniffAudio(broken), undefined, 'a frame header followed by anything but another one');
});

t.test('what is not audio: text, JSON, forms, other containers, invalid frame headers', async (t) => {
  const cases: Array<[string, Buffer]> = [
    ['JSON', Buffer.from(JSON.stringify({ audio: 'x'.repeat(100) }))],
    ['text', Buffer.from('hello world\n'.repeat(20))],
    ['a form', Buffer.from('--boundary\r\nContent-Disposition: form-data; name="audio"\r\n\r\n')],
    ['empty', Buffer.alloc(0)],
    ['RIFF but not WAVE', withMagic('RIFF', 0, [8, 'AVI '])],
    ['FORM but not AIFF', withMagic('FORM', 0, [8, 'ILBM'])],
    ['WebM', Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0])],
    ['MP4', withMagic('ftyp', 4)],
    ['a short sync word', Buffer.from([0xff, 0xf0])],
    ['MPEG version "reserved"', Buffer.from([0xff, 0xeb, 0x90, 0x00, 0, 0, 0, 0])],
    ['layer "reserved"', Buffer.from([0xff, 0xf9, 0x90, 0x00, 0, 0, 0, 0])],
    ['bitrate index 15', Buffer.from([0xff, 0xfb, 0xf0, 0x00, 0, 0, 0, 0])],
    ['sample rate index 3', Buffer.from([0xff, 0xfb, 0x9c, 0x00, 0, 0, 0, 0])],
    ['free-format frame', Buffer.concat([Buffer.from([0xff, 0xfb, 0x00, 0x00]), Buffer.alloc(100)])],
  ];
  for (const [name, data] of cases) t.equal(sniffAudio(data), undefined, name);
});

t.test('frame lengths of every layer and version, as ISO 11172-3 / 13818-3 define them', async (t) => {
  // Two headers one frame apart make a stream; one byte off and it is not one.
  const stream = (header: number[], length: number) => {
    const b = Buffer.alloc(SNIFF_BYTES);
    Buffer.from(header).copy(b, 0);
    Buffer.from(header).copy(b, length);
    return b;
  };
  const cases: Array<[string, number[], number]> = [
    ['MPEG-1 layer III 128 kbit/s 44.1 kHz', [0xff, 0xfb, 0x90, 0x00], 417],
    ['MPEG-1 layer III padded', [0xff, 0xfb, 0x92, 0x00], 418],
    ['MPEG-1 layer II 384 kbit/s 32 kHz', [0xff, 0xfd, 0xe8, 0x00], 1728],
    ['MPEG-1 layer I 448 kbit/s 32 kHz', [0xff, 0xff, 0xe8, 0x00], 672],
    ['MPEG-2 layer III 64 kbit/s 22.05 kHz', [0xff, 0xf3, 0x80, 0x00], 208],
    ['MPEG-2.5 layer III 8 kbit/s 8 kHz', [0xff, 0xe3, 0x18, 0x00], 72],
    ['MPEG-2.5 layer II 160 kbit/s 8 kHz', [0xff, 0xe5, 0xe8, 0x00], 2880],
  ];
  for (const [name, header, length] of cases) {
    t.same(sniffAudio(stream(header, length)), { mediaType: 'audio/mpeg', name: 'MP3' }, name);
    t.equal(sniffAudio(stream(header, length + 1)), undefined, `${name}: not ${length + 1} bytes`);
  }
});
