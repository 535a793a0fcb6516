import { englishDataset, englishRecommendedTransformers, RegExpMatcher } from 'obscenity';

import type { StoredTranscript } from './job-store.js';

/**
 * What happens to profanity in a job's results: IBM's `profanity_filter` (true: masked,
 * false: none) and Azure's `profanityFilterMode` (Masked, Removed, Tags, None).
 */
export type ProfanityMode = 'masked' | 'removed' | 'tags' | 'none';

let matcher: RegExpMatcher | undefined;

// obscenity's English list with its recommended transformers (confusable and leet
// characters, repeated letters): "fuuuck" and "ʃṳ𝒸𝗄" are found too.
function profanityMatcher(): RegExpMatcher {
  matcher ??= new RegExpMatcher({ ...englishDataset.build(), ...englishRecommendedTransformers });
  return matcher;
}

/** [start, end) of each whitespace-delimited word of `text` that holds profanity (a match inside "motherfucker" takes the word). */
function profaneWords(text: string): Array<[number, number]> {
  const matches = profanityMatcher().getAllMatches(text);
  if (matches.length === 0) return [];
  const words: Array<[number, number]> = [];
  for (const word of text.matchAll(/\S+/g)) {
    const start = word.index;
    const end = start + word[0].length;
    if (matches.some((m) => m.startIndex < end && m.endIndex >= start)) words.push([start, end]);
  }
  return words;
}

// IBM masks each letter of the word; punctuation around it stays ("fuck," → "****,").
function render(word: string, mode: Exclude<ProfanityMode, 'none'>): string {
  const [, before, core, after] = /^([^\p{L}\p{N}]*)(.*?)([^\p{L}\p{N}]*)$/su.exec(word)!;
  if (mode === 'masked') return `${before}${'*'.repeat([...core!].length)}${after}`;
  if (mode === 'tags') return `${before}<profanity>${core}</profanity>${after}`;
  return '';
}

/**
 * Pieces of one text (a segment's text, or its words) with profanity masked, tagged or
 * removed. Words are matched as the text they make up (joined by spaces), so that words
 * and transcript agree; a removed word leaves the list.
 */
function censorPieces<T extends { text: string }>(pieces: T[], mode: ProfanityMode): T[] {
  if (mode === 'none') return pieces;
  const profane = profaneWords(pieces.map((p) => p.text).join(' '));
  if (profane.length === 0) return pieces;
  const out: T[] = [];
  let offset = 0;
  for (const piece of pieces) {
    const end = offset + piece.text.length;
    let text = '';
    let at = 0;
    for (const [s, e] of profane) {
      if (e <= offset || s >= end) continue;
      const from = Math.max(s, offset) - offset;
      const to = Math.min(e, end) - offset;
      text += piece.text.slice(at, from) + render(piece.text.slice(from, to), mode);
      at = to;
    }
    text += piece.text.slice(at);
    offset = end + 1;
    if (text === piece.text) out.push(piece);
    else if (mode !== 'removed') out.push({ ...piece, text });
    else if (text.trim() !== '') out.push({ ...piece, text: text.replace(/\s{2,}/g, ' ').trim() });
  }
  return out;
}

/** `text` with profanity masked (`****`), tagged (`<profanity>…</profanity>`) or removed. */
export function censorText(text: string, mode: ProfanityMode): string {
  return censorPieces([{ text }], mode)[0]?.text ?? '';
}

type StoredSegment = StoredTranscript['segments'][number];

/**
 * One segment as the client asked for it: profanity masked, tagged or removed in its text
 * and words alike; undefined when removing it left no text (the segment leaves the
 * transcript). Segments are censored one by one, so a segment streamed while the job runs
 * is the one the finished transcript has.
 */
export function censorSegment<S extends StoredSegment>(segment: S, mode: ProfanityMode): S | undefined {
  if (mode === 'none') return segment;
  const text = censorText(segment.text, mode);
  const words = censorPieces(segment.words, mode);
  if (text === '') return undefined;
  return text === segment.text && words === segment.words ? segment : { ...segment, text, words };
}

/**
 * A transcript as the client asked for it (censorSegment on each segment). Applied once,
 * when the job completes, so that what is stored — and every callback, result file and
 * GET made from it — is what the client asked for, and unfiltered profanity is never kept
 * when it was not.
 */
export function censorTranscript(transcript: StoredTranscript, mode: ProfanityMode): StoredTranscript {
  if (mode === 'none') return transcript;
  const segments = transcript.segments.flatMap((s) => censorSegment(s, mode) ?? []);
  return { ...transcript, segments, text: segments.map((s) => s.text).join(' ') };
}
