import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";

import { ApiError } from "../../src/errors.js";
import {
  isLanguageCode,
  languageId,
  languageName,
  parseLanguage,
  whisperLanguages,
} from "../../src/transcription/languages.js";

/** Reads `g_lang` from the whisper.cpp source that smart-whisper compiles. */
function readWhisperCppLanguages(): Array<{ code: string; id: number; name: string }> {
  const sourceUrl = new URL(
    "../../node_modules/smart-whisper/whisper.cpp/src/whisper.cpp",
    import.meta.url,
  );
  const source = readFileSync(sourceUrl, "utf8");
  const table = /g_lang = \{([\s\S]*?)\n\};/.exec(source)?.[1] ?? "";
  const entries = table.matchAll(/\{\s*"([a-z]+)",\s*\{\s*(\d+),\s*"([^"]+)"/g);
  return Array.from(entries, ([, code = "", id = "", name = ""]) => ({
    code,
    id: Number(id),
    name,
  }));
}

function expectInvalidLanguage(value: string): void {
  let caught: unknown;
  try {
    parseLanguage(value);
  } catch (error) {
    caught = error;
  }
  expect(caught, value).toBeInstanceOf(ApiError);
  const apiError = caught as ApiError;
  expect(apiError.status).toBe(400);
  expect(apiError.type).toBe("invalid_request_error");
  expect(apiError.param).toBe("language");
}

describe("whisperLanguages", () => {
  it("matches whisper.cpp's g_lang table", () => {
    const expected = readWhisperCppLanguages();

    expect(expected).toHaveLength(100);
    expect(whisperLanguages).toEqual(expected);
  });

  it("has unique codes and names", () => {
    const codes = new Set(whisperLanguages.map((language) => language.code));
    const names = new Set(whisperLanguages.map((language) => language.name));

    expect(codes.size).toBe(whisperLanguages.length);
    expect(names.size).toBe(whisperLanguages.length);
  });

  it("has no name that equals a code", () => {
    for (const language of whisperLanguages) {
      expect(isLanguageCode(language.name), language.name).toBe(false);
    }
  });
});

describe("isLanguageCode", () => {
  it("accepts Whisper's codes", () => {
    expect(isLanguageCode("en")).toBe(true);
    expect(isLanguageCode("haw")).toBe(true);
    expect(isLanguageCode("yue")).toBe(true);
  });

  it("rejects other strings", () => {
    expect(isLanguageCode("EN")).toBe(false);
    expect(isLanguageCode("english")).toBe(false);
    expect(isLanguageCode("xx")).toBe(false);
    expect(isLanguageCode("")).toBe(false);
  });
});

describe("languageName", () => {
  it("maps codes to lower-case English names", () => {
    expect(languageName("en")).toBe("english");
    expect(languageName("ht")).toBe("haitian creole");
    expect(languageName("yue")).toBe("cantonese");
  });

  it("returns undefined for an unknown code", () => {
    expect(languageName("xx")).toBeUndefined();
  });
});

describe("languageId", () => {
  it("returns Whisper's language ids", () => {
    expect(languageId("en")).toBe(0);
    expect(languageId("haw")).toBe(93);
    expect(languageId("yue")).toBe(99);
  });

  it("returns undefined for an unknown code", () => {
    expect(languageId("xx")).toBeUndefined();
  });
});

describe("parseLanguage", () => {
  it("accepts ISO-639-1 codes in any case", () => {
    expect(parseLanguage("en")).toBe("en");
    expect(parseLanguage("EN")).toBe("en");
    expect(parseLanguage("De")).toBe("de");
    expect(parseLanguage(" fr ")).toBe("fr");
  });

  it("accepts Whisper codes outside ISO-639-1", () => {
    expect(parseLanguage("haw")).toBe("haw");
    expect(parseLanguage("YUE")).toBe("yue");
    expect(parseLanguage("jw")).toBe("jw");
  });

  it("maps ISO-639-1 jv to Whisper's jw", () => {
    expect(parseLanguage("jv")).toBe("jw");
  });

  it("accepts English names in any case", () => {
    expect(parseLanguage("English")).toBe("en");
    expect(parseLanguage("CANTONESE")).toBe("yue");
    expect(parseLanguage("Haitian Creole")).toBe("ht");
  });

  it("accepts every code and name in the table", () => {
    for (const language of whisperLanguages) {
      expect(parseLanguage(language.code), language.code).toBe(language.code);
      expect(parseLanguage(language.name), language.name).toBe(language.code);
    }
  });

  it("treats missing, blank and auto as detection", () => {
    expect(parseLanguage(undefined)).toBeUndefined();
    expect(parseLanguage("")).toBeUndefined();
    expect(parseLanguage("   ")).toBeUndefined();
    expect(parseLanguage("auto")).toBeUndefined();
    expect(parseLanguage("Auto")).toBeUndefined();
  });

  it("rejects unknown values with a 400 on language", () => {
    for (const value of ["xx", "eng", "en-US", "en_us", "klingon", "e", "haitian"]) {
      expectInvalidLanguage(value);
    }
  });

  it("quotes and shortens the value in the message", () => {
    expect(() => parseLanguage("xx")).toThrow('Invalid language "xx".');
    const longValue = "z".repeat(500);
    expect(() => parseLanguage(longValue)).toThrow(`"${"z".repeat(40)}..."`);
  });
});
