import OpenAI, { toFile } from "openai";
import { describe, expect, it } from "vitest";

import { formatTimestamp, renderTranscript } from "../../src/transcription/formats.js";
import type {
  ResponseFormat,
  Segment,
  Transcript,
} from "../../src/transcription/types.js";

const segmentFields = [
  "id",
  "seek",
  "start",
  "end",
  "text",
  "tokens",
  "temperature",
  "avg_logprob",
  "compression_ratio",
  "no_speech_prob",
];

function makeSegment(id: number, start: number, end: number, text: string): Segment {
  return {
    id,
    seek: 0,
    start,
    end,
    text,
    tokens: [50364 + id, 440, 7534],
    temperature: 0.2,
    avg_logprob: -0.25,
    compression_ratio: 1.2,
    no_speech_prob: 0.01,
  };
}

function makeTranscript(overrides: Partial<Transcript> = {}): Transcript {
  return {
    task: "transcribe",
    language: "en",
    duration: 4.3,
    text: " Hello there. How are you?",
    segments: [
      makeSegment(0, 0, 2.5, " Hello there."),
      makeSegment(1, 2.5, 4.25, " How are you?"),
    ],
    words: [
      { word: "Hello", start: 0, end: 0.5 },
      { word: "there.", start: 0.5, end: 1.1 },
    ],
    ...overrides,
  };
}

function makeEmptyTranscript(): Transcript {
  return makeTranscript({ duration: 0, text: "", segments: [], words: [] });
}

function renderJsonBody(transcript: Transcript, wordTimestamps = false): Record<string, unknown> {
  const rendered = renderTranscript(transcript, "verbose_json", { wordTimestamps });
  return JSON.parse(rendered.body) as Record<string, unknown>;
}

describe("formatTimestamp", () => {
  it("formats zero", () => {
    expect(formatTimestamp(0, ",")).toBe("00:00:00,000");
  });

  it("uses the given separator", () => {
    expect(formatTimestamp(3661.5, ".")).toBe("01:01:01.500");
    expect(formatTimestamp(3661.5, ",")).toBe("01:01:01,500");
  });

  it("keeps counting hours past 99 minutes", () => {
    expect(formatTimestamp(100 * 60, ",")).toBe("01:40:00,000");
  });

  it("never wraps at 24 hours", () => {
    expect(formatTimestamp(24 * 3600, ",")).toBe("24:00:00,000");
    expect(formatTimestamp(25 * 3600 + 1.25, ",")).toBe("25:00:01,250");
  });

  it("widens hours past 99", () => {
    expect(formatTimestamp(100 * 3600, ",")).toBe("100:00:00,000");
    expect(formatTimestamp(123 * 3600 + 45 * 60 + 6.789, ".")).toBe("123:45:06.789");
  });

  it("rounds half a millisecond up", () => {
    expect(formatTimestamp(0.9995, ",")).toBe("00:00:01,000");
    expect(formatTimestamp(0.0005, ",")).toBe("00:00:00,001");
  });

  it("rounds below half a millisecond down", () => {
    expect(formatTimestamp(0.9994, ",")).toBe("00:00:00,999");
    expect(formatTimestamp(0.0004, ",")).toBe("00:00:00,000");
  });

  it("carries rounding into minutes and hours", () => {
    expect(formatTimestamp(59.9999, ",")).toBe("00:01:00,000");
    expect(formatTimestamp(3599.9996, ".")).toBe("01:00:00.000");
  });

  it("survives binary noise in decimal times", () => {
    expect(formatTimestamp(1.001, ",")).toBe("00:00:01,001");
    expect(formatTimestamp(4.35, ",")).toBe("00:00:04,350");
  });

  it("clamps negative times to zero", () => {
    expect(formatTimestamp(-0.5, ",")).toBe("00:00:00,000");
  });

  it("rejects non-finite times", () => {
    expect(() => formatTimestamp(Number.NaN, ",")).toThrow(RangeError);
    expect(() => formatTimestamp(Number.POSITIVE_INFINITY, ",")).toThrow(RangeError);
  });
});

describe("renderTranscript json", () => {
  it("returns text and duration usage", () => {
    const rendered = renderTranscript(makeTranscript(), "json");

    expect(rendered.contentType).toBe("application/json; charset=utf-8");
    expect(JSON.parse(rendered.body)).toEqual({
      text: "Hello there. How are you?",
      usage: { type: "duration", seconds: 5 },
    });
  });

  it("rounds usage seconds up", () => {
    const cases: Array<[number, number]> = [
      [8.47, 9],
      [3, 3],
      [3.0000000001, 3],
      [3.001, 4],
      [0.2, 1],
      [0, 0],
    ];
    for (const [duration, seconds] of cases) {
      const body = JSON.parse(renderTranscript(makeTranscript({ duration }), "json").body);
      expect(body.usage.seconds, `duration ${duration}`).toBe(seconds);
    }
  });

  it("renders an empty transcript", () => {
    const rendered = renderTranscript(makeEmptyTranscript(), "json");

    expect(JSON.parse(rendered.body)).toEqual({
      text: "",
      usage: { type: "duration", seconds: 0 },
    });
  });

  it("keeps non-ASCII text intact", () => {
    const text = " Grüße aus 東京 👋";
    const rendered = renderTranscript(makeTranscript({ text }), "json");

    expect(JSON.parse(rendered.body).text).toBe("Grüße aus 東京 👋");
  });
});

describe("renderTranscript text", () => {
  it("returns the trimmed text and a newline", () => {
    const rendered = renderTranscript(makeTranscript(), "text");

    expect(rendered.contentType).toBe("text/plain; charset=utf-8");
    expect(rendered.body).toBe("Hello there. How are you?\n");
  });

  it("renders an empty transcript as an empty body", () => {
    expect(renderTranscript(makeEmptyTranscript(), "text").body).toBe("");
  });
});

describe("renderTranscript srt", () => {
  it("numbers cues from 1 with comma times", () => {
    const rendered = renderTranscript(makeTranscript(), "srt");

    expect(rendered.contentType).toBe("text/plain; charset=utf-8");
    expect(rendered.body).toBe(
      "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n" +
        "2\n00:00:02,500 --> 00:00:04,250\nHow are you?\n\n",
    );
  });

  it("renders an empty transcript as an empty body", () => {
    expect(renderTranscript(makeEmptyTranscript(), "srt").body).toBe("");
  });

  it("writes times past one hour and 100 hours", () => {
    const segments = [
      makeSegment(0, 3725.5, 3727.004, " Past one hour."),
      makeSegment(1, 360_000, 360_001.9996, " Past a hundred hours."),
    ];
    const body = renderTranscript(makeTranscript({ segments }), "srt").body;

    expect(body).toContain("1\n01:02:05,500 --> 01:02:07,004\nPast one hour.\n");
    expect(body).toContain("2\n100:00:00,000 --> 100:00:02,000\nPast a hundred hours.\n");
  });

  it("skips empty segments without a gap in numbering", () => {
    const segments = [
      makeSegment(0, 0, 1, " First."),
      makeSegment(1, 1, 2, ""),
      makeSegment(2, 2, 3, "   \n  "),
      makeSegment(3, 3, 4, " Second."),
    ];
    const body = renderTranscript(makeTranscript({ segments }), "srt").body;

    expect(body).toBe(
      "1\n00:00:00,000 --> 00:00:01,000\nFirst.\n\n" +
        "2\n00:00:03,000 --> 00:00:04,000\nSecond.\n\n",
    );
  });

  it("defuses arrows in cue text", () => {
    const segments = [makeSegment(0, 0, 1, " a --> b ---> c -> d")];
    const body = renderTranscript(makeTranscript({ segments }), "srt").body;

    expect(body).toBe("1\n00:00:00,000 --> 00:00:01,000\na -> b -> c -> d\n\n");
    expect(body.split("-->")).toHaveLength(2);
  });

  it("drops blank lines inside cue text", () => {
    const segments = [makeSegment(0, 0, 1, " first line\n\n  second line \r\n\r\nthird\rfourth")];
    const body = renderTranscript(makeTranscript({ segments }), "srt").body;

    expect(body).toBe(
      "1\n00:00:00,000 --> 00:00:01,000\nfirst line\nsecond line\nthird\nfourth\n\n",
    );
  });

  it("keeps non-ASCII cue text intact", () => {
    const segments = [makeSegment(0, 0, 1, " Grüße aus 東京 👋")];
    const body = renderTranscript(makeTranscript({ segments }), "srt").body;

    expect(body).toContain("\nGrüße aus 東京 👋\n");
  });

  it("raises an end before the start to the start", () => {
    const segments = [makeSegment(0, 2, 1.5, " Backwards.")];
    const body = renderTranscript(makeTranscript({ segments }), "srt").body;

    expect(body).toContain("00:00:02,000 --> 00:00:02,000");
  });
});

describe("renderTranscript vtt", () => {
  it("writes the header and dot times", () => {
    const rendered = renderTranscript(makeTranscript(), "vtt");

    expect(rendered.contentType).toBe("text/vtt; charset=utf-8");
    expect(rendered.body).toBe(
      "WEBVTT\n\n" +
        "1\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n" +
        "2\n00:00:02.500 --> 00:00:04.250\nHow are you?\n\n",
    );
  });

  it("renders an empty transcript as the header alone", () => {
    expect(renderTranscript(makeEmptyTranscript(), "vtt").body).toBe("WEBVTT\n\n");
  });

  it("writes times past 100 hours", () => {
    const segments = [makeSegment(0, 360_000.5, 360_061, " Late.")];
    const body = renderTranscript(makeTranscript({ segments }), "vtt").body;

    expect(body).toContain("100:00:00.500 --> 100:01:01.000\nLate.\n");
  });

  it("escapes markup characters and arrows", () => {
    const segments = [makeSegment(0, 0, 1, " a --> b & <i>c</i>")];
    const body = renderTranscript(makeTranscript({ segments }), "vtt").body;

    expect(body).toContain("\na --&gt; b &amp; &lt;i&gt;c&lt;/i&gt;\n");
    expect(body.split("-->")).toHaveLength(2);
  });

  it("drops blank lines and keeps non-ASCII text", () => {
    const segments = [makeSegment(0, 0, 1, " Grüße\n\n\n東京 👋 ")];
    const body = renderTranscript(makeTranscript({ segments }), "vtt").body;

    expect(body).toBe("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nGrüße\n東京 👋\n\n");
  });

  it("skips empty segments", () => {
    const segments = [makeSegment(0, 0, 1, " "), makeSegment(1, 1, 2, " Only.")];
    const body = renderTranscript(makeTranscript({ segments }), "vtt").body;

    expect(body).toBe("WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nOnly.\n\n");
  });
});

describe("renderTranscript verbose_json", () => {
  it("returns the top-level fields", () => {
    const rendered = renderTranscript(makeTranscript(), "verbose_json");
    const body = JSON.parse(rendered.body);

    expect(rendered.contentType).toBe("application/json; charset=utf-8");
    expect(body.task).toBe("transcribe");
    expect(body.language).toBe("english");
    expect(body.duration).toBe(4.3);
    expect(body.text).toBe("Hello there. How are you?");
    expect(body.usage).toEqual({ type: "duration", seconds: 5 });
  });

  it("gives every segment all ten fields", () => {
    const body = renderJsonBody(makeTranscript());
    const segments = body.segments as Array<Record<string, unknown>>;

    expect(segments).toHaveLength(2);
    for (const segment of segments) {
      expect(Object.keys(segment)).toEqual(segmentFields);
    }
    expect(segments[1]).toEqual(makeSegment(1, 2.5, 4.25, " How are you?"));
  });

  it("keeps fields outside the ten out of segments", () => {
    const segment = { ...makeSegment(0, 0, 1, " Hi."), confidence: 0.9 };
    const body = renderJsonBody(makeTranscript({ segments: [segment] }));
    const segments = body.segments as Array<Record<string, unknown>>;

    expect(Object.keys(segments[0] ?? {})).toEqual(segmentFields);
  });

  it("omits words unless requested", () => {
    const body = renderJsonBody(makeTranscript(), false);
    const defaultBody = JSON.parse(renderTranscript(makeTranscript(), "verbose_json").body);

    expect(body).not.toHaveProperty("words");
    expect(defaultBody).not.toHaveProperty("words");
  });

  it("includes words when requested", () => {
    const body = renderJsonBody(makeTranscript(), true);

    expect(body.words).toEqual([
      { word: "Hello", start: 0, end: 0.5 },
      { word: "there.", start: 0.5, end: 1.1 },
    ]);
  });

  it("returns empty words when none exist", () => {
    const body = renderJsonBody(makeTranscript({ words: undefined }), true);

    expect(body.words).toEqual([]);
  });

  it("reports the task and a non-English language", () => {
    const body = renderJsonBody(makeTranscript({ task: "translate", language: "yue" }));

    expect(body.task).toBe("translate");
    expect(body.language).toBe("cantonese");
  });

  it("falls back to an unknown language code", () => {
    const body = renderJsonBody(makeTranscript({ language: "xx" }));

    expect(body.language).toBe("xx");
  });

  it("renders an empty transcript", () => {
    const body = renderJsonBody(makeEmptyTranscript(), true);

    expect(body).toEqual({
      task: "transcribe",
      language: "english",
      duration: 0,
      text: "",
      segments: [],
      words: [],
      usage: { type: "duration", seconds: 0 },
    });
  });

  it("keeps segment text verbatim", () => {
    const segments = [makeSegment(0, 0, 1, " Grüße --> 東京\n👋")];
    const body = renderJsonBody(makeTranscript({ segments }));
    const rendered = body.segments as Array<Record<string, unknown>>;

    expect(rendered[0]?.text).toBe(" Grüße --> 東京\n👋");
  });
});

describe("renderTranscript through the openai SDK", () => {
  // The SDK decides between JSON and text from the content type alone. A fake fetch
  // serves each rendered body, so no request leaves the process.
  async function createThroughSdk(format: ResponseFormat): Promise<unknown> {
    const rendered = renderTranscript(makeTranscript(), format, { wordTimestamps: true });
    const client = new OpenAI({
      apiKey: "test-key",
      baseURL: "http://127.0.0.1:9/v1",
      maxRetries: 0,
      fetch: async () =>
        new Response(rendered.body, {
          status: 200,
          headers: { "content-type": rendered.contentType },
        }),
    });
    const file = await toFile(Buffer.from("RIFF"), "speech.wav", { type: "audio/wav" });
    return client.audio.transcriptions.create({
      file,
      model: "whisper-1",
      response_format: format,
    });
  }

  it("returns subtitle and text formats as strings", async () => {
    for (const format of ["text", "srt", "vtt"] as const) {
      const result = await createThroughSdk(format);
      expect(result, format).toBe(renderTranscript(makeTranscript(), format).body);
    }
  });

  it("parses json and verbose_json as objects", async () => {
    const json = (await createThroughSdk("json")) as Record<string, unknown>;
    const verbose = (await createThroughSdk("verbose_json")) as Record<string, unknown>;

    expect(json.text).toBe("Hello there. How are you?");
    expect(verbose.language).toBe("english");
    expect(verbose.words).toHaveLength(2);
  });
});
