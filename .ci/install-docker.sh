#!/usr/bin/env bash
# Install what the Docker engine's tests need (PLATFORM.md §2): the Docker daemon from
# Debian (docker.io: dockerd, containerd, runc), busybox-static for the tiny test image and
# debootstrap for the Debian + python3 image. Idempotent: when all are present it returns at
# once without touching apt. The tests start their own private dockerd; this script starts
# nothing.
set -euo pipefail

packages=(docker.io busybox-static debootstrap)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "docker: all present"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "docker: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "docker: installing ${missing[*]}"
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
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "docker: installed"
