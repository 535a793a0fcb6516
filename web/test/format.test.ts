// The page's own tests of what it computes without a browser (test/integration/page.test.ts drives the page itself).
import t from 'tap';

import { confidenceClass, downloadName, formatBytes, formatDuration, formatTime, liveProtocols, transcriptOf, uploadUrl } from '../src/lib/format.js';

t.test('formatting', async (t) => {
  t.equal(formatBytes(512), '512 B');
  t.equal(formatBytes(1_500_000), '1.5 MB');
  t.equal(formatBytes(25_000_000_000), '25 GB');
  t.equal(formatDuration(0), '0 s');
  t.equal(formatDuration(42), '42 s');
  t.equal(formatDuration(3 * 86400 + 4 * 3600 + 59), '3 d 4 h');
  t.equal(formatDuration(3600 + 5), '1 h', 'seconds below the two largest units are left out');
  t.equal(formatTime(61.5), '1:01.50');
  t.equal(downloadName('0123456789abcdef', 'srt'), 'earshot-01234567.srt');
});

t.test('transcriptOf reads IBM results: text, words with times and confidences', async (t) => {
  const body = {
    status: 'completed',
    results: [
      {
        result_index: 0,
        results: [
          {
            final: true,
            alternatives: [
              {
                transcript: 'and so my ',
                timestamps: [
                  ['and', 0, 0.3],
                  ['so', 0.3, 0.5],
                  ['my', 0.5, 0.7],
                ],
                word_confidence: [
                  ['and', 0.9],
                  ['so', 0.6],
                  ['my', 0.2],
                ],
              },
            ],
          },
          { final: true, alternatives: [{ transcript: 'fellow ', timestamps: [['fellow', 1, 1.4]] }] },
        ],
      },
    ],
  };
  const { text, words } = transcriptOf(body);
  t.equal(text, 'and so my fellow');
  t.same(words, [
    { word: 'and', start: 0, end: 0.3, confidence: 0.9 },
    { word: 'so', start: 0.3, end: 0.5, confidence: 0.6 },
    { word: 'my', start: 0.5, end: 0.7, confidence: 0.2 },
    { word: 'fellow', start: 1, end: 1.4 },
  ]);
  t.same(
    words.map((w) => confidenceClass(w.confidence)),
    ['c-high', 'c-mid', 'c-low', 'c-unknown'],
  );
  t.same(transcriptOf({ status: 'processing' }), { text: '', words: [] });
});

t.test('liveProtocols carries the key as a base64url token', async (t) => {
  t.same(liveProtocols(undefined), ['earshot.live.v1']);
  const [, token] = liveProtocols('k€y/+=');
  t.equal(Buffer.from(token!.slice(4), 'base64url').toString('utf8'), 'k€y/+=');
  t.match(token, /^key\.[A-Za-z0-9_-]+$/);
});

t.test('uploadUrl asks for timestamps and the chosen options', async (t) => {
  t.equal(uploadUrl({ language: '', wordConfidence: true }), '/v1/recognitions?timestamps=true&word_confidence=true');
  t.equal(
    uploadUrl({ language: 'de', wordConfidence: false, callbackUrl: 'http://10.0.0.2/cb', userToken: 'a b' }),
    '/v1/recognitions?timestamps=true&word_confidence=false&language=de&callback_url=http%3A%2F%2F10.0.0.2%2Fcb&user_token=a+b',
  );
});
