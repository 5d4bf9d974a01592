#!/usr/bin/env bash
# Install @web3-storage/data-segment, an independent JavaScript implementation of Filecoin
# piece commitments, that the CommP tests use as an oracle for executor/commp.py.
# Idempotent: a second run with the same version installed does nothing.
set -euo pipefail

VERSION=5.3.0
DEST=${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/node-oracles
STAMP=$DEST/node_modules/@web3-storage/data-segment/package.json

if ! command -v npm >/dev/null 2>&1; then
  echo "node oracles: installing nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ -f "$STAMP" ] && [ "$(node -p "require('$STAMP').version")" = "$VERSION" ]; then
  echo "node oracles: @web3-storage/data-segment $VERSION already in $DEST"
  exit 0
fi
mkdir -p "$DEST"
cd "$DEST"
[ -f package.json ] || npm init -y >/dev/null
echo "node oracles: installing @web3-storage/data-segment@$VERSION into $DEST"
npm install --no-audit --no-fund --silent "@web3-storage/data-segment@$VERSION"
