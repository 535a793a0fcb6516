/**
 * Recognizes the audio formats earshot decodes from the first bytes of an upload, for
 * uploads whose Content-Type is not an audio type at all (IBM's SDK sends
 * `application/json` when no content type is given). This only decides whether the data
 * is audio; the decoder (native/decoder/sniff.cc) stays the authority on the file as a
 * whole and fails the job with the reason when the rest does not hold up.
 */

/** How many leading bytes `sniffAudio` looks at: enough for two MPEG frame headers. */
export const SNIFF_BYTES = 4096;

/** A recognized format: the media type a client should have sent, and a name for messages. */
export interface SniffedAudio {
  mediaType: string;
  name: string;
}

const WAV = { mediaType: 'audio/wav', name: 'WAV' };
const SIGNATURES: Array<{ at: number; magic: string; also?: { at: number; magic: readonly string[] }; audio: SniffedAudio }> = [
  { at: 0, magic: 'RIFF', also: { at: 8, magic: ['WAVE'] }, audio: WAV },
  { at: 0, magic: 'RIFX', also: { at: 8, magic: ['WAVE'] }, audio: WAV },
  { at: 0, magic: 'RF64', also: { at: 8, magic: ['WAVE'] }, audio: { mediaType: 'audio/wav', name: 'RF64 WAV' } },
  { at: 0, magic: 'FORM', also: { at: 8, magic: ['AIFF', 'AIFC'] }, audio: { mediaType: 'audio/aiff', name: 'AIFF' } },
  { at: 0, magic: '.snd', audio: { mediaType: 'audio/basic', name: 'AU' } },
  { at: 0, magic: 'dns.', audio: { mediaType: 'audio/basic', name: 'AU' } },
  { at: 0, magic: 'fLaC', audio: { mediaType: 'audio/flac', name: 'FLAC' } },
  { at: 0, magic: 'OggS', audio: { mediaType: 'audio/ogg', name: 'Ogg' } },
  // An ID3v2 tag can be large (cover art): what follows it is left to the decoder.
  { at: 0, magic: 'ID3', audio: { mediaType: 'audio/mpeg', name: 'MP3' } },
];
const MPEG = { mediaType: 'audio/mpeg', name: 'MP3' };

/** The format `head` (the first up to SNIFF_BYTES bytes of an upload) starts with; undefined when none. */
export function sniffAudio(head: Buffer): SniffedAudio | undefined {
  const is = (at: number, magic: string) => head.length >= at + magic.length && head.toString('latin1', at, at + magic.length) === magic;
  for (const { at, magic, also, audio } of SIGNATURES) {
    if (is(at, magic) && (!also || also.magic.some((m) => is(also.at, m)))) return audio;
  }
  return isMpegStream(head) ? MPEG : undefined;
}

/**
 * MPEG audio has no magic number, only an 11-bit frame sync: two consecutive valid frame
 * headers (or one that fills the whole upload) make random binary data unlikely to pass.
 */
function isMpegStream(head: Buffer): boolean {
  const first = mpegFrameLength(head, 0);
  if (first === undefined || first === 0) return false;
  if (first >= head.length) return head.length < SNIFF_BYTES;
  return mpegFrameLength(head, first) !== undefined;
}

// Bitrates in kbit/s by [MPEG-1 | MPEG-2/2.5][layer - 1][index] (ISO 11172-3, 13818-3).
const BITRATES = [
  [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  ],
  [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  ],
] as const;
const RATES = [44100, 48000, 32000] as const;

/** The length of the MPEG audio frame whose header is at `at` (0: free format); undefined when there is none. */
function mpegFrameLength(data: Buffer, at: number): number | undefined {
  if (data.length < at + 4) return undefined;
  const h = data.readUInt32BE(at);
  if ((h & 0xffe00000) >>> 0 !== 0xffe00000) return undefined;
  const version = (h >>> 19) & 3;
  const layerBits = (h >>> 17) & 3;
  const bitrate = (h >>> 12) & 15;
  const rateIndex = (h >>> 10) & 3;
  if (version === 1 || layerBits === 0 || bitrate === 15 || rateIndex === 3) return undefined;
  const layer = 4 - layerBits;
  const rate = RATES[rateIndex]! / (version === 3 ? 1 : version === 2 ? 2 : 4);
  const kbps = BITRATES[version === 3 ? 0 : 1][layer - 1]![bitrate]!;
  const padding = (h >>> 9) & 1;
  if (kbps === 0) return 0;
  if (layer === 1) return Math.floor((12 * kbps * 1000) / rate + padding) * 4;
  const samples = layer === 3 && version !== 3 ? 576 : 1152;
  return Math.floor(((samples / 8) * kbps * 1000) / rate) + padding;
}
