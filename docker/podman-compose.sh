#!/usr/bin/env bash
# `docker compose` for a machine with podman but no Docker engine and no registry (this project's CI):
# runs podman-compose (a pinned release with profiles and depends_on conditions, from PyPI, in
# .cache/) on docker-compose.yml. Images no registry can give are made locally first: the service
# image by docker/podman-build.sh (on `up`), LocalStack by docker/localstack/build-image.sh, and a
# stand-in for the moto image (same moto release) when the moto profile is asked for.
#
#   bash docker/podman-compose.sh up -d                                   # LocalStack + converter
#   bash docker/podman-compose.sh --profile tools run --rm drop samples/sales.csv
#   bash docker/podman-compose.sh --profile tools down
#   bash docker/podman-compose.sh --profile moto up -d converter-moto     # moto instead
#   bash docker/podman-compose.sh --prepare      # only install podman-compose and make the images
#
# podman before 4.6 cannot wait for `condition: service_healthy` (podman-compose skips the wait with
# a warning) and, without systemd, nothing runs healthchecks on their interval. So on `up` of the
# LocalStack stack this script starts LocalStack first and runs its compose healthcheck itself
# (`podman healthcheck run`) until it passes, then runs the `up` asked for.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${S3CC_CACHE_DIR:-$root/.cache/container}"
podman_compose_version=1.6.0
venv="$cache/podman-compose-$podman_compose_version"
healthy_within_seconds=120

log() { printf 'podman-compose.sh: %s\n' "$*" >&2; }

prepare_only=false
if [ "${1:-}" = --prepare ]; then prepare_only=true; shift; fi
args=" $* "
wants_moto=false
[[ "$args" == *" moto "* || "$args" == *"converter-moto"* || "$args" == *"moto-init"* ]] && wants_moto=true
wants_localstack=true
$wants_moto && [[ "$args" != *" converter "* && "$args" != *" localstack "* ]] && wants_localstack=false

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

if $prepare_only || [[ "$args" == *" up "* ]] || [ -z "$(podman image ls -q "$service_image")" ]; then
  IMAGE="$service_image" bash "$root/docker/podman-build.sh"
fi
if $wants_localstack; then bash "$root/docker/localstack/build-image.sh"; fi
if $wants_moto && [ -z "$(podman image ls -q "docker.io/$moto_image")" ]; then
  log "making a stand-in for $moto_image (no registry here)"
  . "$root/docker/podman-lib.sh"
  podman build --pull=never --network host --format docker "${extra_ca_secret[@]}" \
    --build-arg "MOTO_VERSION=${moto_image##*:}" -t "docker.io/$moto_image" \
    -f "$root/docker/podman/moto.Containerfile" "$root/docker/podman" >&2
fi
$prepare_only && exit 0

cd "$root"
compose=("$venv/bin/podman-compose")

# The project name, as podman-compose finds it: -p, else COMPOSE_PROJECT_NAME, else the file's `name:`.
project_name() {
  local previous="" arg
  for arg in "$@"; do
    case "$previous" in -p | --project-name) echo "$arg"; return ;; esac
    case "$arg" in -p=* | --project-name=*) echo "${arg#*=}"; return ;; esac
    previous="$arg"
  done
  [ -n "${COMPOSE_PROJECT_NAME:-}" ] && { echo "$COMPOSE_PROJECT_NAME"; return; }
  awk '/^name:/ {print $2; exit}' "$root/docker-compose.yml"
}

podman_before_4_6() {
  local version
  version="$(podman version --format '{{.Client.Version}}')"
  [ "$(printf '%s\n4.6.0\n' "$version" | sort -V | head -n1)" != 4.6.0 ]
}

if [[ "$args" == *" up "* ]] && $wants_localstack && podman_before_4_6; then
  # Everything before `up` (global options such as -p and --profile) applies to this first step too.
  global=()
  for arg in "$@"; do [ "$arg" = up ] && break; global+=("$arg"); done
  "${compose[@]}" "${global[@]}" up -d localstack >&2
  project="$(project_name "$@")"
  container="$(podman ps -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=localstack | head -n1)"
  [ -n "$container" ] || { log "no running localstack container in project $project"; exit 1; }
  log "waiting for LocalStack's healthcheck (its init hook) to pass"
  deadline=$((SECONDS + healthy_within_seconds))
  until podman healthcheck run "$container" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      podman logs --tail 30 "$container" >&2 || true
      log "LocalStack was not healthy within $healthy_within_seconds s"
      exit 1
    fi
    sleep 1
  done
fi
exec "${compose[@]}" "$@"
