/** OpenAI's answers for a finished transcript, in each `response_format` and as server-sent events. */
import { deflateSync } from 'node:zlib';

import type { StoredTranscript } from '../jobs/job-store.js';
import { plainText, renderText } from '../jobs/subtitles.js';
import type { AudioRequest } from './params.js';

/** What OpenAI's verbose_json names a language: its English name in lower case ("english"), as whisper's own table does. */
const languageNames = new Intl.DisplayNames(['en'], { type: 'language' });
export function languageName(code: string): string {
  try {
    return (languageNames.of(code) ?? code).toLowerCase();
  } catch {
    return code;
  }
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(3));

/** The spoken segments (whisper's empty ones left out), as the text renderings see them. */
const spoken = (transcript: StoredTranscript) => transcript.segments.filter((s) => s.text.trim() !== '');

/**
 * verbose_json: `task`, `language`, `duration` (s), `text`, `segments` with OpenAI's
 * fields (`avg_logprob` from whisper's segment confidence, `compression_ratio` of the
 * text as whisper's Python computes it for its fallback), `words` when asked for.
 * `seek` is the segment's start in 10 ms frames, as whisper's; `tokens` are not kept.
 */
export function verboseJson(transcript: StoredTranscript, request: AudioRequest) {
  const text = plainText(transcript).trim();
  const segments = spoken(transcript).map((s, id) => ({
    id,
    seek: Math.round(s.start / 10),
    start: seconds(s.start),
    end: seconds(s.end),
    text: s.text.trim(),
    tokens: [] as number[],
    temperature: request.temperature ?? 0,
    avg_logprob: Number(Math.log(Math.max(s.confidence, 1e-10)).toFixed(6)),
    compression_ratio: compressionRatio(s.text.trim()),
    no_speech_prob: Number(s.noSpeechProb.toFixed(6)),
  }));
  const words = request.words
    ? spoken(transcript).flatMap((s) =>
        s.words.filter((w) => w.text.trim() !== '').map((w) => ({ word: w.text.trim(), start: seconds(w.start), end: seconds(w.end) })),
      )
    : undefined;
  return {
    task: request.task,
    language: languageName(request.task === 'translate' ? 'en' : (request.language ?? transcript.language)),
    duration: seconds(transcript.durationMs),
    text,
    segments,
    ...(words ? { words } : {}),
    usage: { type: 'duration', seconds: Math.ceil(transcript.durationMs / 1000) },
  };
}

/** UTF-8 length over its zlib-compressed length: whisper's repetition measure (1 for empty text). */
function compressionRatio(text: string): number {
  const bytes = Buffer.from(text);
  if (!bytes.length) return 1;
  return Number((bytes.length / deflateSync(bytes).length).toFixed(6));
}

/** The answer in the asked-for format: JSON bodies, or text (text, srt, vtt) as OpenAI sends it. */
export function transcriptReply(transcript: StoredTranscript, request: AudioRequest): { contentType: string; body: string } {
  switch (request.responseFormat) {
    case 'json':
      return {
        contentType: 'application/json',
        body: JSON.stringify({ text: plainText(transcript).trim(), usage: { type: 'duration', seconds: Math.ceil(transcript.durationMs / 1000) } }),
      };
    case 'verbose_json':
      return { contentType: 'application/json', body: JSON.stringify(verboseJson(transcript, request)) };
    case 'text':
      return renderText(transcript, 'txt');
    case 'srt':
    case 'vtt':
      return renderText(transcript, request.responseFormat);
  }
}

/**
 * The transcript as OpenAI's server-sent events: one `transcript.text.delta` per segment
 * (its text with the space before it, so the deltas concatenate to the text), then
 * `transcript.text.done` with the whole text.
 */
export function transcriptEvents(transcript: StoredTranscript): string {
  const texts = spoken(transcript).map((s) => s.text.trim());
  const events = [
    ...texts.map((text, i) => ({ type: 'transcript.text.delta', delta: i ? ` ${text}` : text })),
    { type: 'transcript.text.done', text: texts.join(' '), usage: { type: 'duration', seconds: Math.ceil(transcript.durationMs / 1000) } },
  ];
  return events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join('');
}
