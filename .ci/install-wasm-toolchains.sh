#!/usr/bin/env bash
# Install the compilers that build the test suite's WASM fixtures from source
# (tests/executor/wasm_src): clang-14 + wasi-libc for C, Debian's rustc + its wasm32-wasi std
# for Rust. Idempotent: only missing packages are installed, and when all are present it
# returns at once without touching apt.
#
# Debian's rustc (1.63) is used rather than rustup's because rustup cannot download the
# wasm32 std offline; rustup's rustc comes first on PATH, so builds call /usr/bin/rustc.
set -euo pipefail

. "$(dirname "$0")/debian.sh"
missing_debs clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 rustc libstd-rust-dev-wasm32

if [ "${#MISSING[@]}" -eq 0 ]; then
  echo "wasm toolchains: all present"
  exit 0
fi

need_root "wasm toolchains"

echo "wasm toolchains: installing ${MISSING[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
echo "wasm toolchains: installed"
