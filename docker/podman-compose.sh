#!/usr/bin/env bash
# `docker compose` for a machine with podman but no Docker engine and no registry (this project's CI):
# runs podman-compose (a pinned release with profiles and depends_on conditions, from PyPI, in
# .cache/) on docker-compose.yml. Images no registry can give are made locally first: the service
# image by docker/podman-build.sh (on `up`), and a stand-in for the moto image (same moto release).
# LocalStack cannot be made locally: use the moto profile.
#
#   bash docker/podman-compose.sh --profile moto up -d converter-moto
#   bash docker/podman-compose.sh --profile tools run --rm drop samples/sales.csv
#   bash docker/podman-compose.sh --profile moto --profile tools down
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${S3CC_CACHE_DIR:-$root/.cache/container}"
podman_compose_version=1.6.0
venv="$cache/podman-compose-$podman_compose_version"

log() { printf 'podman-compose.sh: %s\n' "$*" >&2; }

mkdir -p "$cache"
if [ ! -x "$venv/bin/podman-compose" ]; then
  log "installing podman-compose $podman_compose_version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "podman-compose==$podman_compose_version"
fi

# The image names the compose file gives.
service_image="$(grep -m1 -E '^  image: s3-csv-converter:' "$root/docker-compose.yml" | awk '{print $2}')"
moto_image="$(grep -m1 -E 'image: motoserver/moto:' "$root/docker-compose.yml" | awk '{print $2}')"

if [[ " $* " == *" up "* ]] || [ -z "$(podman image ls -q "$service_image")" ]; then
  IMAGE="$service_image" bash "$root/docker/podman-build.sh"
fi
if [ -z "$(podman image ls -q "docker.io/$moto_image")" ]; then
  log "making a stand-in for $moto_image (no registry here)"
  secret=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then secret=(--secret "id=extra_ca,src=$NODE_EXTRA_CA_CERTS"); fi
  podman build --pull=never --network host --format docker "${secret[@]}" \
    --build-arg "MOTO_VERSION=${moto_image##*:}" -t "docker.io/$moto_image" \
    -f "$root/docker/podman/moto.Containerfile" "$root/docker/podman" >&2
fi

cd "$root"
exec "$venv/bin/podman-compose" "$@"
