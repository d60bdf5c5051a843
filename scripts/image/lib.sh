# Settings shared by the image scripts; sourced, never run.
#
# podman keeps its configuration, storage and caches under EARSHOT_PODMAN_DIR, outside the
# clone, so a rerun on the same machine reuses base images and build layers.
# shellcheck shell=bash

EARSHOT_PODMAN_DIR="${EARSHOT_PODMAN_DIR:-/var/tmp/earshot-podman}"
# Run state, which podman expects to vanish at reboot; setup-podman.sh clears it after one.
EARSHOT_PODMAN_RUN_DIR="${EARSHOT_PODMAN_RUN_DIR:-/run/earshot-podman}"

export CONTAINERS_CONF="$EARSHOT_PODMAN_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$EARSHOT_PODMAN_DIR/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$EARSHOT_PODMAN_DIR/registries.conf"
# A `docker` command that runs podman, so the scripts run the same lines as the README.
export PATH="$EARSHOT_PODMAN_DIR/bin:$PATH"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export REPO_ROOT

log() {
  printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

fail() {
  log "error: $*"
  exit 1
}
