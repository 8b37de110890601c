#!/usr/bin/env bash
# Builds the tiny test image `garage-test/busybox:1` offline, from Debian's
# busybox-static package (no registry needed). Idempotent: does nothing when
# the image already exists. Set FORCE=1 to rebuild.
#
#   docker/test-image.sh            # build if missing
#   FORCE=1 docker/test-image.sh    # rebuild
set -euo pipefail

IMAGE="${GARAGE_TEST_IMAGE:-garage-test/busybox:1}"
APPLETS=(sh sleep httpd wget nc true false cat echo ls env kill ps)

step() { printf '==> test-image: %s\n' "$*"; }

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  step "$IMAGE already exists, nothing to do"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "downloading Debian's busybox-static into $work"
deb=""
if ls /var/cache/apt/archives/busybox-static_*.deb >/dev/null 2>&1; then
  deb="$(ls /var/cache/apt/archives/busybox-static_*.deb | head -n1)"
  step "using cached $deb"
else
  (cd "$work" && apt-get -o APT::Sandbox::User=root download busybox-static >/dev/null) || {
    echo "test-image: 'apt-get download busybox-static' failed; run 'apt-get update' and retry" >&2
    exit 1
  }
  deb="$(ls "$work"/busybox-static_*.deb | head -n1)"
fi

step "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$work/pkg"
root="$work/rootfs"
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www"
cp "$work/pkg/bin/busybox" "$root/bin/busybox"
for applet in "${APPLETS[@]}"; do
  ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
echo 'garage test image' >"$root/www/index.html"
chmod 1777 "$root/tmp"

step "importing into the engine as $IMAGE"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'CMD ["sh"]' \
  - "$IMAGE" >/dev/null

step "checking: docker run --rm $IMAGE true"
docker run --rm "$IMAGE" true
step "built $IMAGE"
