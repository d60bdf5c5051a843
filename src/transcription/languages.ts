// The languages Whisper recognises, and the parsing of the `language` request field.

import { ApiError } from "../errors.js";

/**
 * whisper.cpp's `g_lang` table (the copy bundled with smart-whisper 0.8.1) as
 * `[code, lower-case English name]` pairs. The index is Whisper's language id.
 * Most codes are ISO-639-1. The exceptions are "haw" and "yue", which have no ISO-639-1
 * code, and "jw", Whisper's code for Javanese (ISO-639-1 "jv").
 */
const languageTable = [
  ["en", "english"], ["zh", "chinese"], ["de", "german"], ["es", "spanish"],
  ["ru", "russian"], ["ko", "korean"], ["fr", "french"], ["ja", "japanese"],
  ["pt", "portuguese"], ["tr", "turkish"], ["pl", "polish"], ["ca", "catalan"],
  ["nl", "dutch"], ["ar", "arabic"], ["sv", "swedish"], ["it", "italian"],
  ["id", "indonesian"], ["hi", "hindi"], ["fi", "finnish"], ["vi", "vietnamese"],
  ["he", "hebrew"], ["uk", "ukrainian"], ["el", "greek"], ["ms", "malay"],
  ["cs", "czech"], ["ro", "romanian"], ["da", "danish"], ["hu", "hungarian"],
  ["ta", "tamil"], ["no", "norwegian"], ["th", "thai"], ["ur", "urdu"],
  ["hr", "croatian"], ["bg", "bulgarian"], ["lt", "lithuanian"], ["la", "latin"],
  ["mi", "maori"], ["ml", "malayalam"], ["cy", "welsh"], ["sk", "slovak"],
  ["te", "telugu"], ["fa", "persian"], ["lv", "latvian"], ["bn", "bengali"],
  ["sr", "serbian"], ["az", "azerbaijani"], ["sl", "slovenian"], ["kn", "kannada"],
  ["et", "estonian"], ["mk", "macedonian"], ["br", "breton"], ["eu", "basque"],
  ["is", "icelandic"], ["hy", "armenian"], ["ne", "nepali"], ["mn", "mongolian"],
  ["bs", "bosnian"], ["kk", "kazakh"], ["sq", "albanian"], ["sw", "swahili"],
  ["gl", "galician"], ["mr", "marathi"], ["pa", "punjabi"], ["si", "sinhala"],
  ["km", "khmer"], ["sn", "shona"], ["yo", "yoruba"], ["so", "somali"],
  ["af", "afrikaans"], ["oc", "occitan"], ["ka", "georgian"], ["be", "belarusian"],
  ["tg", "tajik"], ["sd", "sindhi"], ["gu", "gujarati"], ["am", "amharic"],
  ["yi", "yiddish"], ["lo", "lao"], ["uz", "uzbek"], ["fo", "faroese"],
  ["ht", "haitian creole"], ["ps", "pashto"], ["tk", "turkmen"], ["nn", "nynorsk"],
  ["mt", "maltese"], ["sa", "sanskrit"], ["lb", "luxembourgish"], ["my", "myanmar"],
  ["bo", "tibetan"], ["tl", "tagalog"], ["mg", "malagasy"], ["as", "assamese"],
  ["tt", "tatar"], ["haw", "hawaiian"], ["ln", "lingala"], ["ha", "hausa"],
  ["ba", "bashkir"], ["jw", "javanese"], ["su", "sundanese"],
  // NOTE: Cantonese (id 99) has a token only in models with 100 language tokens (the
  // large-v3 family). whisper.cpp does not check the id, and in older multilingual models
  // id 99 selects the translate token, so the engine must reject "yue" for those models.
  ["yue", "cantonese"],
] as const;

export interface WhisperLanguage {
  /** Whisper's language code, such as `en` or `yue`. */
  code: string;
  /** Whisper's language id, the offset of the language token after the start token. */
  id: number;
  /** Lower-case English name, as `verbose_json` reports the language. */
  name: string;
}

export const whisperLanguages: readonly WhisperLanguage[] = languageTable.map(
  ([code, name], id) => ({ code, id, name }),
);

const languagesByCode = new Map(whisperLanguages.map((language) => [language.code, language]));
const languagesByName = new Map(whisperLanguages.map((language) => [language.name, language]));

/** ISO-639-1 codes that Whisper spells differently, mapped to Whisper's code. */
const codeAliases = new Map([["jv", "jw"]]);

/** Returns whether `code` is one of Whisper's language codes, in its lower-case form. */
export function isLanguageCode(code: string): boolean {
  return languagesByCode.has(code);
}

/** Returns the lower-case English name for a Whisper language code ("en" -> "english"). */
export function languageName(code: string): string | undefined {
  return languagesByCode.get(code)?.name;
}

/** Returns Whisper's language id for a code, such as 0 for "en". */
export function languageId(code: string): number | undefined {
  return languagesByCode.get(code)?.id;
}

/**
 * Parses the `language` request field into Whisper's language code.
 *
 * Accepts, case-insensitively, an ISO-639-1 code ("en", "EN"), Whisper's own codes that
 * are not ISO-639-1 ("haw", "yue", "jw") and the English names that `verbose_json`
 * reports ("English", "haitian creole"). Names are accepted because whisper.cpp and the
 * openai-whisper CLI accept them, no name equals a code, and a client can then send back
 * the language it received. Returns undefined, meaning "detect the language", for a
 * missing or blank value and for "auto", the value whisper.cpp uses for detection.
 * Throws an `invalid_request` ApiError for any other value.
 */
export function parseLanguage(value: string | undefined): string | undefined {
  const normalized = value?.trim().toLowerCase() ?? "";
  if (normalized === "" || normalized === "auto") {
    return undefined;
  }

  const code = codeAliases.get(normalized) ?? normalized;
  const language = languagesByCode.get(code) ?? languagesByName.get(normalized);
  if (language === undefined) {
    throw new ApiError(
      "invalid_request",
      `Invalid language ${quoteForMessage(value ?? "")}. Send an ISO-639-1 code such as ` +
        '"en", or omit language to detect it.',
      { param: "language" },
    );
  }
  return language.code;
}

/** Quotes a client's value for an error message, cut to 40 characters. */
function quoteForMessage(value: string): string {
  const maxLength = 40;
  const shortened = value.length > maxLength ? `${value.slice(0, maxLength)}...` : value;
  return JSON.stringify(shortened);
}
