#!/usr/bin/env bash
# Builds Dockerfile.cpu with podman and tags it EARSHOT_IMAGE (default localhost/earshot:cpu).
#
# The build facts come from the checkout: package.json's version, the revision (EARSHOT_REVISION,
# default HEAD) and its commit time as the build date, so building one commit twice gives one
# image from the cache.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE="${EARSHOT_IMAGE:-localhost/earshot:cpu}"
DOCKERFILE="${EARSHOT_DOCKERFILE:-Dockerfile.cpu}"

cd "$REPO_ROOT"
version="$(node -p 'require("./package.json").version')"
revision="${EARSHOT_REVISION:-$(git rev-parse HEAD)}"
build_date="$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd "$revision")"
source_url="$(git remote get-url origin 2>/dev/null || true)"

build_log="$EARSHOT_PODMAN_DIR/build-image.log"
log "building $IMAGE from $DOCKERFILE at ${revision:0:12} (log: $build_log)"
started=$SECONDS
# --format docker keeps HEALTHCHECK, which the OCI image format has no field for.
# --jobs 2 builds the runtime stage's packages while the engine compiles.
if ! podman build --pull=never --network host --format docker --layers --jobs 2 \
  --file "$DOCKERFILE" --tag "$IMAGE" \
  --build-arg "EARSHOT_VERSION=$version" \
  --build-arg "EARSHOT_REVISION=$revision" \
  --build-arg "EARSHOT_BUILD_DATE=$build_date" \
  --build-arg "EARSHOT_SOURCE=$source_url" \
  . >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  fail "podman build failed; the whole output is in $build_log"
fi
log "built $IMAGE in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' \
  "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
