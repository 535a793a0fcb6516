// IBM's recognition parameters: what is honoured, what is warned about, and when not.
import t from 'tap';

import { ibmParameters, parseRecognitionQuery } from '../../src/ibm/params.js';

const english = { multilingual: false, languages: ['en'] };
const parse = (query: string) => parseRecognitionQuery(new URLSearchParams(query), english);
const ignored = (name: string) => `The parameter ${name} is not supported by this service and was ignored.`;

t.test('profanity_filter: masked unless false (IBM default true)', async (t) => {
  t.equal(parse('').output.profanity, 'masked');
  t.equal(parse('profanity_filter=true').output.profanity, 'masked');
  t.equal(parse('profanity_filter=').output.profanity, 'masked');
  t.equal(parse('profanity_filter=false').output.profanity, 'none');
  t.same(parse('profanity_filter=false').warnings, []);
  t.throws(() => parse('profanity_filter=yes'), { code: 'ERR_INVALID_ARGUMENT', message: /profanity_filter is not a boolean/ });
});

t.test('every parameter not honoured warns when its value asks for something, IBM-style', async (t) => {
  const warned = ibmParameters.filter((p) => p.handling === 'warned');
  t.ok(warned.length >= 25, `${warned.length} warned parameters`);
  for (const p of warned) {
    t.same(parse(`${p.name}=1.5`).warnings, [ignored(p.name)], p.name);
    for (const quiet of p.quietFor ?? []) t.same(parse(`${p.name}=${quiet}`).warnings, [], `${p.name}=${quiet} asks for nothing`);
    t.same(parse(`${p.name}=`).warnings, [], `${p.name} without a value`);
  }
  t.same(parse('speech_detector_sensitivity=0.50&background_audio_suppression=0.0').warnings, [], 'numbers compare as numbers');
  t.same(parse('speaker_labels=true&keywords=a,b&keywords_threshold=0.5&smart_formatting=true').warnings, [
    ignored('speaker_labels'),
    ignored('keywords'),
    ignored('keywords_threshold'),
    ignored('smart_formatting'),
  ]);
  t.same(parse('speaker_labels=true&speaker_labels=true').warnings, [ignored('speaker_labels')], 'once per parameter');
});

t.test('honoured and unknown parameters', async (t) => {
  const honoured = ibmParameters.filter((p) => p.handling === 'honoured').map((p) => p.name);
  t.same(honoured, [
    'model',
    'language',
    'callback_url',
    'events',
    'user_token',
    'results_ttl',
    'timestamps',
    'word_confidence',
    'max_alternatives',
    'profanity_filter',
  ]);
  t.same(parse('timestamps=true&word_confidence=false&results_ttl=5').warnings, []);
  t.same(parse('bogus=1&other=2&bogus=3').warnings, ['Unknown arguments: bogus, other.']);
  t.equal(new Set(ibmParameters.map((p) => p.name)).size, ibmParameters.length, 'each parameter once');
});
