#!/usr/bin/env bash
# Install what the Docker engine's tests need: the Docker daemon from
# Debian (docker.io: dockerd, containerd, runc), busybox-static for the tiny test image and
# debootstrap for the Debian + python3 image. Idempotent: when all are present it returns at
# once without touching apt. The tests start their own private dockerd; this script starts
# nothing.
set -euo pipefail

. "$(dirname "$0")/debian.sh"
missing_debs docker.io busybox-static debootstrap

if [ "${#MISSING[@]}" -eq 0 ]; then
  echo "docker: all present"
  exit 0
fi

need_root "docker"

echo "docker: installing ${MISSING[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101: the package's init scripts must not start a system-wide dockerd here.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
echo "docker: installed"
