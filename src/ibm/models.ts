import { AppError } from '../errors.js';

/**
 * IBM's model names, mapped onto whisper. A whisper model knows every language (or only
 * English, for .en models) at every sample rate, so IBM's model choice reduces to a
 * language: `en-US_BroadbandModel` → `en`. Next-generation names (`_Multimedia`,
 * `_Telephony`) and large-speech-model names (`en-US`) are accepted too.
 */
const ibmModels = [
  'ar-MS_BroadbandModel',
  'ar-MS_Telephony',
  'cs-CZ_Telephony',
  'de-DE_BroadbandModel',
  'de-DE_Multimedia',
  'de-DE_NarrowbandModel',
  'de-DE_Telephony',
  'en-AU_BroadbandModel',
  'en-AU_Multimedia',
  'en-AU_NarrowbandModel',
  'en-AU_Telephony',
  'en-GB_BroadbandModel',
  'en-GB_Multimedia',
  'en-GB_NarrowbandModel',
  'en-GB_Telephony',
  'en-IN_Telephony',
  'en-US_BroadbandModel',
  'en-US_Multimedia',
  'en-US_NarrowbandModel',
  'en-US_ShortForm_NarrowbandModel',
  'en-US_Telephony',
  'en-WW_Medical_Telephony',
  'es-AR_BroadbandModel',
  'es-AR_NarrowbandModel',
  'es-CL_BroadbandModel',
  'es-CL_NarrowbandModel',
  'es-CO_BroadbandModel',
  'es-CO_NarrowbandModel',
  'es-ES_BroadbandModel',
  'es-ES_Multimedia',
  'es-ES_NarrowbandModel',
  'es-ES_Telephony',
  'es-LA_Telephony',
  'es-MX_BroadbandModel',
  'es-MX_NarrowbandModel',
  'es-PE_BroadbandModel',
  'es-PE_NarrowbandModel',
  'fr-CA_BroadbandModel',
  'fr-CA_Multimedia',
  'fr-CA_NarrowbandModel',
  'fr-CA_Telephony',
  'fr-FR_BroadbandModel',
  'fr-FR_Multimedia',
  'fr-FR_NarrowbandModel',
  'fr-FR_Telephony',
  'hi-IN_Telephony',
  'it-IT_BroadbandModel',
  'it-IT_Multimedia',
  'it-IT_NarrowbandModel',
  'it-IT_Telephony',
  'ja-JP_BroadbandModel',
  'ja-JP_Multimedia',
  'ja-JP_NarrowbandModel',
  'ja-JP_Telephony',
  'ko-KR_BroadbandModel',
  'ko-KR_Multimedia',
  'ko-KR_NarrowbandModel',
  'ko-KR_Telephony',
  'nl-BE_Telephony',
  'nl-NL_BroadbandModel',
  'nl-NL_Multimedia',
  'nl-NL_NarrowbandModel',
  'nl-NL_Telephony',
  'pt-BR_BroadbandModel',
  'pt-BR_Multimedia',
  'pt-BR_NarrowbandModel',
  'pt-BR_Telephony',
  'sv-SE_Telephony',
  'zh-CN_BroadbandModel',
  'zh-CN_NarrowbandModel',
  'zh-CN_Telephony',
];

export const defaultIbmModel = 'en-US_BroadbandModel';

const localePattern = /^([a-z]{2})-[A-Z]{2}$/;

/** The whisper language of an IBM model name or locale, or undefined when it is not one. */
export function ibmModelLanguage(model: string): string | undefined {
  const locale = model.split('_')[0]!;
  const m = localePattern.exec(locale);
  if (!m) return undefined;
  if (model.includes('_') && !ibmModels.includes(model)) return undefined;
  // IBM's "ar-MS" (Modern Standard Arabic) is whisper's "ar"; the rest share ISO 639-1 codes.
  return m[1];
}

export interface IbmModelInfo {
  name: string;
  language: string;
  rate: number;
  url: string;
  supported_features: { custom_language_model: boolean; custom_acoustic_model: boolean; speaker_labels: boolean; low_latency: boolean };
  description: string;
}

/** The IBM models this device can serve with its whisper model. */
export function availableIbmModels(multilingual: boolean, baseUrl: string, languages: readonly string[]): IbmModelInfo[] {
  return ibmModels
    .filter((name) => {
      const language = ibmModelLanguage(name)!;
      return multilingual ? languages.includes(language) : language === 'en';
    })
    .map((name) => ({
      name,
      language: name.split('_')[0]!,
      rate: /Narrowband|Telephony/.test(name) ? 8000 : 16000,
      url: `${baseUrl}/v1/models/${name}`,
      supported_features: { custom_language_model: false, custom_acoustic_model: false, speaker_labels: false, low_latency: false },
      description: `${name.split('_')[0]} served on this device by whisper.cpp`,
    }));
}

/** Throws IBM's 404 for a model name it would not know. */
export function requireIbmModel(model: string): string {
  const language = ibmModelLanguage(model);
  if (!language) throw new AppError('ERR_NOT_FOUND', `Model ${model} not found`);
  return language;
}
