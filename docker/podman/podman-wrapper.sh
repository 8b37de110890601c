#!/bin/sh
# `podman` on PATH inside garage/podman: runs the real /usr/bin/podman.
#
# When it starts the API service (the container's main process) it first
# drops runtime state left by an earlier run of this container: Docker keeps
# /run across `docker start`, so podman would otherwise believe the old
# containers still run (stale network namespaces, "unknown FS magic") instead
# of refreshing its state as after a reboot.
#
# It then decides whether podman can manage cgroups for the jobs (and so
# enforce their memory, CPU and pids limits): only on a writable cgroup v2
# tree with those controllers. It sets `cgroups` in containers.conf to match
# and writes the verdict, one line `enforced: …` or `not enforced: …`, to
# /podman/limits next to the API socket, where the node's job runner reads it
# and copies it into every job report.
#
# When the node passes GPUs in (the agent sets ENABLE_GPU=true) and the
# NVIDIA Container Toolkit is installed, it also writes the CDI spec once so
# jobs can ask for `nvidia.com/gpu=all` or a single index.

cgroup_root=/sys/fs/cgroup

# Prints the verdict; succeeds when podman can manage cgroups.
cgroup_verdict() {
  if [ "$(stat -fc %T "$cgroup_root" 2>/dev/null)" != cgroup2fs ]; then
    echo "not enforced: cgroup v1 read-only on this host (podman runs jobs without cgroups of its own; only the podman container's limits apply)"
    return 1
  fi
  # Docker mounts a container's cgroup v2 tree read-only unless privileged;
  # with CAP_SYS_ADMIN it can be made writable, as docker-in-docker does.
  if [ ! -w "$cgroup_root/cgroup.subtree_control" ]; then
    mount -o remount,rw "$cgroup_root" 2>/dev/null
  fi
  if ! mkdir -p "$cgroup_root/garage-podman" 2>/dev/null; then
    echo "not enforced: the cgroup v2 tree is read-only inside the podman container (run it privileged, or give it CAP_SYS_ADMIN)"
    return 1
  fi
  # cgroup v2 lets a cgroup hand controllers to children only while no
  # process sits in it: move this container's processes into a leaf first.
  while read -r pid; do
    echo "$pid" > "$cgroup_root/garage-podman/cgroup.procs" 2>/dev/null || :
  done < "$cgroup_root/cgroup.procs"
  missing=""
  for controller in memory cpu pids; do
    if ! grep -qw "$controller" "$cgroup_root/cgroup.controllers" \
       || ! echo "+$controller" > "$cgroup_root/cgroup.subtree_control" 2>/dev/null; then
      missing="$missing $controller"
    fi
  done
  if [ -n "$missing" ]; then
    echo "not enforced: the cgroup v2 controller(s)$missing are not delegated to the podman container"
    return 1
  fi
  echo "enforced: cgroup v2; podman applies each job's memory, CPU and pids limits"
}

if [ "${1:-}" = "system" ] && [ "${2:-}" = "service" ]; then
  rm -rf /run/libpod /run/containers /run/netns /run/crun /podman/podman.sock
  if verdict="$(cgroup_verdict)"; then mode=enabled; else mode=disabled; fi
  sed -i -E "s/^cgroups = \"(enabled|disabled)\"/cgroups = \"$mode\"/" /etc/containers/containers.conf
  echo "$verdict" > /podman/limits
  echo "garage/podman: resource limits $verdict" >&2
  if [ "${ENABLE_GPU:-}" = "true" ] && command -v nvidia-ctk >/dev/null 2>&1 \
     && [ ! -s /etc/cdi/nvidia.yaml ]; then
    mkdir -p /var/run/cdi
    nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml >&2 \
      || echo "garage/podman: nvidia-ctk cdi generate failed; GPU jobs will not get devices" >&2
  fi
fi
exec /usr/bin/podman "$@"
