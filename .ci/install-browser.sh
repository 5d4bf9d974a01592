#!/usr/bin/env bash
# Install the headless browser the moderator pages' end-to-end tests drive (tests/e2e,
# PLATFORM.md §5): Debian's chromium, used by Python Playwright (from requirements-dev.txt)
# through executable_path=/usr/lib/chromium/chromium, so Playwright downloads no browser.
# fonts-dejavu-core gives the screenshots readable text. Idempotent: when all are present it
# returns at once without touching apt.
set -euo pipefail

packages=(chromium fonts-dejavu-core)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "browser: all present ($(/usr/lib/chromium/chromium --version))"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "browser: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "browser: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "browser: $(/usr/lib/chromium/chromium --version)"
