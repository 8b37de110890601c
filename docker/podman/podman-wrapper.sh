#!/bin/sh
# `podman` on PATH inside garage/podman: runs the real /usr/bin/podman.
#
# When it starts the API service (the container's main process) it first
# drops runtime state left by an earlier run of this container: Docker keeps
# /run across `docker start`, so podman would otherwise believe the old
# containers still run (stale network namespaces, "unknown FS magic") instead
# of refreshing its state as after a reboot.
#
# When the node passes GPUs in (the agent sets ENABLE_GPU=true) and the
# NVIDIA Container Toolkit is installed, it also writes the CDI spec once so
# jobs can ask for `nvidia.com/gpu=all` or a single index.
if [ "${1:-}" = "system" ] && [ "${2:-}" = "service" ]; then
  rm -rf /run/libpod /run/containers /run/netns /run/crun /podman/podman.sock
  if [ "${ENABLE_GPU:-}" = "true" ] && command -v nvidia-ctk >/dev/null 2>&1 \
     && [ ! -s /etc/cdi/nvidia.yaml ]; then
    mkdir -p /var/run/cdi
    nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml >&2 \
      || echo "garage/podman: nvidia-ctk cdi generate failed; GPU jobs will not get devices" >&2
  fi
fi
exec /usr/bin/podman "$@"
