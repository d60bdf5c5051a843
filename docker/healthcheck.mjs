// Container health check: exits 0 when GET /health returns {"status":"ok"}, 1 otherwise.
// Runs with the image's own node, so the image needs no curl or wget.
const TIMEOUT_MS = 4000;

/** Returns the address to probe: loopback when the server listens on every interface. */
function probeHost(host) {
  if (!host || host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

const url = `http://${probeHost(process.env.HOST)}:${process.env.PORT || "8000"}/health`;

try {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = await response.json();
  if (response.status !== 200 || body.status !== "ok") {
    console.error(`${url} returned ${response.status}: ${JSON.stringify(body)}`);
    process.exit(1);
  }
} catch (error) {
  console.error(`${url} failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
