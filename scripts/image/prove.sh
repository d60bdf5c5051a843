#!/usr/bin/env bash
# Builds Dockerfile.cpu with podman on this machine and proves that the image enforces API_KEY.
# It starts the image with the README's `docker run` line on 127.0.0.1:8000 and runs the same
# smoke test as the release workflow. Then it checks the HEALTHCHECK and a graceful stop.
#
# Usage: bash scripts/image/prove.sh   (as root, after `npm ci`; reruns reuse cached layers)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${EARSHOT_IMAGE:-localhost/earshot:cpu}"
MODEL_DIR="$EARSHOT_PODMAN_DIR/test-models"
BASE_URL=http://127.0.0.1:8000
SCRIPTS="$REPO_ROOT/scripts/image"

# podman 4.3 schedules HEALTHCHECKs through systemd timers, so it logs an error for each
# container on a host without systemd. The check itself still runs on request.
hide_systemd_timer_errors() {
  "$@" 2> >(grep -v -F 'unable to get systemd connection' >&2)
}

require_free_port() {
  if ss -H -l -t -n 'sport = :8000' | grep -q .; then
    fail "port 8000 is in use; the README's docker run line listens there: stop that server"
  fi
}

# Removes the container; on failure, shows its log first.
cleanup() {
  local status=$?
  if ((status != 0)) && docker container exists earshot 2>/dev/null; then
    log "container log:"
    docker logs --tail 40 earshot >&2 || true
  fi
  hide_systemd_timer_errors docker rm -f earshot >/dev/null || true
  exit "$status"
}

generate_model() {
  [[ -x "$REPO_ROOT/node_modules/.bin/tsx" ]] || fail "node_modules is missing: run npm ci first"
  (cd "$REPO_ROOT" && npx tsx scripts/generate-test-models.ts --out "$MODEL_DIR" --only micro) \
    >/dev/null
}

cd "$REPO_ROOT"
# One revision for the build and the check, even if HEAD moves meanwhile.
EARSHOT_REVISION="$(git rev-parse HEAD)"
export EARSHOT_REVISION
started=$SECONDS
bash "$SCRIPTS/setup-podman.sh"
bash "$SCRIPTS/build-bases.sh"
bash "$SCRIPTS/build-image.sh"
generate_model

docker rm -f earshot >/dev/null 2>&1 || true
require_free_port
trap cleanup EXIT
API_KEY="$(node -p 'require("node:crypto").randomBytes(24).toString("hex")')"
export API_KEY
log "starting $IMAGE"
hide_systemd_timer_errors bash "$SCRIPTS/start-container.sh" "$IMAGE" "$MODEL_DIR" >/dev/null

node "$SCRIPTS/smoke-test.mjs" "$BASE_URL" --revision "$EARSHOT_REVISION"
bash "$SCRIPTS/check-healthcheck.sh" earshot
hide_systemd_timer_errors bash "$SCRIPTS/stop-container.sh" earshot
log "image proof passed in $((SECONDS - started)) s"
