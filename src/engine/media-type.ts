import { AppError, invalidArgument } from '../errors.js';
import { sniffAudio } from './audio-sniff.js';

/**
 * Turns an upload's `Content-Type` into the format spec the audio decoder takes, following
 * IBM Watson Speech to Text's "Supported audio formats": the self-describing formats
 * (WAV, FLAC, Ogg, MP3) may be named or left to detection (`application/octet-stream` or no
 * Content-Type at all); the headerless ones (`audio/l16`, `audio/mulaw`, `audio/alaw`,
 * `audio/basic`) must be named, with their parameters. What earshot cannot decode
 * (`audio/webm`, `audio/g729`, AAC/MP4, ...) is refused with ERR_AUDIO_UNSUPPORTED (415).
 */

/** Containers the decoder checks a named type against (the data must be what the header says). */
export type AudioContainer = 'wav' | 'flac' | 'ogg' | 'mp3' | 'aiff';

/** The codecs `audio/ogg;codecs=...` may name. */
export type OggCodec = 'opus' | 'vorbis';

/** Byte order of `audio/l16`; `auto` (IBM's default) detects it from the signal. */
export type L16Endianness = 'little' | 'big' | 'auto';

/** How the decoder must read an upload; `mediaType` is the normalized type, for logs. */
export type AudioFormat =
  | { kind: 'auto'; mediaType: string; container?: AudioContainer; codec?: OggCodec }
  | { kind: 'basic'; mediaType: string }
  | { kind: 'l16'; mediaType: string; rate: number; channels: number; endianness: L16Endianness }
  | { kind: 'mulaw' | 'alaw'; mediaType: string; rate: number; channels: number };

/** The media types earshot accepts, as a client would write them (used in error messages). */
export const SUPPORTED_MEDIA_TYPES: readonly string[] = [
  'audio/wav',
  'audio/flac',
  'audio/ogg;codecs=opus',
  'audio/ogg;codecs=vorbis',
  'audio/mp3',
  'audio/mpeg',
  'audio/l16;rate={rate}[;channels={n}][;endianness=big-endian|little-endian]',
  'audio/basic',
  'audio/mulaw;rate={rate}',
  'audio/alaw;rate={rate}',
  'application/octet-stream (format detected from the data)',
];

/** Sample rates accepted for headerless audio (IBM: 8 kHz narrowband up to 192 kHz). */
export const RAW_RATE_RANGE = { min: 8000, max: 192000 } as const;

/** Channels accepted for headerless audio (IBM's maximum is 16). */
export const MAX_RAW_CHANNELS = 16;

const CONTAINER_TYPES: Record<string, AudioContainer> = {
  'audio/wav': 'wav',
  'audio/wave': 'wav',
  'audio/x-wav': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/flac': 'flac',
  'audio/x-flac': 'flac',
  'audio/ogg': 'ogg',
  'application/ogg': 'ogg',
  'audio/opus': 'ogg',
  'audio/mp3': 'mp3',
  'audio/mpeg': 'mp3',
  'audio/mpeg3': 'mp3',
  'audio/x-mp3': 'mp3',
  'audio/x-mpeg-3': 'mp3',
  'audio/aiff': 'aiff',
  'audio/x-aiff': 'aiff',
};

// Types clients plausibly send that we cannot decode, with what to do instead.
const UNSUPPORTED_HINTS: Record<string, string> = {
  'audio/webm': 'WebM is not supported; audio/ogg;codecs=opus carries the same codec',
  'video/webm': 'WebM is not supported; audio/ogg;codecs=opus carries the same codec',
  'audio/g729': 'G.729 is not supported',
  'audio/mp4': 'MP4/AAC is not supported',
  'audio/x-m4a': 'MP4/AAC is not supported',
  'audio/m4a': 'MP4/AAC is not supported',
  'audio/aac': 'AAC is not supported',
  'audio/amr': 'AMR is not supported',
  'application/x-www-form-urlencoded': 'this is what curl sends when no Content-Type is given; name the audio type or use application/octet-stream',
  'multipart/form-data': 'send the audio itself as the request body, not a form',
};

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A parsed `type/subtype; name=value` header: lower-case type and parameter names. */
export interface MediaType {
  essence: string;
  parameters: Map<string, string>;
}

/**
 * Parses a Content-Type per RFC 9110 (tokens, quoted-string values, optional whitespace).
 * Parameter names are lower-cased; a parameter given twice is an error, since the two values
 * could disagree.
 * @throws AppError ERR_INVALID_ARGUMENT when the header is not a media type
 */
export function parseMediaType(header: string): MediaType {
  const text = header.trim();
  const semicolon = text.indexOf(';');
  const essence = (semicolon < 0 ? text : text.slice(0, semicolon)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  if (slash <= 0 || !TOKEN.test(essence.slice(0, slash)) || !TOKEN.test(essence.slice(slash + 1))) {
    throw invalidArgument('Content-Type', 'a media type such as audio/wav', header);
  }
  const parameters = new Map<string, string>();
  let i = semicolon < 0 ? text.length : semicolon;
  while (i < text.length) {
    // At a ';' separator: skip it and any whitespace or empty parameters.
    while (i < text.length && (text[i] === ';' || text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= text.length) break;
    const eq = text.indexOf('=', i);
    const nextSemicolon = text.indexOf(';', i);
    if (eq < 0 || (nextSemicolon >= 0 && nextSemicolon < eq)) {
      throw invalidArgument('Content-Type', 'parameters of the form name=value', header);
    }
    const name = text.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(name)) throw invalidArgument('Content-Type', 'parameters of the form name=value', header);
    i = eq + 1;
    let value = '';
    if (text[i] === '"') {
      i++;
      for (; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
      }
      if (text[i] !== '"') throw invalidArgument('Content-Type', 'a closed quoted parameter value', header);
      i++;
      while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
      if (i < text.length && text[i] !== ';') {
        throw invalidArgument('Content-Type', "';' after a quoted parameter value", header);
      }
    } else {
      const end = text.indexOf(';', i);
      value = text.slice(i, end < 0 ? text.length : end).trim();
      i = end < 0 ? text.length : end;
    }
    if (parameters.has(name)) {
      throw invalidArgument(`the ${name} parameter of Content-Type`, 'a single value', header);
    }
    parameters.set(name, value);
  }
  return { essence, parameters };
}

/**
 * Maps an upload's Content-Type to the decoder's format spec. A missing or empty header,
 * like `application/octet-stream`, means "detect the format from the data", as IBM does.
 * Parameters that do not apply to a type are ignored, as IBM does (e.g. `audio/wav;rate=16000`).
 * @throws AppError ERR_AUDIO_UNSUPPORTED for types earshot cannot decode (the message lists
 *   the supported ones); ERR_INVALID_ARGUMENT for a malformed header or bad parameters
 *   (a missing `rate` for `audio/l16`, `channels=0`, an unknown endianness, ...)
 */
export function parseAudioMediaType(contentType: string | undefined | null): AudioFormat {
  if (contentType === undefined || contentType === null || contentType.trim() === '') {
    return { kind: 'auto', mediaType: 'application/octet-stream' };
  }
  const { essence, parameters } = parseMediaType(contentType);

  if (essence === 'application/octet-stream') return { kind: 'auto', mediaType: essence };

  const container = CONTAINER_TYPES[essence];
  if (container !== undefined) {
    const format: AudioFormat = { kind: 'auto', mediaType: essence, container };
    if (container === 'ogg') {
      const codec = essence === 'audio/opus' ? 'opus' : oggCodec(parameters.get('codecs'), contentType);
      if (codec !== undefined) format.codec = codec;
    }
    return format;
  }

  switch (essence) {
    case 'audio/basic':
      return { kind: 'basic', mediaType: essence };
    case 'audio/l16':
    case 'audio/x-l16':
      return {
        kind: 'l16',
        mediaType: 'audio/l16',
        rate: rate(parameters, 'audio/l16'),
        channels: channels(parameters, 'audio/l16'),
        endianness: endianness(parameters.get('endianness')),
      };
    case 'audio/mulaw':
    case 'audio/x-mulaw':
    case 'audio/pcmu':
      return { kind: 'mulaw', mediaType: 'audio/mulaw', rate: rate(parameters, 'audio/mulaw'), channels: channels(parameters, 'audio/mulaw') };
    case 'audio/alaw':
    case 'audio/x-alaw':
    case 'audio/pcma':
      return { kind: 'alaw', mediaType: 'audio/alaw', rate: rate(parameters, 'audio/alaw'), channels: channels(parameters, 'audio/alaw') };
    default:
      throw unsupported(contentType, UNSUPPORTED_HINTS[essence]);
  }
}

/**
 * Whether a Content-Type speaks of audio at all (including none, and
 * `application/octet-stream`, which mean "detect"). One that does not (IBM's SDK sends
 * `application/json` when its caller names no type, curl `application/x-www-form-urlencoded`)
 * says nothing about the data: the upload is then accepted if its first bytes are audio
 * (`detectAudioFormat`). An audio type earshot cannot decode is not such a case: it is refused.
 * @throws AppError ERR_INVALID_ARGUMENT for a malformed header
 */
export function declaresAudio(contentType: string | undefined | null): boolean {
  if (contentType === undefined || contentType === null || contentType.trim() === '') return true;
  const { essence } = parseMediaType(contentType);
  return essence.startsWith('audio/') || essence.startsWith('video/') || essence === 'application/octet-stream' || essence in CONTAINER_TYPES;
}

/**
 * The format of an upload whose Content-Type is not an audio type (`declaresAudio` is false),
 * from its first bytes, with an IBM-style warning that names what was detected.
 * @throws AppError ERR_AUDIO_UNSUPPORTED (415) when the data is not a supported audio format either
 */
export function detectAudioFormat(contentType: string, head: Buffer): { format: AudioFormat; warning: string } {
  const sniffed = sniffAudio(head);
  const declared = JSON.stringify(contentType.trim());
  if (!sniffed) {
    const { essence } = parseMediaType(contentType);
    throw unsupported(contentType, UNSUPPORTED_HINTS[essence] ?? 'and the data does not start like a supported audio format either');
  }
  return {
    format: { kind: 'auto', mediaType: sniffed.mediaType },
    warning: `The Content-Type ${declared} is not an audio format; the data was detected as ${sniffed.name} (${sniffed.mediaType}) and processed as such.`,
  };
}

function unsupported(contentType: string, hint?: string): AppError {
  const why = hint === undefined ? '' : ` (${hint})`;
  return new AppError(
    'ERR_AUDIO_UNSUPPORTED',
    `Content-Type ${JSON.stringify(contentType.trim())} is not a supported audio format${why}. ` + `Supported: ${SUPPORTED_MEDIA_TYPES.join(', ')}`,
  );
}

function oggCodec(value: string | undefined, contentType: string): OggCodec | undefined {
  if (value === undefined || value === '') return undefined;
  const codec = value.trim().toLowerCase();
  if (codec === 'opus' || codec === 'vorbis') return codec;
  throw unsupported(contentType, `Ogg with codecs=${value} is not supported; use codecs=opus or codecs=vorbis`);
}

function rate(parameters: Map<string, string>, type: string): number {
  const value = parameters.get('rate');
  if (value === undefined) {
    throw new AppError('ERR_INVALID_ARGUMENT', `${type} requires a rate parameter with the sample rate in Hz, e.g. ${type};rate=16000`);
  }
  const n = integer(value);
  if (n === undefined || n < RAW_RATE_RANGE.min || n > RAW_RATE_RANGE.max) {
    throw invalidArgument(`the rate parameter of ${type}`, `an integer sample rate between ${RAW_RATE_RANGE.min} and ${RAW_RATE_RANGE.max}`, value);
  }
  return n;
}

function channels(parameters: Map<string, string>, type: string): number {
  const value = parameters.get('channels');
  if (value === undefined) return 1;
  const n = integer(value);
  if (n === undefined || n < 1 || n > MAX_RAW_CHANNELS) {
    throw invalidArgument(`the channels parameter of ${type}`, `an integer between 1 and ${MAX_RAW_CHANNELS}`, value);
  }
  return n;
}

function endianness(value: string | undefined): L16Endianness {
  if (value === undefined) return 'auto';
  switch (value.toLowerCase()) {
    case 'little-endian':
      return 'little';
    case 'big-endian':
      return 'big';
    default:
      throw invalidArgument('the endianness parameter of audio/l16', 'big-endian or little-endian', value);
  }
}

function integer(value: string): number | undefined {
  return /^[0-9]{1,9}$/.test(value.trim()) ? Number(value.trim()) : undefined;
}
