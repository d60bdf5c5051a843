#!/usr/bin/env node
// Checks a running earshot server from outside, as a client would. GET /health must return 200
// without a key, every other route 401 without the right key, and with the key the models list
// and a transcription must work. Release builds run it against each image before pushing it.
//
// Usage: API_KEY=KEY node scripts/image/smoke-test.mjs BASE_URL [options]
//   --model NAME        installed model to list and transcribe with (default: micro)
//   --audio FILE        audio to transcribe (default: test/fixtures/speech-en.wav)
//   --revision SHA      fail unless GET /health reports this git revision
//   --wait-seconds N    how long to wait for GET /health to return 200 (default: 60)
// Prints one line per check, then "N passed, N failed"; exits 1 when a check fails.
import { openAsBlob } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

const REQUEST_TIMEOUT_MS = 10_000;
// A random-weight model decodes garbage until its token limits, which takes seconds on 2 cores.
const TRANSCRIPTION_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 500;

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "micro" },
    audio: { type: "string", default: "test/fixtures/speech-en.wav" },
    revision: { type: "string" },
    "wait-seconds": { type: "string", default: "60" },
  },
});
const baseUrl = positionals[0]?.replace(/\/+$/, "");
const apiKey = process.env.API_KEY;
if (!baseUrl || !apiKey) {
  console.error("usage: API_KEY=KEY node scripts/image/smoke-test.mjs BASE_URL [--model NAME]");
  process.exit(2);
}

const results = { passed: 0, failed: 0 };

function check(name, condition, detail) {
  if (condition) {
    results.passed += 1;
    console.log(`ok - ${name}`);
  } else {
    results.failed += 1;
    console.log(`not ok - ${name}: ${detail}`);
  }
}

/** Sends one request; returns {status, body} with the body parsed when it is JSON. */
async function send(method, path, { key, form, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const headers = key === undefined ? {} : { authorization: `Bearer ${key}` };
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: form,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Plain-text bodies stay strings.
  }
  return { status: response.status, body };
}

function describe(response) {
  return `status ${response.status}, body ${JSON.stringify(response.body).slice(0, 300)}`;
}

async function audioForm() {
  const form = new FormData();
  form.append("file", await openAsBlob(options.audio), basename(options.audio));
  form.append("model", options.model);
  return form;
}

/** Polls GET /health until it returns 200; returns that response, or undefined at the deadline. */
async function waitForHealth() {
  const deadline = Date.now() + Number(options["wait-seconds"]) * 1000;
  let lastError = "no response";
  while (Date.now() < deadline) {
    try {
      const response = await send("GET", "/health");
      if (response.status === 200) return response;
      lastError = describe(response);
    } catch (error) {
      lastError = error.cause?.code ?? error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  const waited = options["wait-seconds"];
  console.log(`# GET /health did not return 200 within ${waited} s: ${lastError}`);
  return undefined;
}

function checkHealth(health) {
  check("GET /health returns 200 without a key", health !== undefined, "timed out");
  if (health === undefined) return;
  check("GET /health reports status ok", health.body.status === "ok", describe(health));
  check("GET /health reports auth on", health.body.auth === true, describe(health));
  if (options.revision !== undefined) {
    check(
      `GET /health reports revision ${options.revision}`,
      health.body.revision === options.revision,
      describe(health),
    );
  }
}

/** Requests that must be rejected with 401: no key, a wrong key, and a prefix of the key. */
function unauthorizedCases() {
  const paths = [
    ["GET", "/v1/models"],
    ["GET", `/v1/models/${options.model}`],
    ["POST", `/v1/models/${options.model}`],
    // Passing this one without a key would delete the model the later checks use.
    ["DELETE", `/v1/models/${options.model}`],
    ["POST", "/v1/audio/transcriptions"],
    ["POST", "/v1/audio/translations"],
    ["POST", "/health"],
    ["GET", "/v1/no-such-route"],
  ];
  const cases = paths.map(([method, path]) => ({ method, path, key: undefined, label: "no key" }));
  cases.push(
    { method: "GET", path: "/v1/models", key: `${apiKey}x`, label: "a wrong key" },
    { method: "GET", path: "/v1/models", key: apiKey.slice(0, -1), label: "a prefix of the key" },
    {
      method: "POST",
      path: "/v1/audio/transcriptions",
      key: `${apiKey}x`,
      label: "a wrong key",
    },
  );
  return cases;
}

async function checkUnauthorized() {
  for (const { method, path, key, label } of unauthorizedCases()) {
    // A real upload, so a server that skipped the key check would transcribe it and return 200
    // instead of a 400 for a missing file.
    const form = path.startsWith("/v1/audio/") ? await audioForm() : undefined;
    const response = await send(method, path, { key, form });
    const name = `${method} ${path} with ${label} returns 401`;
    check(name, response.status === 401, describe(response));
  }
}

async function checkAuthorized() {
  const models = await send("GET", "/v1/models", { key: apiKey });
  check("GET /v1/models with the key returns 200", models.status === 200, describe(models));
  const ids = Array.isArray(models.body?.data) ? models.body.data.map((model) => model.id) : [];
  check(`GET /v1/models lists ${options.model}`, ids.includes(options.model), describe(models));

  const transcription = await send("POST", "/v1/audio/transcriptions", {
    key: apiKey,
    form: await audioForm(),
    timeoutMs: TRANSCRIPTION_TIMEOUT_MS,
  });
  check(
    "POST /v1/audio/transcriptions with the key returns text",
    transcription.status === 200 && typeof transcription.body?.text === "string",
    describe(transcription),
  );
}

const health = await waitForHealth();
checkHealth(health);
if (health !== undefined) {
  await checkUnauthorized();
  await checkAuthorized();
}
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed === 0 ? 0 : 1);
