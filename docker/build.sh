#!/usr/bin/env bash
# Builds Garage AI's images: garage/podman:0.1 (the Podman-in-Docker job
# host) and garage/worker:0.1 (the `garage` binary). Idempotent: an image
# that exists is skipped unless FORCE=1; the podman image is rebuilt when
# docker/podman/ changed, the worker image when the garage binary differs
# from the one it holds.
#
# When debian:bookworm-slim is missing and cannot be pulled (no registry
# reachable), it is made offline from Debian's packages with debootstrap and
# `docker import`, and the script says so.
#
#   docker/build.sh            # both images
#   docker/build.sh podman     # one of them
#   FORCE=1 docker/build.sh    # rebuild even when present
#   WITH_NVIDIA_TOOLKIT=1 docker/build.sh podman   # GPU host with internet
#   GARAGE_BIN=path/to/garage docker/build.sh worker
#   BASE_IMAGE=debian:bookworm-slim docker/build.sh   # the base (made offline when missing)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
base="${BASE_IMAGE:-debian:bookworm-slim}"
podman_tag="${PODMAN_IMAGE:-garage/podman:0.1}"
worker_tag="${WORKER_IMAGE:-garage/worker:0.1}"
force="${FORCE:-0}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(podman worker)

cleanup=()
trap 'for d in "${cleanup[@]+"${cleanup[@]}"}"; do rm -rf "$d"; done' EXIT

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() { printf '    FAILED: %s\n    fix: %s\n' "$1" "$2" >&2; exit 1; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this host's apt uses (deb822 or one-line format).
debian_mirror() {
  local uri
  uri="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
           | awk '{print $2}' | grep -v security | head -n1 || true)"
  if [ -z "$uri" ]; then
    uri="$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
             | grep -v security | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}' | head -n1 || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_base() {
  step "base image $base"
  if have_image "$base"; then ok "present"; return; fi
  echo "    not present; trying to pull it"
  if timeout 60 docker pull "$base"; then ok "pulled"; return; fi
  echo "    cannot pull $base (no registry reachable): making it offline from Debian's packages"
  command -v debootstrap >/dev/null \
    || fail "debootstrap is not installed" "apt-get install -y debootstrap"
  local mirror rootfs
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d /tmp/garage-rootfs.XXXXXX)"
  cleanup+=("$rootfs")
  echo "    debootstrap --variant=minbase bookworm $rootfs $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
    | sed -u 's/^/    debootstrap: /' \
    || fail "debootstrap failed" "check that $mirror is reachable (apt-get update works)"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$base" >/dev/null
  ok "made $base offline with debootstrap ($mirror) + docker import"
}

build_podman() {
  step "image $podman_tag"
  # Labelled with the digest of docker/podman/: an image built from other
  # files (an older wrapper or containers.conf) is rebuilt.
  local digest
  digest="$(cd "$here/podman" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  if have_image "$podman_tag" && [ "$force" != 1 ] \
     && [ "$(docker image inspect -f '{{index .Config.Labels "ai.garage.context-sha256"}}' "$podman_tag")" = "$digest" ]; then
    ok "present, same docker/podman files (FORCE=1 rebuilds)"
    return
  fi
  ensure_base
  local nvidia="${WITH_NVIDIA_TOOLKIT:-0}"
  if [ "$nvidia" != 1 ]; then
    echo "    NVIDIA Container Toolkit: left out (offline build; WITH_NVIDIA_TOOLKIT=1 adds it on a GPU host with internet)"
  fi
  docker build --build-arg "BASE_IMAGE=$base" --build-arg "WITH_NVIDIA_TOOLKIT=$nvidia" \
    --label "ai.garage.context-sha256=$digest" -t "$podman_tag" "$here/podman"
  ok "built $podman_tag"
}

build_worker() {
  step "image $worker_tag"
  local target="${CARGO_TARGET_DIR:-$repo/target}" bin="${GARAGE_BIN:-}"
  if [ -z "$bin" ]; then
    # The newer of the release and debug builds: a stale release binary must
    # not win over the debug build just made.
    for candidate in "$target/release/garage" "$target/debug/garage"; do
      if [ -x "$candidate" ] && { [ -z "$bin" ] || [ "$candidate" -nt "$bin" ]; }; then
        bin="$candidate"
      fi
    done
  fi
  [ -n "$bin" ] && [ -x "$bin" ] \
    || fail "no garage binary in $target/release or $target/debug" "run \`cargo build --release\` first (or set GARAGE_BIN)"
  # The image is labelled with its binary's digest: the same binary skips
  # the build, a new one rebuilds it.
  local digest
  digest="$(sha256sum "$bin" | cut -d' ' -f1)"
  if have_image "$worker_tag" && [ "$force" != 1 ] \
     && [ "$(docker image inspect -f '{{index .Config.Labels "ai.garage.binary-sha256"}}' "$worker_tag")" = "$digest" ]; then
    ok "present, same binary (FORCE=1 rebuilds)"
    return
  fi
  ensure_base
  local context
  context="$(mktemp -d /tmp/garage-worker-ctx.XXXXXX)"
  cleanup+=("$context")
  cp "$here/worker/Dockerfile" "$context/"
  cp "$bin" "$context/garage"
  echo "    binary: $bin"
  docker build --build-arg "BASE_IMAGE=$base" --label "ai.garage.binary-sha256=$digest" -t "$worker_tag" "$context"
  ok "built $worker_tag"
}

docker info >/dev/null 2>&1 \
  || fail "the Docker engine does not answer" "start it (systemctl start docker, or dockerd &)"
for t in "${targets[@]}"; do
  case "$t" in
    podman) build_podman ;;
    worker) build_worker ;;
    *) fail "unknown image \`$t\`" "use podman or worker" ;;
  esac
done
step "done: ${targets[*]}"
