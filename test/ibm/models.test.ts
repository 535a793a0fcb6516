// IBM model names: what GET /v1/models lists is exactly what `model=` accepts.
import t from 'tap';

import { AppError } from '../../src/errors.js';
import { availableIbmModels, requireIbmModel, type ServedLanguages } from '../../src/ibm/models.js';

const englishOnly: ServedLanguages = { multilingual: false, languages: ['en'] };
const multilingual: ServedLanguages = { multilingual: true, languages: ['en', 'de', 'fr', 'es', 'pt', 'it', 'ja', 'nl', 'ar', 'ko', 'zh', 'cs', 'hi', 'sv'] };
const withoutJapanese: ServedLanguages = { multilingual: true, languages: multilingual.languages.filter((l) => l !== 'ja') };

function accepted(name: string, served: ServedLanguages): boolean {
  try {
    requireIbmModel(name, served);
    return true;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return false;
  }
}

t.test('every listed name is accepted and every accepted name is listed', async (t) => {
  const everyIbmName = availableIbmModels(multilingual, '').map((m) => m.name);
  t.ok(everyIbmName.includes('ja-JP_Telephony') && everyIbmName.includes('pt-PT') && everyIbmName.includes('en-WW_Medical_Telephony'));
  const candidates = [
    ...everyIbmName,
    'zz-ZZ',
    'zz-ZZ_BroadbandModel',
    'en-US_Foo',
    'EN-US',
    'en',
    'en-US_broadbandmodel',
    '',
    'en-US_BroadbandModel ',
    'ar-MS',
  ];
  for (const served of [englishOnly, multilingual, withoutJapanese]) {
    const listed = new Set(availableIbmModels(served, '').map((m) => m.name));
    for (const name of candidates) t.equal(accepted(name, served), listed.has(name), `${name} (${served.languages.length} languages)`);
  }
});

t.test('refusals: IBM 404 for names IBM lacks, a 400 naming the reason for models this device cannot serve', async (t) => {
  t.throws(() => requireIbmModel('zz-ZZ', multilingual), { code: 'ERR_NOT_FOUND', message: 'Model zz-ZZ not found' });
  t.throws(() => requireIbmModel('de-DE_Multimedia', englishOnly), { code: 'ERR_INVALID_ARGUMENT', message: /English-only/ });
  t.throws(() => requireIbmModel('ja-JP', withoutJapanese), { code: 'ERR_INVALID_ARGUMENT', message: /does not know that language/ });
  t.equal(requireIbmModel('ar-MS_Telephony', multilingual), 'ar');
  t.equal(requireIbmModel('pt-PT', multilingual), 'pt');
});

t.test('model entries: locale, minimum rate, URL under the base', async (t) => {
  const models = availableIbmModels(englishOnly, 'http://pi:8080/instances/x');
  t.match(
    models.find((m) => m.name === 'en-US'),
    { language: 'en-US', rate: 8000, url: 'http://pi:8080/instances/x/v1/models/en-US' },
  );
  t.match(
    models.find((m) => m.name === 'en-GB_Multimedia'),
    { language: 'en-GB', rate: 16000 },
  );
  t.match(
    models.find((m) => m.name === 'en-US_NarrowbandModel'),
    { rate: 8000 },
  );
});
