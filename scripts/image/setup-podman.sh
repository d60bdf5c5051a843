#!/usr/bin/env bash
# Installs podman from Debian and writes its settings under EARSHOT_PODMAN_DIR.
#
# The settings suit a root shell on a host with hybrid cgroups and no bridge network. They pick
# runc (crun rejects those cgroups), cgroupfs, a file event log and ulimits that root may set.
# No registry is searched, so a missing base image fails at once instead of being pulled.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(podman buildah runc uidmap fuse-overlayfs slirp4netns catatonit debootstrap)

install_packages() {
  if command -v podman >/dev/null && command -v debootstrap >/dev/null \
    && command -v runc >/dev/null; then
    return
  fi
  log "installing ${PACKAGES[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null
  fi
}

# Writes CONTENT to FILE only when it differs, so reruns leave the files untouched.
write_if_changed() {
  local file="$1" content="$2"
  if [[ -f "$file" && "$(cat "$file")" == "$content" ]]; then
    return
  fi
  printf '%s\n' "$content" >"$file"
}

# podman expects its run state on a tmpfs, gone after a reboot. Where /run is on disk, stale
# state would describe containers that no longer run, so it is cleared when the boot id changes.
clear_run_state_after_reboot() {
  local boot_id_file="$EARSHOT_PODMAN_RUN_DIR/boot_id" boot_id
  boot_id="$(cat /proc/sys/kernel/random/boot_id)"
  if [[ -f "$boot_id_file" && "$(cat "$boot_id_file")" != "$boot_id" ]]; then
    log "clearing podman run state left from before a reboot"
    rm -rf "$EARSHOT_PODMAN_RUN_DIR"
  fi
  mkdir -p "$EARSHOT_PODMAN_RUN_DIR"
  printf '%s\n' "$boot_id" >"$boot_id_file"
}

write_settings() {
  local nofile
  nofile="$(ulimit -Hn)"
  mkdir -p "$EARSHOT_PODMAN_DIR/bin" "$EARSHOT_PODMAN_DIR/storage" "$EARSHOT_PODMAN_RUN_DIR"

  # podman's default ulimits exceed what root may set here; nofile follows the shell's hard
  # limit, and a --ulimit flag would replace this whole list.
  write_if_changed "$CONTAINERS_CONF" "[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=32768:32768\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
events_logfile_path = \"$EARSHOT_PODMAN_DIR/events.log\"
tmp_dir = \"$EARSHOT_PODMAN_RUN_DIR/libpod\""

  # overlay stores each layer once, where vfs copies every layer in full (more time and disk).
  write_if_changed "$CONTAINERS_STORAGE_CONF" "[storage]
driver = \"overlay\"
graphroot = \"$EARSHOT_PODMAN_DIR/storage\"
runroot = \"$EARSHOT_PODMAN_RUN_DIR/storage\""

  write_if_changed "$CONTAINERS_REGISTRIES_CONF" 'unqualified-search-registries = []
short-name-mode = "enforcing"'

  write_if_changed "$EARSHOT_PODMAN_DIR/bin/docker" '#!/bin/sh
exec podman "$@"'
  chmod 755 "$EARSHOT_PODMAN_DIR/bin/docker"
}

install_packages
clear_run_state_after_reboot
write_settings
log "podman $(podman version --format '{{.Client.Version}}') uses $EARSHOT_PODMAN_DIR"
