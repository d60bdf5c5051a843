#!/usr/bin/env bash
# Stops the container "earshot" with `docker stop` and fails unless the server exited with
# status 0. That status shows that SIGTERM reached node through the image's init and that the
# server shut down gracefully, instead of being killed at the stop timeout.
set -euo pipefail

CONTAINER="${1:-earshot}"

started=$SECONDS
docker stop "$CONTAINER" >/dev/null
elapsed=$((SECONDS - started))
exit_code="$(docker inspect --format '{{.State.ExitCode}}' "$CONTAINER")"

if [[ "$exit_code" != 0 ]]; then
  echo "error: $CONTAINER exited with status $exit_code after docker stop (${elapsed} s)" >&2
  docker logs --tail 20 "$CONTAINER" >&2 || true
  exit 1
fi
echo "ok - $CONTAINER stopped on SIGTERM with status 0 in ${elapsed} s"
