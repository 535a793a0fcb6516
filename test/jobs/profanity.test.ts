// Profanity in finished transcripts: obscenity's English list, IBM's masking (and Azure's modes).
import t from 'tap';

import type { StoredTranscript } from '../../src/jobs/job-store.js';
import { censorText, censorTranscript } from '../../src/jobs/profanity.js';

t.test('masked: each letter of a profane word becomes *, punctuation around it stays', async (t) => {
  const cases: Array<[string, string]> = [
    ['What the fuck is this?', 'What the **** is this?'],
    ['Fuck, yes.', '****, yes.'],
    ['fucking hell', '******* hell'],
    ['a motherfucker.', 'a ************.'],
    ['"shit"', '"****"'],
    ['fuuuuuck off', '******** off'],
    ['ʃṳ𝒸𝗄 that', '**** that'],
    ['Shit happens, shit.', '**** happens, ****.'],
  ];
  for (const [text, want] of cases) t.equal(censorText(text, 'masked'), want, text);
});

t.test('words without profanity stay exactly as they are', async (t) => {
  for (const text of ['Scunthorpe is a town', 'an assessment of the class', 'I passed the bass', 'analysis', '', ' Hello,  world. ']) {
    t.equal(censorText(text, 'masked'), text, text);
  }
});

t.test("Azure's other modes: removed, tags, none", async (t) => {
  t.equal(censorText('What the fuck is this?', 'removed'), 'What the is this?');
  t.equal(censorText('fuck', 'removed'), '');
  t.equal(censorText('What the fuck, is this?', 'tags'), 'What the <profanity>fuck</profanity>, is this?');
  t.equal(censorText('What the fuck is this?', 'none'), 'What the fuck is this?');
});

// A seeded property test (no fast-check here): random sentences of clean and profane
// words; masking keeps the length in code points, every space, every clean word, and
// leaves no profane word readable.
t.test('property: masking hides every profane word and nothing else', async (t) => {
  const clean = ['the', 'cat', 'sat', 'on', 'a', 'mat,', 'Hello', 'world.', 'pass', 'class', 'Scunthorpe', 'grape', '42'];
  const profane = ['fuck', 'shit', 'Fucking', 'bitch,', 'motherfucker', 'asshole.'];
  let seed = 7;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  for (let run = 0; run < 300; run++) {
    const words = Array.from({ length: 1 + (next() % 8) }, () => (next() % 4 === 0 ? profane[next() % profane.length]! : clean[next() % clean.length]!));
    const text = words.join(' ');
    const masked = censorText(text, 'masked');
    t.equal([...masked].length, [...text].length, text);
    const out = masked.split(' ');
    t.equal(out.length, words.length);
    words.forEach((w, i) => {
      if (clean.includes(w)) t.equal(out[i], w, `${text}: clean "${w}"`);
      else t.match(out[i], /^\*+[,.]?$/, `${text}: "${w}" masked`);
    });
  }
});

const word = (text: string, start: number) => ({ text, start, end: start + 100, confidence: 0.9 });

t.test('censorTranscript: text, timestamps and word confidences agree', async (t) => {
  const transcript: StoredTranscript = {
    text: 'What the fuck is this? Clean.',
    language: 'en',
    durationMs: 3000,
    windows: 1,
    timings: { melMs: 0, sampleMs: 0, encodeMs: 0, decodeMs: 0, batchdMs: 0, promptMs: 0, totalMs: 0, encodeRuns: 1, decodeRuns: 1, fallbacks: 0 },
    segments: [
      {
        start: 0,
        end: 1500,
        text: 'What the fuck is this?',
        confidence: 0.9,
        noSpeechProb: 0,
        speakerTurnNext: false,
        words: ['What', 'the', 'fuck', 'is', 'this?'].map((w, i) => word(w, i * 100)),
      },
      { start: 1500, end: 3000, text: 'Clean.', confidence: 0.8, noSpeechProb: 0, speakerTurnNext: false, words: [word('Clean.', 1500)] },
      { start: 3000, end: 3100, text: 'Shit!', confidence: 0.8, noSpeechProb: 0, speakerTurnNext: false, words: [word('Shit!', 3000)] },
    ],
  };
  const masked = censorTranscript(transcript, 'masked');
  t.equal(masked.text, 'What the **** is this? Clean. ****!');
  t.same(
    masked.segments[0]!.words.map((w) => [w.text, w.start, w.confidence]),
    [
      ['What', 0, 0.9],
      ['the', 100, 0.9],
      ['****', 200, 0.9],
      ['is', 300, 0.9],
      ['this?', 400, 0.9],
    ],
  );
  t.equal(masked.segments[1], transcript.segments[1], 'a clean segment is kept as it is');
  t.equal(transcript.segments[0]!.text, 'What the fuck is this?', 'the input is not changed');

  const removed = censorTranscript(transcript, 'removed');
  t.equal(removed.text, 'What the is this? Clean.', 'a segment of profanity only disappears');
  t.same(
    removed.segments[0]!.words.map((w) => w.text),
    ['What', 'the', 'is', 'this?'],
  );
  t.equal(censorTranscript(transcript, 'none'), transcript);
});
