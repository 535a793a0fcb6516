/**
 * Whisper writes what it hears besides speech as markers: "[BLANK_AUDIO]", "[MUSIC]",
 * "[ Silence ]", "(applause)", "(upbeat music)", "*laughs*", "♪". IBM and Azure transcribe
 * speech only (silence is an empty result), so markers leave transcripts here. whisper.cpp's
 * non-speech suppression (`suppress_nst`, on in the addon) keeps a marker from starting
 * with a bracket token, but not every spelling: musical symbols that the vocabulary splits
 * into bytes, brackets merged into longer tokens. This removes what got through.
 */

// A marker runs from its opener to the matching closer, or to the end of the segment (a
// window may cut it). Asterisks pair up from the start of a word: "f***ing" and "5 * 3"
// are not markers. Stray closers and musical symbols go too.
const marker = /\[[^\]]*(?:\]|$)|\([^)]*(?:\)|$)|\{[^}]*(?:\}|$)|(?<=^|\s)\*[^*\s][^*]*\*|[\])}\u2669-\u266f]/gu;
const speech = /[\p{L}\p{N}]/u;

/** Which UTF-16 code units of `text` belong to a marker. */
function markerMask(text: string): Uint8Array {
  const mask = new Uint8Array(text.length);
  for (const m of text.matchAll(marker)) mask.fill(1, m.index, m.index + m[0].length);
  return mask;
}

/** What a segment needs to be filtered: its text, and tokens and words with a text each. */
interface Filterable {
  text: string;
  tokens: Array<{ text: string }>;
  words: Array<{ text: string }>;
}

// Pieces (tokens, words) are masked as the text they make up, so that a marker split over
// several is found whole. Pieces that lost characters keep the rest unless nothing of
// speech is left; pieces that lost none stay as they are (a lone "-" word is whisper's,
// not a marker). Words come without the space between them: `separator` puts it back.
function filterPieces<T extends { text: string }>(pieces: T[], separator: '' | ' '): T[] {
  const mask = markerMask(pieces.map((p) => p.text).join(separator));
  const out: T[] = [];
  let offset = 0;
  for (const piece of pieces) {
    let kept = '';
    for (let i = 0; i < piece.text.length; i++) if (!mask[offset + i]) kept += piece.text[i];
    offset += piece.text.length + separator.length;
    if (kept === piece.text) out.push(piece);
    else if (speech.test(kept)) out.push({ ...piece, text: separator ? kept.trim() : kept });
  }
  return out;
}

/** The text without markers, its spacing repaired; '' when no speech is left. */
export function removeMarkers(text: string): string {
  const mask = markerMask(text);
  if (!mask.includes(1)) return text;
  let stripped = '';
  for (let i = 0; i < text.length; i++) if (!mask[i]) stripped += text[i];
  if (!speech.test(stripped)) return '';
  return stripped
    .replace(/\s+/g, ' ')
    .replace(/ ([,.!?;:])/g, '$1')
    .trim();
}

/**
 * Segments without whisper's non-speech markers: removed from the text, the tokens and the
 * words (with their timings and confidences); a segment left without speech is dropped.
 */
export function removeNonSpeech<S extends Filterable>(segments: S[]): S[] {
  const out: S[] = [];
  for (const segment of segments) {
    const text = removeMarkers(segment.text);
    if (text === segment.text) {
      out.push(segment);
      continue;
    }
    if (text === '') continue;
    out.push({ ...segment, text, tokens: filterPieces(segment.tokens, ''), words: filterPieces(segment.words, ' ') });
  }
  return out;
}
