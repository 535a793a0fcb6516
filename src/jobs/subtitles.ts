/**
 * A stored transcript as subtitles (SubRip, WebVTT) or plain text, for every dialect that
 * offers them (OpenAI's `response_format`, IBM's and Azure's result downloads).
 *
 * Cues follow what subtitle guidelines (Netflix's, the BBC's) and players expect: at most
 * two lines of at most 42 characters, on screen for 1 to 7 seconds, never overlapping,
 * long segments split at word boundaries using whisper's word timings (or timings spread
 * by length when a transcript has no words), lines broken where they are most even.
 * The npm libraries for SRT and WebVTT parse and convert files; none splits a timed
 * transcript into cues, which is the part that needs care, so this is written here.
 */
import type { StoredTranscript } from './job-store.js';

/** The subtitle and text formats results can be downloaded in. */
export type TextFormat = 'srt' | 'vtt' | 'txt';

export const textFormats: readonly TextFormat[] = ['srt', 'vtt', 'txt'];

export const isTextFormat = (value: unknown): value is TextFormat => (textFormats as readonly unknown[]).includes(value);

/** The media type each is served with. */
export const textFormatTypes: Record<TextFormat, string> = {
  srt: 'application/x-subrip; charset=utf-8',
  vtt: 'text/vtt; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

/** How cues are cut; `defaultCueRules` unless a test says otherwise. Times in ms. */
export interface CueRules {
  maxLineChars: number;
  maxLines: number;
  /** A cue longer than this is split (at a word boundary): readers lose the thread of longer ones. */
  maxCueMs: number;
  /** A shorter cue is held longer, while the next one has not started: a flash cannot be read. */
  minCueMs: number;
  /** A pause between words longer than this ends the cue: text should not stay up over silence. */
  maxPauseMs: number;
}

export const defaultCueRules: CueRules = { maxLineChars: 42, maxLines: 2, maxCueMs: 7000, minCueMs: 1000, maxPauseMs: 1500 };

/** One subtitle: its time on screen and its lines. */
export interface Cue {
  start: number;
  end: number;
  lines: string[];
}

interface TimedWord {
  text: string;
  start: number;
  end: number;
}

/** A segment's words with sane timings; spread over the segment by length when whisper gave none. */
function timedWords(segment: StoredTranscript['segments'][number]): TimedWord[] {
  const given = segment.words.filter((w) => w.text.trim() !== '');
  if (given.length) {
    let floor = segment.start;
    return given.map((w) => {
      // whisper's word timings may step backwards a little: keep them in order.
      const start = Math.max(w.start, floor);
      const end = Math.max(w.end, start);
      floor = start;
      return { text: w.text.trim(), start, end };
    });
  }
  const texts = segment.text.trim().split(/\s+/).filter(Boolean);
  const chars = texts.reduce((sum, t) => sum + t.length, 0);
  const span = Math.max(0, segment.end - segment.start);
  let at = segment.start;
  return texts.map((text) => {
    const start = at;
    at += chars ? (span * text.length) / chars : 0;
    return { text, start, end: at };
  });
}

/**
 * Breaks a cue's text into at most `maxLines` lines of at most `maxLineChars`, at the
 * space that makes the lines most even (after punctuation when that costs little);
 * undefined when the text does not fit. A single word longer than a line is a line of its own.
 */
export function breakLines(text: string, rules: Pick<CueRules, 'maxLineChars' | 'maxLines'> = defaultCueRules): string[] | undefined {
  if (text.length <= rules.maxLineChars) return [text];
  const words = text.split(' ');
  if (words.length === 1) return rules.maxLines >= 1 ? [text] : undefined;
  if (rules.maxLines < 2) return undefined;
  let best: { lines: string[]; cost: number } | undefined;
  for (let i = 1; i < words.length; i++) {
    const first = words.slice(0, i).join(' ');
    const rest = words.slice(i).join(' ');
    const restLines = breakLines(rest, { maxLineChars: rules.maxLineChars, maxLines: rules.maxLines - 1 });
    if (first.length > rules.maxLineChars && i > 1) break;
    if (!restLines) continue;
    const lines = [first, ...restLines];
    const lengths = lines.map((l) => l.length);
    // Even lines read best; a break after a clause's punctuation is worth some unevenness.
    const cost = Math.max(...lengths) - Math.min(...lengths) - (/[,.;:!?]$/.test(first) ? 16 : 0);
    if (!best || cost < best.cost) best = { lines, cost };
  }
  return best?.lines;
}

/** The transcript as subtitle cues (see the module's rules). */
export function subtitleCues(transcript: StoredTranscript, rules: CueRules = defaultCueRules): Cue[] {
  const cues: Cue[] = [];
  for (const segment of transcript.segments) {
    let words: TimedWord[] = [];
    const close = () => {
      if (!words.length) return;
      const text = words.map((w) => w.text).join(' ');
      cues.push({ start: words[0]!.start, end: words.at(-1)!.end, lines: breakLines(text, rules) ?? [text] });
      words = [];
    };
    for (const word of timedWords(segment)) {
      if (words.length) {
        const text = [...words, word].map((w) => w.text).join(' ');
        const tooLong = word.end - words[0]!.start > rules.maxCueMs;
        const paused = word.start - words.at(-1)!.end > rules.maxPauseMs;
        if (tooLong || paused || !breakLines(text, rules)) close();
      }
      words.push(word);
    }
    close();
  }
  // Never empty, never overlapping, held for the minimum where the next cue leaves room.
  for (let i = 0; i < cues.length; i++) {
    const cue = cues[i]!;
    const next = cues[i + 1];
    cue.end = Math.max(cue.end, cue.start + 1);
    if (next && next.start < cue.end) next.start = cue.end;
    const limit = next ? next.start : Number.POSITIVE_INFINITY;
    if (cue.end - cue.start < rules.minCueMs) cue.end = Math.max(cue.end, Math.min(cue.start + rules.minCueMs, limit));
  }
  return cues;
}

/** `HH:MM:SS<sep>mmm`: SubRip separates milliseconds with a comma, WebVTT with a dot. */
function timestamp(ms: number, separator: ',' | '.'): string {
  const total = Math.max(0, Math.round(ms));
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor(total / 60_000) % 60;
  const seconds = Math.floor(total / 1000) % 60;
  return `${pad(hours)}:${pad(minutes)}:${pad(seconds)}${separator}${pad(total % 1000, 3)}`;
}

/** SubRip: numbered cues from 1, `-->` between times, a blank line after each. */
export function toSrt(cues: readonly Cue[]): string {
  return cues
    .map((cue, i) => {
      // "-->" in a line would read as a timing line to some parsers.
      const lines = cue.lines.map((line) => line.replaceAll('-->', '->'));
      return `${i + 1}\n${timestamp(cue.start, ',')} --> ${timestamp(cue.end, ',')}\n${lines.join('\n')}\n`;
    })
    .join('\n');
}

/** WebVTT: the `WEBVTT` header, then cues; `&`, `<` and `>` escaped as the format requires. */
export function toWebVtt(cues: readonly Cue[]): string {
  const escapeText = (line: string) => line.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const body = cues.map((cue) => `${timestamp(cue.start, '.')} --> ${timestamp(cue.end, '.')}\n${cue.lines.map(escapeText).join('\n')}\n`);
  return ['WEBVTT\n', ...body].join('\n');
}

/** The spoken text: the segments' texts, one space between them, and a final newline. */
export function plainText(transcript: StoredTranscript): string {
  const text = transcript.segments
    .map((s) => s.text.trim())
    .filter(Boolean)
    .join(' ');
  return `${text}\n`;
}

/** The transcript in one of the text formats, with its media type. */
export function renderText(transcript: StoredTranscript, format: TextFormat): { contentType: string; body: string } {
  const body = format === 'txt' ? plainText(transcript) : format === 'srt' ? toSrt(subtitleCues(transcript)) : toWebVtt(subtitleCues(transcript));
  return { contentType: textFormatTypes[format], body };
}
