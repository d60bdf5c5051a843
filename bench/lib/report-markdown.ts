// Markdown tables of the benchmark's results.
import type { BenchResults, TargetCheck } from "./report.js";
import type { SingleRequestResult } from "./single-request.js";
import { round } from "./stats.js";

export function formatRatio(value: number): string {
  return Number.isNaN(value) ? "n/a" : `${value.toFixed(2)}x`;
}

export function formatMs(milliseconds: number): string {
  return Number.isNaN(milliseconds) ? "n/a" : `${Math.round(milliseconds)} ms`;
}

export function formatBytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Renders the targets table first, then the measurements behind it. */
export function renderMarkdown(results: BenchResults, targets: TargetCheck[]): string {
  return [
    `# earshot against whisper.cpp's CLI (${results.mode} run)`,
    renderMachine(results),
    table(
      ["Target", "Measured", "Met"],
      targets.map((check) => [check.target, check.measured, check.met ? "yes" : "no"]),
    ),
    "## One request, earshot over HTTP against the CLI",
    renderSingle(results),
    "## Several clients at once",
    renderConcurrency(results),
    "## A short clip behind a long transcription",
    renderBehindLongJob(results),
    "## Server profiles",
    renderProfiles(results),
  ].join("\n\n").concat("\n");
}

function renderMachine(results: BenchResults): string {
  const { machine } = results;
  return [
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ` +
      `${formatBytes(machine.memoryBytes)} memory, Linux ${machine.kernel}`,
    `- Node.js ${machine.node}, measured ${machine.date}; earshot from the ` +
      (results.serverSource === "working tree" ? "working tree" : `commit ${results.serverSource}`),
    `- 1-minute load average ${machine.loadAverageAtStart.toFixed(1)} at the start and ` +
      `${machine.loadAverageAtEnd.toFixed(1)} at the end: above 0 means other work shared ` +
      "the cores",
    `- Model: ${results.model.name} (${formatBytes(results.model.sizeBytes)}, random weights)`,
    `- Decoding on both sides: ${results.decoding}, ${results.threads} threads per job`,
    `- CLI compiler flags (whisper.cpp Makefile defaults): \`${results.nativeCflags}\``,
    `- earshot's addon flags: \`${results.addonFlags}\``,
  ].join("\n");
}

function renderSingle(results: BenchResults): string {
  const rows = results.single.map((row) => [
    row.clip,
    String(row.pairs.length),
    formatMs(row.medianNativeTranscribeMs),
    formatMs(row.medianNativeWorkMs),
    row.medianEarshotInferenceMs === undefined ? "n/a" : formatMs(row.medianEarshotInferenceMs),
    formatMs(row.medianEarshotMs),
    formatRatio(row.medianRatio),
    transcriptStatus(row),
  ]);
  const explanation =
    "CLI work is the CLI's wall time minus the model load time it prints: process start, WAV " +
    "read, state allocation, mel, encode, decode and output. CLI library is its printed total " +
    "minus load. earshot is the HTTP round trip (upload, ffmpeg decode, transcription, JSON " +
    "response) with the model already loaded; earshot inference is the transcription alone, " +
    "from its log (10 ms resolution). The ratio is the median over pairs of earshot / CLI " +
    "work; runs alternate, with the CLI first in even pairs. Medians are per column.";
  const header = [
    "Clip",
    "Pairs",
    "CLI library",
    "CLI work",
    "earshot inference",
    "earshot",
    "Ratio",
    "Transcript",
  ];
  return [explanation, table(header, rows), renderParityDetails(results)]
    .filter((part) => part.length > 0)
    .join("\n\n");
}

function transcriptStatus(row: SingleRequestResult): string {
  const parity = row.parityIdentical ? "identical" : "differs";
  if (row.error === undefined) return parity;
  const completed = row.pairs.length > 0 ? `${parity} in completed pairs; ` : "";
  return `${completed}stopped: ${row.error.replaceAll("|", "/").replaceAll("\n", " ")}`;
}

function renderParityDetails(results: BenchResults): string {
  const differing = results.single.flatMap((row) =>
    row.pairs
      .flatMap((pair) => pair.parity.mismatches)
      .slice(0, 3)
      .map((mismatch) => [
        row.clip,
        String(mismatch.index),
        mismatch.field,
        JSON.stringify(mismatch.native),
        JSON.stringify(mismatch.server),
      ]),
  );
  if (differing.length === 0) return "";
  return table(["Clip", "Segment", "Field", "CLI", "earshot"], differing);
}

function renderConcurrency(results: BenchResults): string {
  const rows = results.concurrency.map((row) => [
    row.profile,
    String(row.clients),
    `${row.requests} x ${row.clip}`,
    String(round(row.audioSecondsPerSecond, 2)),
    formatMs(row.p50Ms),
    formatMs(row.p95Ms),
    formatBytes(row.peakRssBytes),
  ]);
  const header = ["Profile", "Clients", "Requests", "Audio s / s", "p50", "p95", "Peak RSS"];
  return [
    "Throughput is the audio seconds of all requests over the wall time of the whole level. " +
      "Peak RSS is the server's highest VmRSS sampled every 100 ms during the level.",
    table(header, rows),
  ].join("\n\n");
}

function renderBehindLongJob(results: BenchResults): string {
  const result = results.behindLongJob;
  const rows = [
    ["alone", String(result.aloneMs.length), formatMs(result.medianAloneMs)],
    [`behind ${result.longClip}`, String(result.behindMs.length), formatMs(result.medianBehindMs)],
  ];
  const longJob = result.longJobCompleted
    ? `The ${result.longClip} request took ${formatMs(result.longJobMs)}.`
    : `The ${result.longClip} request was still running after ${formatMs(result.longJobMs)} ` +
      "and was abandoned once the short requests were measured.";
  return [
    `Default profile. ${longJob}`,
    table([`${result.shortClip}`, "Requests", "Median latency"], rows),
  ].join("\n\n");
}

function renderProfiles(results: BenchResults): string {
  const rows = results.profiles.map((profile) => [
    profile.name,
    Object.entries(profile.settings)
      .map(([name, value]) => `${name}=${value}`)
      .join(" "),
    String(profile.modelLoads),
    formatBytes(profile.peakRssBytes),
  ]);
  return table(["Profile", "Settings", "Model loads", "Peak RSS (VmHWM)"], rows);
}
