#!/usr/bin/env bash
# Fails unless the image's HEALTHCHECK reports the container "earshot" healthy.
#
# podman runs the check on request (`healthcheck run`); Docker runs it on its own schedule, first
# after the 30 s interval, so with Docker this waits up to WAIT_SECONDS for "healthy".
set -euo pipefail

CONTAINER="${1:-earshot}"
WAIT_SECONDS="${WAIT_SECONDS:-90}"

if docker healthcheck --help >/dev/null 2>&1; then
  docker healthcheck run "$CONTAINER"
  echo "ok - HEALTHCHECK of $CONTAINER passed"
  exit 0
fi

deadline=$((SECONDS + WAIT_SECONDS))
status=""
while ((SECONDS < deadline)); do
  status="$(docker inspect --format '{{.State.Health.Status}}' "$CONTAINER")"
  if [[ "$status" == healthy ]]; then
    echo "ok - HEALTHCHECK of $CONTAINER passed"
    exit 0
  fi
  sleep 2
done
echo "error: $CONTAINER is '$status', not healthy, after $WAIT_SECONDS s" >&2
docker inspect --format '{{json .State.Health}}' "$CONTAINER" >&2
exit 1
