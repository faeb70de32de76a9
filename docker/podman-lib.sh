# Shared by the podman scripts (sourced, not run): installs and configures podman on a machine with
# no Docker engine and no registry, and makes cached Debian root filesystems with debootstrap.
# The sourcing script sets `log_name` (its log prefix) and `root` (the repository) first.
#
# Settings (environment): DEBIAN_MIRROR (default: the one apt uses), S3CC_CACHE_DIR (default
# .cache/container), NODE_EXTRA_CA_CERTS (passed to image builds as the extra_ca build secret).

cache="${S3CC_CACHE_DIR:-$root/.cache/container}"
containers_conf=/etc/containers/containers.conf
conf_marker='# written by s3-csv-converter docker/podman-build.sh'

# Temporary directories the script made; removed on exit.
cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

log() { printf '%s: %s\n' "${log_name:-podman}" "$*" >&2; }
die() { log "$*"; exit 1; }

# Installs the Debian packages behind the given commands when a command is missing (as root, with apt).
#   ensure_commands podman runc [debootstrap]
ensure_commands() {
  local missing=() command
  for command in "$@"; do command -v "$command" >/dev/null || missing+=("$command"); done
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

# A minimal Debian root filesystem as a tarball, made once by debootstrap and cached (~30 s);
# sets rootfs_tarball to its path.
#   debian_rootfs bookworm                     # .cache/container/debian-bookworm-minbase.tar
#   debian_rootfs trixie python3,python3-venv  # .cache/container/debian-trixie-minbase+python3+python3-venv.tar
rootfs_tarball=
debian_rootfs() {
  local suite="$1" include="${2:-}" name tarball dir mirror
  name="debian-$suite-minbase${include:++${include//,/+}}"
  tarball="$cache/$name.tar"
  rootfs_tarball="$tarball"
  if [ ! -s "$tarball" ]; then
    dir="$(mktemp -d "$cache/rootfs.XXXXXX")"
    cleanup+=("$dir")
    mirror="$(debian_mirror)"
    log "debootstrap --variant=minbase${include:+ --include=$include} $suite from $mirror"
    debootstrap --variant=minbase ${include:+"--include=$include"} "$suite" "$dir" "$mirror" >"$cache/debootstrap-$name.log" 2>&1 \
      || die "debootstrap failed; see $cache/debootstrap-$name.log"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/man/* "$dir"/usr/share/doc/*
    tar -C "$dir" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
  fi
}

# `podman build` arguments passing the machine's extra CA as the build secret `extra_ca`: a RUN step
# mounts it for its own duration, and it never lands in a layer.
extra_ca_secret=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
  extra_ca_secret=(--secret "id=extra_ca,src=$NODE_EXTRA_CA_CERTS")
fi

# One image build at a time per cache: two runs would otherwise both debootstrap and both import.
lock_cache() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
}
