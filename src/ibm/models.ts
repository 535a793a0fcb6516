import { AppError } from '../errors.js';

/**
 * IBM's model names, mapped onto whisper. A whisper model knows every language (or only
 * English, for .en models) at every sample rate, so IBM's model choice reduces to a
 * language: `en-US_BroadbandModel` → `en`. Previous-generation (`_BroadbandModel`,
 * `_NarrowbandModel`), next-generation (`_Multimedia`, `_Telephony`) and large speech
 * model names (`largeSpeechModels`) are all served.
 */
const generationModels = [
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

/** IBM's large speech models, named by their locale (IBM Cloud docs, "Large speech languages and models", 2026). */
const largeSpeechModels = [
  'de-DE',
  'en-AU',
  'en-GB',
  'en-IN',
  'en-US',
  'es-AR',
  'es-CL',
  'es-CO',
  'es-ES',
  'es-MX',
  'es-PE',
  'fr-CA',
  'fr-FR',
  'it-IT',
  'ja-JP',
  'nl-NL',
  'pt-BR',
  'pt-PT',
];

export const defaultIbmModel = 'en-US_BroadbandModel';

export interface IbmModelInfo {
  name: string;
  language: string;
  rate: number;
  url: string;
  supported_features: { custom_language_model: boolean; custom_acoustic_model: boolean; speaker_labels: boolean; low_latency: boolean };
  description: string;
}

/** What the loaded whisper model can transcribe. */
export interface ServedLanguages {
  multilingual: boolean;
  /** whisper's language codes */
  languages: readonly string[];
}

/**
 * The whisper language of an IBM model name: the language code of its locale (IBM's
 * "ar-MS", Modern Standard Arabic, is whisper's "ar"; the rest share ISO 639-1 codes).
 * Undefined for a name IBM does not have.
 */
function whisperLanguage(name: string): string | undefined {
  if (!generationModels.includes(name) && !largeSpeechModels.includes(name)) return undefined;
  return name.slice(0, 2);
}

const serves = (served: ServedLanguages, language: string) => (served.multilingual ? served.languages.includes(language) : language === 'en');

/** The IBM models this device serves with its whisper model: what GET /v1/models lists and `model=` accepts. */
export function availableIbmModels(served: ServedLanguages, baseUrl: string): IbmModelInfo[] {
  return [...generationModels, ...largeSpeechModels]
    .filter((name) => serves(served, whisperLanguage(name)!))
    .map((name) => {
      const locale = name.split('_')[0]!;
      return {
        name,
        language: locale,
        // The minimum sampling rate, as IBM states it: 8 kHz for telephone models and
        // large speech models (which serve both), 16 kHz for the rest.
        rate: /Narrowband|Telephony/.test(name) || name === locale ? 8000 : 16000,
        url: `${baseUrl}/v1/models/${name}`,
        supported_features: { custom_language_model: false, custom_acoustic_model: false, speaker_labels: false, low_latency: false },
        description: `${locale} served on this device by whisper.cpp`,
      };
    });
}

/**
 * The whisper language of a `model=` name this device serves. IBM's 404 for a name IBM
 * does not have; a 400 that says why for an IBM model this device cannot serve (a
 * German model on an English-only whisper model), which GET /v1/models does not list.
 */
export function requireIbmModel(name: string, served: ServedLanguages): string {
  const language = whisperLanguage(name);
  if (!language) throw new AppError('ERR_NOT_FOUND', `Model ${name} not found`);
  if (!serves(served, language)) {
    throw new AppError(
      'ERR_INVALID_ARGUMENT',
      served.multilingual
        ? `Model ${name} (language ${language}) is not available: the whisper model on this device does not know that language`
        : `Model ${name} (language ${language}) is not available: this device runs an English-only whisper model`,
    );
  }
  return language;
}
