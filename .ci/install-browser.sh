#!/usr/bin/env bash
# Install the headless browser the moderator pages' end-to-end tests drive (tests/e2e):
# Debian's chromium, used by Python Playwright (from requirements-dev.txt)
# through executable_path=/usr/lib/chromium/chromium, so Playwright downloads no browser.
# fonts-dejavu-core gives the screenshots readable text. Idempotent: when all are present it
# returns at once without touching apt.
set -euo pipefail

. "$(dirname "$0")/debian.sh"
missing_debs chromium fonts-dejavu-core

if [ "${#MISSING[@]}" -eq 0 ]; then
  echo "browser: all present ($(/usr/lib/chromium/chromium --version))"
  exit 0
fi

need_root "browser"

echo "browser: installing ${MISSING[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
echo "browser: $(/usr/lib/chromium/chromium --version)"
