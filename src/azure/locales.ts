import type { ModelAbilities } from '../dialect.js';

/**
 * Azure's locales of the languages whisper knows (Azure's batch transcription list), by
 * whisper language code. A locale's language is what whisper is told; the region only
 * names the variety the client expects.
 */
const localesByLanguage: Record<string, readonly string[]> = {
  af: ['af-ZA'],
  am: ['am-ET'],
  ar: [
    'ar-AE',
    'ar-BH',
    'ar-DZ',
    'ar-EG',
    'ar-IL',
    'ar-IQ',
    'ar-JO',
    'ar-KW',
    'ar-LB',
    'ar-LY',
    'ar-MA',
    'ar-OM',
    'ar-PS',
    'ar-QA',
    'ar-SA',
    'ar-SY',
    'ar-TN',
    'ar-YE',
  ],
  az: ['az-AZ'],
  bg: ['bg-BG'],
  bn: ['bn-IN'],
  bs: ['bs-BA'],
  ca: ['ca-ES'],
  cs: ['cs-CZ'],
  cy: ['cy-GB'],
  da: ['da-DK'],
  de: ['de-AT', 'de-CH', 'de-DE'],
  el: ['el-GR'],
  en: ['en-AU', 'en-CA', 'en-GB', 'en-GH', 'en-HK', 'en-IE', 'en-IN', 'en-KE', 'en-NG', 'en-NZ', 'en-PH', 'en-SG', 'en-TZ', 'en-US', 'en-ZA'],
  es: [
    'es-AR',
    'es-BO',
    'es-CL',
    'es-CO',
    'es-CR',
    'es-CU',
    'es-DO',
    'es-EC',
    'es-ES',
    'es-GQ',
    'es-GT',
    'es-HN',
    'es-MX',
    'es-NI',
    'es-PA',
    'es-PE',
    'es-PR',
    'es-PY',
    'es-SV',
    'es-US',
    'es-UY',
    'es-VE',
  ],
  et: ['et-EE'],
  eu: ['eu-ES'],
  fa: ['fa-IR'],
  fi: ['fi-FI'],
  fr: ['fr-BE', 'fr-CA', 'fr-CH', 'fr-FR'],
  ga: ['ga-IE'],
  gl: ['gl-ES'],
  gu: ['gu-IN'],
  he: ['he-IL'],
  hi: ['hi-IN'],
  hr: ['hr-HR'],
  hu: ['hu-HU'],
  hy: ['hy-AM'],
  id: ['id-ID'],
  is: ['is-IS'],
  it: ['it-CH', 'it-IT'],
  ja: ['ja-JP'],
  jw: ['jv-ID'],
  ka: ['ka-GE'],
  kk: ['kk-KZ'],
  km: ['km-KH'],
  kn: ['kn-IN'],
  ko: ['ko-KR'],
  lo: ['lo-LA'],
  lt: ['lt-LT'],
  lv: ['lv-LV'],
  mk: ['mk-MK'],
  ml: ['ml-IN'],
  mn: ['mn-MN'],
  mr: ['mr-IN'],
  ms: ['ms-MY'],
  mt: ['mt-MT'],
  my: ['my-MM'],
  ne: ['ne-NP'],
  nl: ['nl-BE', 'nl-NL'],
  no: ['nb-NO'],
  pa: ['pa-IN'],
  pl: ['pl-PL'],
  ps: ['ps-AF'],
  pt: ['pt-BR', 'pt-PT'],
  ro: ['ro-RO'],
  ru: ['ru-RU'],
  si: ['si-LK'],
  sk: ['sk-SK'],
  sl: ['sl-SI'],
  so: ['so-SO'],
  sq: ['sq-AL'],
  sr: ['sr-RS'],
  sv: ['sv-SE'],
  sw: ['sw-KE', 'sw-TZ'],
  ta: ['ta-IN'],
  te: ['te-IN'],
  th: ['th-TH'],
  tl: ['fil-PH'],
  tr: ['tr-TR'],
  uk: ['uk-UA'],
  ur: ['ur-IN'],
  uz: ['uz-UZ'],
  vi: ['vi-VN'],
  yue: ['yue-CN'],
  zh: ['zh-CN', 'zh-HK', 'zh-TW'],
  zu: ['zu-ZA'],
};

/** Azure's language subtags whose whisper code differs. */
const whisperCodes: Record<string, string> = { nb: 'no', fil: 'tl', iw: 'he', jv: 'jw' };

/** The whisper language of an Azure locale (`en-US` → `en`, `nb-NO` → `no`), or undefined when it is not a locale. */
export function localeLanguage(locale: string): string | undefined {
  const m = /^([a-z]{2,3})(?:-[A-Za-z0-9]{2,8})*$/i.exec(locale);
  if (!m) return undefined;
  const language = m[1]!.toLowerCase();
  return whisperCodes[language] ?? language;
}

/** Whether the loaded model transcribes `language` (an English-only model: only `en`). */
export const servesLanguage = (model: ModelAbilities, language: string): boolean =>
  model.languages.includes(language) && (model.multilingual || language === 'en');

/** The Azure locales the loaded model serves, sorted. */
export function servedLocales(model: ModelAbilities): string[] {
  return Object.entries(localesByLanguage)
    .filter(([language]) => servesLanguage(model, language))
    .flatMap(([, locales]) => locales)
    .sort();
}
