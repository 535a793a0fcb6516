// Subtitles of stored transcripts: line breaking, cue timing, SubRip and WebVTT syntax.
import t from 'tap';

import type { StoredTranscript } from '../../src/jobs/job-store.js';
import { breakLines, plainText, renderText, subtitleCues, toSrt, toWebVtt } from '../../src/jobs/subtitles.js';

type Seg = StoredTranscript['segments'][number];

/** A segment whose words take `msPerWord` each, back to back from `start`. */
function segment(text: string, start: number, msPerWord = 400): Seg {
  const words = text.split(' ').map((w, i) => ({ text: ` ${w}`, start: start + i * msPerWord, end: start + (i + 1) * msPerWord, confidence: 0.9 }));
  return { start, end: start + words.length * msPerWord, text: ` ${text}`, confidence: 0.9, noSpeechProb: 0, speakerTurnNext: false, words };
}

function transcript(...segments: Seg[]): StoredTranscript {
  return {
    text: segments.map((s) => s.text).join(''),
    segments,
    language: 'en',
    durationMs: segments.at(-1)?.end ?? 0,
    windows: 1,
    timings: { melMs: 0, sampleMs: 0, encodeMs: 0, decodeMs: 0, batchdMs: 0, promptMs: 0, totalMs: 0, encodeRuns: 0, decodeRuns: 0, fallbacks: 0 },
  };
}

t.test('lines: one when it fits, else two even ones of at most 42 characters', async (t) => {
  t.same(breakLines('And so my fellow Americans'), ['And so my fellow Americans']);
  const two = breakLines('and so my fellow Americans: ask not what your country can do for you, ask what you can do for your country');
  t.equal(two, undefined, 'too long for two lines');
  const lines = breakLines('ask not what your country can do for you ask what you')!;
  t.equal(lines.length, 2);
  for (const line of lines) t.ok(line.length <= 42, line);
  t.ok(Math.abs(lines[0]!.length - lines[1]!.length) <= 8, `even: ${JSON.stringify(lines)}`);
  t.same(
    breakLines('My fellow citizens, we meet today to honour our heroes'),
    ['My fellow citizens,', 'we meet today to honour our heroes'],
    'after the comma',
  );
  t.same(breakLines('x'.repeat(50)), ['x'.repeat(50)], 'a word longer than a line is a line of its own');
});

t.test('cues: long segments split at word boundaries, within two lines and 7 s', async (t) => {
  const words = Array.from({ length: 60 }, (_, i) => `word${i}`);
  const cues = subtitleCues(transcript(segment(words.join(' '), 0, 300)));
  t.ok(cues.length > 3, `${cues.length} cues`);
  t.same(
    cues.flatMap((c) => c.lines.join(' ').split(' ')),
    words,
    'every word once, in order',
  );
  for (const cue of cues) {
    t.ok(cue.lines.length <= 2 && cue.lines.every((l) => l.length <= 42), JSON.stringify(cue.lines));
    t.ok(cue.end - cue.start <= 7000, `${cue.end - cue.start} ms`);
  }
  // Cue times come from the words: each starts where its first word does.
  t.equal(cues[1]!.start, words.indexOf(cues[1]!.lines[0]!.split(' ')[0]!) * 300);
});

t.test('cues: a long pause ends a cue; short cues are held for 1 s without overlapping the next', async (t) => {
  const cues = subtitleCues(transcript(segment('Yes.', 0, 200), segment('No.', 500, 200), segment('Later then.', 5000, 400)));
  t.same(
    cues.map((c) => [c.start, c.end, c.lines]),
    [
      [0, 500, ['Yes.']],
      [500, 1500, ['No.']],
      [5000, 6000, ['Later then.']],
    ],
  );
  const paused = subtitleCues(transcript({ ...segment('one two', 0, 300), words: [...segment('one', 0).words, ...segment('two', 4000).words] }));
  t.equal(paused.length, 2, 'a 3.6 s pause inside a segment splits it');
});

t.test('cues: a segment without word timings is spread over its time by length', async (t) => {
  const seg = { ...segment('aa bbbb', 1000, 500), words: [] };
  t.same(subtitleCues(transcript(seg)), [{ start: 1000, end: 2000, lines: ['aa bbbb'] }]);
  t.same(subtitleCues(transcript({ ...seg, text: ' ' })), [], 'an empty segment makes no cue');
});

t.test('SubRip: numbered from 1, comma milliseconds, blank line between cues', async (t) => {
  const srt = toSrt([
    { start: 0, end: 1500, lines: ['Hello'] },
    { start: 3_723_004, end: 3_725_000, lines: ['two', 'lines --> here'] },
  ]);
  t.equal(srt, '1\n00:00:00,000 --> 00:00:01,500\nHello\n\n2\n01:02:03,004 --> 01:02:05,000\ntwo\nlines -> here\n');
});

t.test('WebVTT: the header, dot milliseconds, escaped text', async (t) => {
  const vtt = toWebVtt([{ start: 61_000, end: 62_250, lines: ['a < b & c'] }]);
  t.equal(vtt, 'WEBVTT\n\n00:01:01.000 --> 00:01:02.250\na &lt; b &amp; c\n');
  t.equal(toWebVtt([]), 'WEBVTT\n', 'no cues: a valid empty file');
});

t.test('plain text and media types', async (t) => {
  const tr = transcript(segment('Hello there.', 0), segment('General Kenobi.', 1000));
  t.equal(plainText(tr), 'Hello there. General Kenobi.\n');
  t.equal(renderText(tr, 'srt').contentType, 'application/x-subrip; charset=utf-8');
  t.match(renderText(tr, 'vtt'), { contentType: 'text/vtt; charset=utf-8', body: /^WEBVTT\n\n00:00:00\.000 --> / });
  t.equal(renderText(tr, 'txt').contentType, 'text/plain; charset=utf-8');
});
