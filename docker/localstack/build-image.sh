#!/usr/bin/env bash
# Makes localstack/localstack:4.14.0 available to podman: pulled from Docker Hub when a registry
# answers (the official image, unchanged), else made here from PyPI's localstack-core 4.14.0
# (docker/localstack/Containerfile on a Debian trixie minbase made with debootstrap, cached under
# .cache/container/). Idempotent: a second run checks the image and returns (under a second).
#
#   bash docker/localstack/build-image.sh           # pull, else build
#   bash docker/localstack/build-image.sh --build   # build here now, even if present or a registry answers
#
# 4.14.0 is the last tag that starts without LOCALSTACK_AUTH_TOKEN. Settings (environment):
# DEBIAN_MIRROR, S3CC_CACHE_DIR, NODE_EXTRA_CA_CERTS (see docker/podman-lib.sh),
# LOCALSTACK_PULL_TIMEOUT (seconds, default 600).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log_name=localstack-image
. "$root/docker/podman-lib.sh"

version=4.14.0
image="docker.io/localstack/localstack:$version"
# Dependencies as of the day after the release (2026-02-26): later ones break its plugin loading.
resolve_as_of=2026-02-27T00:00:00Z
uv_version=0.13.9
base_image=localhost/s3cc-localstack-base:trixie
here="$root/docker/localstack"
force_build=false
[ "${1:-}" = --build ] && force_build=true

# What the local build is made of: a change to any of it makes the image again.
recipe="$( { cat "$here/Containerfile" "$here/docker-entrypoint.sh"; echo "$version $resolve_as_of $uv_version"; } | sha256sum | cut -c1-16)"
recipe_label=s3-csv-converter.localstack-recipe

# Our build carries the recipe label; the official image has none.
current_image() {
  podman image inspect "$image" --format "{{ index .Labels \"$recipe_label\" }}" 2>/dev/null || echo absent
}

try_pull() {
  log "pulling $image"
  timeout "${LOCALSTACK_PULL_TIMEOUT:-600}" podman pull --quiet "$image" >/dev/null 2>"$cache/localstack-pull.log" && return 0
  log "no registry gives $image ($(tail -n1 "$cache/localstack-pull.log")): making it from PyPI"
  return 1
}

build() {
  ensure_commands debootstrap
  # Trixie: its Python is 3.13 (localstack-core 4.14 needs 3.12 or later; bookworm has 3.11).
  debian_rootfs trixie python3,python3-venv
  local base_recipe
  base_recipe="$(stat -c '%s-%Y' "$rootfs_tarball")"
  if [ "$(podman image inspect "$base_image" --format '{{ index .Labels "s3-csv-converter.rootfs" }}' 2>/dev/null)" != "$base_recipe" ]; then
    log "importing $rootfs_tarball as $base_image"
    podman import --quiet --change "LABEL s3-csv-converter.rootfs=$base_recipe" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "$rootfs_tarball" "$base_image" >/dev/null
  fi
  log "building $image: localstack-core[runtime]==$version resolved as of $resolve_as_of"
  podman build --pull=never --network host --format docker --layers \
    "${extra_ca_secret[@]}" \
    --build-arg "BASE_IMAGE=$base_image" \
    --build-arg "LOCALSTACK_VERSION=$version" \
    --build-arg "RESOLVE_AS_OF=$resolve_as_of" \
    --build-arg "UV_VERSION=$uv_version" \
    --label "$recipe_label=$recipe" \
    -t "$image" -f "$here/Containerfile" "$here" >"$cache/localstack-build.log" 2>&1 \
    || { tail -n 30 "$cache/localstack-build.log" >&2; die "podman build failed; see $cache/localstack-build.log"; }
}

mkdir -p "$cache"
ensure_commands podman runc
configure_podman
lock_cache
have="$(current_image)"
if ! $force_build; then
  if [ "$have" = "$recipe" ]; then log "$image is up to date (built here)"; exit 0; fi
  if [ "$have" = "" ] || [ "$have" = "<no value>" ]; then log "$image is present (pulled)"; exit 0; fi
  if [ "$have" = absent ] && try_pull; then log "pulled $image"; exit 0; fi
fi
build
log "built $image ($(podman image inspect "$image" --format '{{ .Size }}' | numfmt --to=iec))"
