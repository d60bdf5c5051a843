// Speech clips synthesized with espeak-ng: 16 kHz mono 16-bit WAV, the input whisper.cpp's CLI
// reads without conversion.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";

import { runCommand } from "./process.js";

export interface Clip {
  name: string;
  path: string;
  durationSeconds: number;
}

const sentences = [
  "The morning train left the station a few minutes after seven.",
  "She wrote the measurements in a small notebook beside the window.",
  "Heavy rain is expected along the coast for the rest of the week.",
  "The committee will publish its findings before the end of the month.",
  "He tuned the old radio until a clear voice came through the static.",
  "Please check that every cable is connected before you start the test.",
  "A narrow bridge crosses the river just north of the village.",
  "The library extended its opening hours during the examination period.",
  "Our results show a steady rise in temperature over the last decade.",
  "The pilot announced that the flight would land twenty minutes early.",
  "Fresh bread and coffee were served in the hall at noon.",
  "They measured the distance twice and wrote down the smaller number.",
];

const sampleRate = 16_000;
const pauseSeconds = 0.3;
const commandTimeoutMs = 60_000;

/** Synthesizes one clip of exactly `durationSeconds`, reusing a clip made by an earlier run. */
export async function makeSpeechClip(clipDir: string, durationSeconds: number): Promise<Clip> {
  const name = `speech-${durationSeconds}s`;
  const clipPath = path.join(clipDir, `${name}.wav`);
  if (!existsSync(clipPath)) {
    const parts = await synthesizeSentences(clipDir);
    await concatenateToLength(parts, clipPath, durationSeconds);
  }
  return { name, path: clipPath, durationSeconds };
}

interface SentenceAudio {
  path: string;
  durationSeconds: number;
}

async function synthesizeSentences(clipDir: string): Promise<SentenceAudio[]> {
  const partsDir = path.join(clipDir, "sentences");
  mkdirSync(partsDir, { recursive: true });
  const parts: SentenceAudio[] = [];
  for (const [index, sentence] of sentences.entries()) {
    const partPath = path.join(partsDir, `sentence-${index}.wav`);
    if (!existsSync(partPath)) {
      await synthesizeSentence(sentence, partPath, partsDir);
    }
    parts.push({ path: partPath, durationSeconds: await wavDurationSeconds(partPath) });
  }
  return parts;
}

async function synthesizeSentence(sentence: string, partPath: string, partsDir: string) {
  // espeak-ng writes 22.05 kHz, so sox resamples; the pause keeps sentences apart.
  const rawPath = path.join(partsDir, "espeak-output.wav");
  try {
    await runCommand("espeak-ng", ["-w", rawPath, sentence], { timeoutMs: commandTimeoutMs });
    const format = ["-r", String(sampleRate), "-c", "1", "-b", "16"];
    await runCommand("sox", [rawPath, ...format, partPath, "pad", "0", String(pauseSeconds)], {
      timeoutMs: commandTimeoutMs,
    });
  } finally {
    rmSync(rawPath, { force: true });
  }
}

async function wavDurationSeconds(wavPath: string): Promise<number> {
  const result = await runCommand("soxi", ["-D", wavPath], { timeoutMs: commandTimeoutMs });
  return Number(result.stdout.toString("utf8").trim());
}

/** Repeats the sentences in order until the clip is long enough, then cuts it to length. */
async function concatenateToLength(
  parts: readonly SentenceAudio[],
  clipPath: string,
  durationSeconds: number,
) {
  const inputs: string[] = [];
  let total = 0;
  for (let index = 0; total < durationSeconds; index += 1) {
    const part = parts[index % parts.length] as SentenceAudio;
    inputs.push(part.path);
    total += part.durationSeconds;
  }
  // Written under a temporary name so that an interrupted run leaves no truncated clip behind.
  const partialPath = `${clipPath}.partial.wav`;
  try {
    await runCommand("sox", [...inputs, partialPath, "trim", "0", String(durationSeconds)], {
      timeoutMs: commandTimeoutMs,
    });
    renameSync(partialPath, clipPath);
  } finally {
    rmSync(partialPath, { force: true });
  }
}
