#!/usr/bin/env bash
# The official WASI test suite (WebAssembly/wasi-testsuite, branch prod/testsuite-base: its
# prebuilt wasm32-wasip1 tests in C, Rust and AssemblyScript) for tests/executor/test_wasi_suite.py.
# Another project's files: fetched into the tools folder, never committed. Without github.com
# the test skips and says so; nothing else depends on the suite.
# Idempotent: a second run with the suite in place does nothing.
set -uo pipefail

DEST=${WASI_TESTSUITE:-${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/wasi-testsuite}
if [ -d "$DEST/tests" ]; then
  echo "wasi-testsuite: already at $DEST"
  exit 0
fi
if ! command -v git >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if timeout 300 git clone --quiet --depth 1 --branch prod/testsuite-base \
  https://github.com/WebAssembly/wasi-testsuite "$work/suite"; then
  mkdir -p "$(dirname "$DEST")"
  rm -rf "$DEST"
  mv "$work/suite" "$DEST"
  echo "wasi-testsuite: installed at $DEST"
else
  echo "wasi-testsuite: github.com could not be reached; tests/executor/test_wasi_suite.py" \
    "will skip, saying so" >&2
fi
