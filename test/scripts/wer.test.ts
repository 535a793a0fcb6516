import t from 'tap';

import { words, wordErrorRate } from '../../scripts/lib/wer.js';

t.test('word error rate', async (t) => {
  const ref = 'And so, my fellow Americans, ask not what your country can do for you.';
  t.same(words('Ask not, what?'), ['ask', 'not', 'what']);
  t.equal(wordErrorRate(ref, ' and so my fellow americans ask not what your country can do for you '), 0, 'case and punctuation do not count');
  t.equal(wordErrorRate('a b c d', 'a x c d'), 0.25, 'one substitution');
  t.equal(wordErrorRate('a b c d', 'a c d'), 0.25, 'one deletion');
  t.equal(wordErrorRate('a b c d', 'a b c d e f'), 0.5, 'two insertions');
  t.equal(wordErrorRate('a b', ''), 1);
  t.equal(wordErrorRate('', ''), 0);
});
