// Content-Type → decoder format, per IBM Watson STT's supported audio formats.
import t from 'tap';

import type { AppError } from '../../src/errors.js';
import { declaresAudio, detectAudioFormat, parseAudioMediaType, parseMediaType, SUPPORTED_MEDIA_TYPES } from '../../src/engine/media-type.js';
import { wav } from '../helpers/pcm.js';

t.test('no Content-Type, an empty one and application/octet-stream mean "detect from the data"', async (t) => {
  for (const header of [undefined, null, '', '   ', 'application/octet-stream', 'Application/Octet-Stream; foo=bar']) {
    t.same(parseAudioMediaType(header), { kind: 'auto', mediaType: 'application/octet-stream' }, String(header));
  }
});

t.test('self-describing types name the container the data must be', async (t) => {
  const cases: Array<[string, object]> = [
    ['audio/wav', { container: 'wav', mediaType: 'audio/wav' }],
    ['audio/x-wav', { container: 'wav' }],
    ['audio/wave', { container: 'wav' }],
    ['audio/vnd.wave', { container: 'wav' }],
    ['AUDIO/WAV; codec=pcm; bit=16; rate=16000', { container: 'wav', mediaType: 'audio/wav' }],
    ['audio/flac', { container: 'flac' }],
    ['audio/x-flac', { container: 'flac' }],
    ['audio/mp3', { container: 'mp3' }],
    ['audio/mpeg', { container: 'mp3', mediaType: 'audio/mpeg' }],
    ['audio/ogg', { container: 'ogg' }],
    ['audio/aiff', { container: 'aiff' }],
  ];
  for (const [header, expected] of cases) {
    const format = parseAudioMediaType(header);
    t.match(format, { kind: 'auto', ...expected }, header);
    t.notOk('codec' in format, `${header} names no codec`);
  }
});

t.test('audio/ogg takes codecs=opus or codecs=vorbis, in any case or quoted', async (t) => {
  t.same(parseAudioMediaType('audio/ogg;codecs=opus'), { kind: 'auto', mediaType: 'audio/ogg', container: 'ogg', codec: 'opus' });
  t.match(parseAudioMediaType('audio/ogg; codecs="Vorbis"'), { container: 'ogg', codec: 'vorbis' });
  t.match(parseAudioMediaType('audio/opus'), { container: 'ogg', codec: 'opus' });
  t.match(parseAudioMediaType('audio/ogg;codecs='), { container: 'ogg' });
  t.throws(() => parseAudioMediaType('audio/ogg;codecs=speex'), { code: 'ERR_AUDIO_UNSUPPORTED', message: /codecs=speex/ });
});

t.test('audio/l16 requires rate and takes channels and endianness (auto-detected by default, as IBM does)', async (t) => {
  t.same(parseAudioMediaType('audio/l16;rate=16000'), {
    kind: 'l16',
    mediaType: 'audio/l16',
    rate: 16000,
    channels: 1,
    endianness: 'auto',
  });
  t.match(parseAudioMediaType('audio/L16; rate=8000; channels=2; endianness=big-endian'), {
    rate: 8000,
    channels: 2,
    endianness: 'big',
  });
  t.match(parseAudioMediaType('audio/l16;rate=44100;endianness=little-endian'), { endianness: 'little' });
  t.match(parseAudioMediaType('audio/l16;rate="22050"'), { rate: 22050 });
});

t.test('audio/l16 parameter errors are ERR_INVALID_ARGUMENT with a clear message', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['audio/l16', /audio\/l16 requires a rate parameter.*audio\/l16;rate=16000/],
    ['audio/l16;channels=2', /requires a rate parameter/],
    ['audio/l16;rate=abc', /Expected an integer sample rate between 8000 and 192000 for the rate parameter of audio\/l16 but received "abc"/],
    ['audio/l16;rate=4000', /between 8000 and 192000.*"4000"/],
    ['audio/l16;rate=16000.5', /"16000\.5"/],
    ['audio/l16;rate=999999', /"999999"/],
    ['audio/l16;rate=16000;channels=0', /Expected an integer between 1 and 16 for the channels parameter of audio\/l16 but received "0"/],
    ['audio/l16;rate=16000;channels=17', /channels parameter.*"17"/],
    ['audio/l16;rate=16000;channels=two', /channels parameter.*"two"/],
    ['audio/l16;rate=16000;endianness=middle', /Expected big-endian or little-endian for the endianness parameter of audio\/l16/],
    ['audio/l16;rate=16000;rate=8000', /Expected a single value for the rate parameter/],
  ];
  for (const [header, message] of bad) {
    const error = t.throws(() => parseAudioMediaType(header), header) as AppError;
    t.equal(error.code, 'ERR_INVALID_ARGUMENT', header);
    t.equal(error.status, 400, header);
    t.match(error.message, message, header);
  }
});

t.test('audio/basic, audio/mulaw and audio/alaw', async (t) => {
  t.same(parseAudioMediaType('audio/basic'), { kind: 'basic', mediaType: 'audio/basic' });
  t.same(parseAudioMediaType('audio/mulaw;rate=8000'), { kind: 'mulaw', mediaType: 'audio/mulaw', rate: 8000, channels: 1 });
  t.same(parseAudioMediaType('audio/alaw; rate=16000'), { kind: 'alaw', mediaType: 'audio/alaw', rate: 16000, channels: 1 });
  t.throws(() => parseAudioMediaType('audio/mulaw'), { code: 'ERR_INVALID_ARGUMENT', message: /audio\/mulaw requires a rate/ });
  t.throws(() => parseAudioMediaType('audio/alaw'), { code: 'ERR_INVALID_ARGUMENT', message: /audio\/alaw requires a rate/ });
});

t.test('types earshot cannot decode are ERR_AUDIO_UNSUPPORTED (415) naming the supported ones', async (t) => {
  for (const header of ['audio/webm', 'audio/webm;codecs=opus', 'audio/g729', 'audio/mp4', 'audio/aac', 'video/mp4', 'text/plain', 'image/png']) {
    const error = t.throws(() => parseAudioMediaType(header), header) as AppError;
    t.equal(error.code, 'ERR_AUDIO_UNSUPPORTED', header);
    t.equal(error.status, 415, header);
    t.match(error.message, `Content-Type "${header}" is not a supported audio format`, header);
    t.match(error.message, /Supported: audio\/wav, audio\/flac, audio\/ogg;codecs=opus.*audio\/l16;rate=\{rate\}.*application\/octet-stream/);
  }
  t.throws(() => parseAudioMediaType('audio/webm'), { message: /audio\/ogg;codecs=opus carries the same codec/ });
  t.throws(() => parseAudioMediaType('application/x-www-form-urlencoded'), { message: /curl sends/ });
  t.ok(SUPPORTED_MEDIA_TYPES.includes('audio/basic'));
});

t.test('malformed headers are ERR_INVALID_ARGUMENT', async (t) => {
  for (const header of ['audio', '/wav', 'audio/', 'audio wav', 'audio/wav;rate', 'audio/wav;=1', 'audio/l16;rate="16000']) {
    t.throws(() => parseAudioMediaType(header), { code: 'ERR_INVALID_ARGUMENT', message: /Content-Type/ }, header);
  }
});

t.test('parseMediaType handles whitespace, quoting and empty parameters', async (t) => {
  const parsed = parseMediaType(' Audio/L16 ;RATE = 16000;; channels="2" ; note="a\\"b;c" ;');
  t.equal(parsed.essence, 'audio/l16');
  t.same(
    [...parsed.parameters],
    [
      ['rate', '16000'],
      ['channels', '2'],
      ['note', 'a"b;c'],
    ],
  );
});

t.test('declaresAudio: audio, video, octet-stream and none speak of the data; other types do not', async (t) => {
  for (const header of [undefined, null, '', 'audio/wav', 'audio/webm', 'AUDIO/L16;rate=8000', 'application/ogg', 'application/octet-stream', 'video/mp4']) {
    t.equal(declaresAudio(header), true, String(header));
  }
  for (const header of [
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
  ]) {
    t.equal(declaresAudio(header), false, header);
  }
  t.throws(() => declaresAudio('json'), { code: 'ERR_INVALID_ARGUMENT' }, 'a malformed header is still an error');
});

t.test('detectAudioFormat: the format from the first bytes, with a warning; 415 when they are not audio', async (t) => {
  t.same(detectAudioFormat('application/json', wav(1)), {
    format: { kind: 'auto', mediaType: 'audio/wav' },
    warning: 'The Content-Type "application/json" is not an audio format; the data was detected as WAV (audio/wav) and processed as such.',
  });
  t.match(detectAudioFormat(' text/plain ', Buffer.from('fLaC\0\0\0\x22')), { format: { mediaType: 'audio/flac' }, warning: /"text\/plain" .* FLAC/ });
  t.throws(() => detectAudioFormat('application/json', Buffer.from('{"audio": "no"}')), {
    code: 'ERR_AUDIO_UNSUPPORTED',
    message:
      /^Content-Type "application\/json" is not a supported audio format \(and the data does not start like a supported audio format either\)\. Supported: /,
  });
  t.throws(() => detectAudioFormat('multipart/form-data; boundary=x', Buffer.from('--x\r\n')), { code: 'ERR_AUDIO_UNSUPPORTED', message: /not a form/ });
});
