#!/usr/bin/env bash
# The test runner behind `npm test`, `npm run test:unit` and `npm run test:localstack` (after
# `npm run build`; the npm scripts do that).
#
#   bash scripts/test.sh              # npm test: unit files, then the emulator-backed files
#   bash scripts/test.sh unit         # npm run test:unit: the files that need no emulator
#   bash scripts/test.sh localstack   # npm run test:localstack: the emulator-backed files on LocalStack
#   bash scripts/test.sh localstack --grep redrive    # further arguments go to mocha...
#   bash scripts/test.sh localstack dist/test/dlq/native.test.js   # ...or name the files to run
#
# scripts/test-plan.mjs sorts the compiled files by what they import. Emulator-backed files run
# against LocalStack 4.14.0 started by @testcontainers/localstack whenever a container runtime can be had:
#   1. a Docker engine (or whatever DOCKER_HOST names) that answers: used as it is, Ryuk included;
#   2. else podman: this script starts `podman system service` inside a private network namespace
#      that has only loopback, and runs the tests there, so no published port is reachable from
#      outside the machine. Ryuk is disabled when its image cannot be had (no registry); the harness
#      removes its containers itself (mocha root hook, and this script's exit trap);
#   3. else (npm test only; test:localstack fails) moto server.
# The fault-proxy reliability tests (test/reliability/) run on moto in every case.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-all}"
[ $# -gt 0 ] && shift
case "$mode" in all | unit | localstack) ;; *) echo "usage: bash scripts/test.sh [all|unit|localstack] [mocha options]" >&2; exit 2 ;; esac

log() { printf 'test: %s\n' "$*" >&2; }

# Node 22 first on PATH (the tests need it), as the README's first step does.
. "$root/.ci/node22.sh"
# Further arguments: compiled test files (they replace the group's files) and mocha options.
only_files=()
mocha=("$root/node_modules/.bin/mocha")
for arg in "$@"; do
  if [[ "$arg" == *.test.js && -f "$arg" ]]; then only_files+=("$arg"); else mocha+=("$arg"); fi
done
failed=()

run_group() { # name, then env assignments, then --, then files
  local name="$1" envs=() files=()
  shift
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  files=("$@")
  if [ ${#files[@]} -eq 0 ]; then log "$name: no files"; return; fi
  log "$name: ${#files[@]} files"
  local status=0
  "${netns_exec[@]}" env "${envs[@]}" "${mocha[@]}" "${files[@]}" || status=$?
  # Interrupted (Ctrl-C, SIGTERM): stop here; the exit trap cleans up.
  if [ $status -eq 130 ] || [ $status -eq 143 ]; then exit $status; fi
  if [ $status -ne 0 ]; then failed+=("$name"); fi
}

mapfile -t unit_files < <(node scripts/test-plan.mjs unit)
mapfile -t emulator_files < <(node scripts/test-plan.mjs emulator)
mapfile -t moto_files < <(node scripts/test-plan.mjs moto)
if [ ${#only_files[@]} -gt 0 ]; then
  [ "$mode" = all ] && { echo "test: name files with unit or localstack, not with the whole suite" >&2; exit 2; }
  unit_files=("${only_files[@]}")
  emulator_files=("${only_files[@]}")
fi
netns_exec=()

if [ "$mode" = unit ]; then
  run_group unit S3CC_TEST_EMULATOR=none -- "${unit_files[@]}"
  [ ${#failed[@]} -eq 0 ] || exit 1
  exit 0
fi

# ---- a container runtime for LocalStack ---------------------------------------------------------

run_id="$(date +%s)-$$"
prepare_pid=""
prepare_log=""
netns=""
service_pid=""
socket_dir=""

# Runs a command in the private namespace when there is one.
in_netns() { if [ -n "$netns" ]; then nsenter --net="/run/netns/$netns" "$@"; else "$@"; fi; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$netns" ]; then
    # Whatever this run started and did not stop: LocalStack, the service container, compose projects.
    local ids
    ids="$(in_netns podman ps -aq --filter "label=s3-csv-converter.test-run=$run_id" 2>/dev/null || true)
$(in_netns podman ps -aq --filter "label=io.podman.compose.project=s3cc-walkthrough-$run_id" 2>/dev/null || true)"
    ids="$(echo "$ids" | sort -u | grep . || true)"
    if [ -n "$ids" ]; then
      log "removing containers left by this run: $(echo "$ids" | tr '\n' ' ')"
      # shellcheck disable=SC2086
      in_netns podman rm --force --time 0 $ids >/dev/null 2>&1 || true
    fi
    in_netns podman network ls -q --filter "label=io.podman.compose.project=s3cc-walkthrough-$run_id" 2>/dev/null \
      | xargs -r nsenter --net="/run/netns/$netns" podman network rm -f >/dev/null 2>&1 || true
  fi
  if [ -n "$prepare_pid" ]; then
    kill -- "-$prepare_pid" 2>/dev/null || true
    wait "$prepare_pid" 2>/dev/null || true
  fi
  if [ -n "${prepare_log:-}" ]; then rm -f "$prepare_log"; fi
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  if [ -n "$netns" ]; then ip netns delete "$netns" 2>/dev/null || true; fi
  if [ -n "$socket_dir" ]; then rm -rf "$socket_dir"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespaces left by runs that were killed (SIGKILL): their owner is gone.
remove_stale_namespaces() {
  local name pid
  for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^s3cc-test-[0-9]+$' || true); do
    pid="${name#s3cc-test-}"
    if ! kill -0 "$pid" 2>/dev/null; then ip netns delete "$name" 2>/dev/null || true; fi
  done
}

# Containers left by runs that were killed (SIGKILL; e.g. LocalStack, the service, a compose project):
# the run id (and the compose project's name) ends in the pid of the run, which is gone.
remove_stale_containers() {
  local id run project owner
  podman ps -a --format '{{.ID}}|{{index .Labels "s3-csv-converter.test-run"}}|{{index .Labels "io.podman.compose.project"}}' 2>/dev/null |
    while IFS='|' read -r id run project; do
      owner="${run:-$project}"
      case "$owner" in *-[0-9]*) ;; *) continue ;; esac
      case "$project" in '' | s3cc-walkthrough-*) ;; *) continue ;; esac
      if ! kill -0 "${owner##*-}" 2>/dev/null; then
        log "removing container $id left by a killed run ($owner)"
        podman rm --force --time 0 "$id" >/dev/null 2>&1 || true
      fi
    done
}

wait_for_socket() {
  local socket="$1" deadline=$((SECONDS + 30))
  until node -e "require('http').get({ socketPath: process.argv[1], path: '/_ping' }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))" "$socket"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$service_pid" 2>/dev/null; then
      cat "$socket_dir/service.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# Why podman cannot serve here, or nothing when it can.
podman_unusable() {
  command -v podman >/dev/null || { echo "no Docker engine answers and podman is not installed (bash docker/podman-build.sh installs it)"; return; }
  [ "$(id -u)" -eq 0 ] || { echo "podman is installed, but making the private network namespace needs root"; return; }
  command -v nsenter >/dev/null && command -v ip >/dev/null || { echo "podman needs nsenter and ip (util-linux, iproute2) here"; return; }
}

start_podman_service() {
  remove_stale_containers
  remove_stale_namespaces
  netns="s3cc-test-$$"
  ip netns add "$netns"
  nsenter --net="/run/netns/$netns" ip link set lo up
  socket_dir="$(mktemp -d "${TMPDIR:-/tmp}/s3cc-podman.XXXXXX")"
  nsenter --net="/run/netns/$netns" podman system service --time=0 "unix://$socket_dir/podman.sock" >"$socket_dir/service.log" 2>&1 &
  service_pid=$!
  wait_for_socket "$socket_dir/podman.sock" || { log "podman system service did not answer"; exit 1; }
}

# Ryuk (testcontainers' reaper) where its image is here or can be pulled; else the harness reaps.
ryuk_or_not() {
  local image="${RYUK_CONTAINER_IMAGE:-$(grep -o 'testcontainers/ryuk:[0-9.]*' node_modules/testcontainers/build/reaper/reaper.js | head -n1)}"
  if [ -n "${TESTCONTAINERS_RYUK_DISABLED:-}" ]; then return; fi
  if podman image exists "$image" 2>/dev/null || timeout 120 podman pull --quiet "$image" >/dev/null 2>&1; then return; fi
  log "Ryuk ($image) cannot be had here (no registry): disabled; this script removes the containers"
  export TESTCONTAINERS_RYUK_DISABLED=true
}

runtime=none
why_not=""
if node scripts/container-runtime.mjs; then
  runtime=engine
elif why_not="$(podman_unusable)" && [ -z "$why_not" ]; then
  runtime=podman
fi
announced=false
announce_localstack() { $announced || echo "emulator: localstack 4.14.0 via testcontainers"; announced=true; }
if [ "$mode" = localstack ]; then
  [ "$runtime" != none ] || { log "cannot run the LocalStack tests: $why_not"; exit 1; }
  announce_localstack
fi

# Everything that needs the network happens before the namespace: the LocalStack image (pulled, or
# made from PyPI), the service image and podman-compose for the container tests. With the whole suite
# this runs beside the unit tests (a cold LocalStack image takes about two minutes).
if [ "$runtime" = podman ]; then
  prepare_log="$(mktemp "${TMPDIR:-/tmp}/s3cc-test-prepare.XXXXXX")"
  # Its own process group, so the exit trap can stop all of it (podman build included).
  setsid -w bash -c 'bash docker/localstack/build-image.sh && bash docker/podman-compose.sh --prepare' >"$prepare_log" 2>&1 &
  prepare_pid=$!
fi

if [ "$mode" = all ]; then
  run_group unit S3CC_TEST_EMULATOR=none -- "${unit_files[@]}"
fi

if [ "$runtime" = podman ]; then
  if ! wait "$prepare_pid"; then
    prepare_pid=""
    tail -n 40 "$prepare_log" >&2
    log "making the images for the LocalStack tests failed (above)"
    exit 1
  fi
  prepare_pid=""
  grep -E '^(localstack-image|podman-build|podman-compose.sh):' "$prepare_log" >&2 || true
  rm -f "$prepare_log"
  ryuk_or_not
  start_podman_service
  netns_exec=(nsenter "--net=/run/netns/$netns")
  runtime_env=("DOCKER_HOST=unix://$socket_dir/podman.sock" TESTCONTAINERS_HOST_OVERRIDE=localhost)
  log "podman system service in network namespace $netns (loopback only)"
elif [ "$runtime" = engine ]; then
  runtime_env=()
fi

# ---- the emulator-backed groups ----------------------------------------------------------------------

if [ "$runtime" = none ]; then
  # CI must prove the LocalStack path (.ci/run installs podman); a silent fall-back would hide its loss.
  [ "${CI:-}" != true ] || { log "CI=true, but LocalStack cannot run: $why_not"; exit 1; }
  log "$why_not: the emulator-backed files run against moto"
  echo "emulator: moto server (no container runtime)"
  netns_exec=()
  run_group moto S3CC_TEST_EMULATOR=moto -- "${emulator_files[@]}" "${moto_files[@]}"
else
  announce_localstack
  run_group localstack S3CC_TEST_EMULATOR=localstack "S3CC_TEST_RUN=$run_id" "${runtime_env[@]}" \
    "TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-false}" -- "${emulator_files[@]}"
  if [ "$mode" = all ]; then
    echo "emulator: moto server (fault-proxy reliability tests)"
    netns_exec=()
    run_group moto S3CC_TEST_EMULATOR=moto -- "${moto_files[@]}"
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
