// How a request names its Azure version and how links are written back in that form; the
// pieces of a creation request that have a syntax of their own (durations, locales).
import t from 'tap';

import { localeLanguage, servedLocales } from '../../src/azure/locales.js';
import { parseIsoDuration } from '../../src/azure/transcription-input.js';
import { apiForm, apiLink } from '../../src/azure/versions.js';
import type { Request } from '../../src/http/server.js';

const request = (mount: string, query = ''): Request =>
  ({ mount, query: new URLSearchParams(query), headers: { host: 'pi.local:8080' }, method: 'get', path: `${mount}/x` }) as unknown as Request;

t.test('the version comes from the path, or from api-version on the bare prefix', async (t) => {
  t.same(apiForm(request('/speechtotext/v3.2')), { origin: 'http://pi.local:8080', version: 'v3.2' });
  t.same(apiForm(request('/SpeechToText/V3.0', 'api-version=2024-11-15')).version, 'v3.0', 'the path wins; any case');
  t.same(apiForm(request('/speechtotext', 'api-version=2025-10-15')).version, '2025-10-15');
  t.throws(() => apiForm(request('/speechtotext')), { status: 400, innerCode: 'MissingApiVersion', message: /api-version/ });
  t.throws(() => apiForm(request('/speechtotext', 'api-version=3.1')), { status: 400, innerCode: 'UnsupportedApiVersion', message: /'3\.1'/ });
});

t.test('links in the form the client used', async (t) => {
  const origin = 'http://pi.local:8080';
  t.equal(apiLink({ origin, version: 'v3.1' }, '/webhooks/a:ping'), `${origin}/speechtotext/v3.1/webhooks/a:ping`);
  t.equal(apiLink({ origin, version: '2024-11-15' }, '/webhooks/a:ping'), `${origin}/speechtotext/webhooks/a:ping?api-version=2024-11-15`);
  t.equal(
    apiLink({ origin, version: '2024-11-15' }, '/t/f/content', { se: '1', sig: 'a+b' }),
    `${origin}/speechtotext/t/f/content?api-version=2024-11-15&se=1&sig=a%2Bb`,
  );
  t.equal(apiLink({ origin, version: 'v3.0' }, '/t', { se: '1' }), `${origin}/speechtotext/v3.0/t?se=1`);
});

t.test('ISO 8601 durations as Azure writes timeToLive', async (t) => {
  t.equal(parseIsoDuration('P2D'), 2 * 86_400_000);
  t.equal(parseIsoDuration('PT12H'), 12 * 3_600_000);
  t.equal(parseIsoDuration('P1DT6H30M'), 30 * 3_600_000 + 30 * 60_000);
  t.equal(parseIsoDuration('P1W'), 7 * 86_400_000);
  t.equal(parseIsoDuration('PT1.5S'), 1500);
  t.equal(parseIsoDuration('PT0S'), 0);
  for (const bad of ['P', 'PT', 'P1DT', '2D', 'P-1D', 'PT1H2D', '']) t.equal(parseIsoDuration(bad), undefined, bad);
});

t.test('locales: whisper languages, and what a model serves', async (t) => {
  t.equal(localeLanguage('en-US'), 'en');
  t.equal(localeLanguage('nb-NO'), 'no');
  t.equal(localeLanguage('fil-PH'), 'tl');
  t.equal(localeLanguage('zh-Hant-TW'), 'zh');
  t.equal(localeLanguage('not a locale'), undefined);
  const english = servedLocales({ multilingual: false, languages: ['en', 'de'] });
  t.ok(english.includes('en-GB') && !english.includes('de-DE'), 'an English-only model: English locales');
  t.ok(servedLocales({ multilingual: true, languages: ['en', 'de'] }).includes('de-AT'));
});
