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

const sse = (event: unknown) => `data: ${JSON.stringify(event)}\n\n`;

/**
 * The transcript as OpenAI's server-sent events, as the transcription produces it: one
 * `transcript.text.delta` per spoken segment as soon as it comes out of `segments` (its
 * text with the space before it, so the deltas concatenate to the text), then, once the
 * job finished (`finished`), a delta for each segment it has past those (a reader that came
 * after the job finished gets them all here) and `transcript.text.done` with the whole text.
 * `finished` failing before the first event is the request's error; after it, an event
 * with OpenAI's `error` ends the stream (the SDKs throw it).
 */
export async function* transcriptEvents(
  segments: AsyncIterable<StoredTranscript['segments'][number]>,
  finished: () => Promise<StoredTranscript>,
  renderError: (err: unknown) => unknown,
): AsyncGenerator<string, void, undefined> {
  const texts: string[] = [];
  let streamed = 0;
  const delta = (text: string) => {
    const event = { type: 'transcript.text.delta', delta: texts.length ? ` ${text}` : text };
    texts.push(text);
    return sse(event);
  };
  let transcript: StoredTranscript;
  try {
    for await (const segment of segments) {
      streamed++;
      const text = segment.text.trim();
      if (text) yield delta(text);
    }
    transcript = await finished();
  } catch (err) {
    if (texts.length === 0) throw err;
    yield sse(renderError(err));
    return;
  }
  for (const segment of transcript.segments.slice(streamed)) {
    const text = segment.text.trim();
    if (text) yield delta(text);
  }
  yield sse({ type: 'transcript.text.done', text: texts.join(' '), usage: { type: 'duration', seconds: Math.ceil(transcript.durationMs / 1000) } });
}
