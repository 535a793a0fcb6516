// Whisper's non-speech markers are removed from segments: text, tokens and words.
import t from 'tap';

import { removeMarkers, removeNonSpeech } from '../../src/engine/non-speech.js';

t.test('removeMarkers: every marker whisper writes, alone or among words', async (t) => {
  const cases: Array<[string, string]> = [
    [' [BLANK_AUDIO]', ''],
    ['[MUSIC]', ''],
    ['[ Silence ]', ''],
    [' (applause)', ''],
    ['(upbeat music)', ''],
    ['*laughs*', ''],
    ['♪', ''],
    ['♪♪ ♫ ♬', ''],
    ['[[MUSIC]]', ''],
    ['((laughs))', ''],
    ['{noise}', ''],
    ['- [MUSIC] -', ''],
    [' [MUS', ''],
    [' ♪ Never gonna give you up ♪', 'Never gonna give you up'],
    [' Hello *laughs* world', 'Hello world'],
    [' Hello (laughs), world.', 'Hello, world.'],
    ['Thanks. [applause]', 'Thanks.'],
    ['Hello[MUSIC]world', 'Helloworld'],
    ['yes] no)', 'yes no'],
  ];
  for (const [text, want] of cases) t.equal(removeMarkers(text), want, JSON.stringify(text));
});

t.test('removeMarkers: speech without markers stays exactly as whisper wrote it', async (t) => {
  for (const text of [' Hello world.', ' - Yes.', ' f***ing hell', ' 5 * 3 is 15', ' ...', '', ' 2+2=4']) {
    t.equal(removeMarkers(text), text, JSON.stringify(text));
  }
});

const word = (text: string, start: number) => ({ text, start, end: start + 100, confidence: 0.5 });
const token = (text: string) => ({ id: 1, text, p: 0.5, plog: -0.7, start: -1, end: -1 });

t.test('removeNonSpeech: marker-only segments go, mixed ones keep their speech in text, tokens and words', async (t) => {
  const kept = { text: ' Hello.', tokens: [token(' Hello'), token('.')], words: [word('Hello.', 0)] };
  const segments = [
    { text: ' [BLANK_AUDIO]', tokens: [' [', 'BL', 'ANK', '_', 'AUD', 'IO', ']'].map(token), words: [word('[BLANK_AUDIO]', 0)] },
    kept,
    {
      text: ' Hello *laughs* world',
      tokens: [' Hello', ' *', 'laughs', '*', ' world'].map(token),
      words: [word('Hello', 0), word('*laughs*', 100), word('world', 200)],
    },
    {
      text: ' [ Silence ] (upbeat music) ♪',
      tokens: [' [', ' Silence', ' ]', ' (', 'up', 'beat', ' music', ')', ' ♪'].map(token),
      words: ['[', 'Silence', ']', '(upbeat', 'music)', '♪'].map((w, i) => word(w, i * 100)),
    },
    { text: ' ♪ la (la) ♪', tokens: [' ♪', ' la', ' (', 'la', ')', ' ♪'].map(token), words: ['♪', 'la', '(la)', '♪'].map((w, i) => word(w, i * 100)) },
  ];
  const out = removeNonSpeech(segments);
  t.equal(out.length, 3);
  t.equal(out[0], kept, 'a segment without markers is the same object');
  t.same(out[1], {
    text: 'Hello world',
    tokens: [token(' Hello'), token(' world')],
    words: [word('Hello', 0), word('world', 200)],
  });
  t.same(out[2], { text: 'la', tokens: [token(' la')], words: [word('la', 100)] });
});

t.test('removeNonSpeech: a bracket opened in one word closes in a later one', async (t) => {
  const [segment] = removeNonSpeech([
    {
      text: ' yes (upbeat music) no',
      tokens: [' yes', ' (', 'upbeat', ' music', ')', ' no'].map(token),
      words: ['yes', '(upbeat', 'music)', 'no'].map((w, i) => word(w, i * 100)),
    },
  ]);
  t.same(
    segment!.words.map((w) => w.text),
    ['yes', 'no'],
  );
  t.same(
    segment!.tokens.map((w) => w.text),
    [' yes', ' no'],
  );
  const [merged] = removeNonSpeech([{ text: ' ok(laughs)', tokens: [' ok(', 'laughs)'].map(token), words: [word('ok(laughs)', 0)] }]);
  t.same(
    merged!.tokens.map((w) => w.text),
    [' ok'],
    'a token keeps its speech and its leading space',
  );
});

// A seeded property test (no fast-check here): speech words and markers in any order;
// what is left is exactly the speech, in order, and the words agree with the text.
t.test('property: any mix of speech and markers leaves exactly the speech', async (t) => {
  const spoken = ['hello', 'world.', 'yes,', '42', "don't", 'f***ing', 'Ünïcode'];
  const markers = ['[BLANK_AUDIO]', '(applause)', '*laughs*', '♪', '♫♫', '[ Silence ]', '(upbeat music)', '[MUSIC]'];
  let seed = 11;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  for (let run = 0; run < 300; run++) {
    const items = Array.from({ length: 1 + (next() % 7) }, () => (next() % 2 ? spoken[next() % spoken.length]! : markers[next() % markers.length]!));
    const speechOnly = items.filter((i) => spoken.includes(i));
    const text = ` ${items.join(' ')}`;
    t.equal(removeMarkers(text).trim(), speechOnly.join(' '), text);
    const words = items.flatMap((i) => i.split(' ')).map((w, k) => word(w, k * 100));
    const [segment] = removeNonSpeech([{ text, tokens: [token(text)], words }]);
    t.same(segment?.words.map((w) => w.text) ?? [], speechOnly, `${text}: words`);
  }
});
