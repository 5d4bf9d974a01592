#!/usr/bin/env bash
# Install independent JavaScript implementations that tests use as oracles:
# @web3-storage/data-segment (Filecoin piece commitments) for executor/commp.py, and
# ipfs-unixfs-importer (UnixFS with Kubo's defaults, HAMT sharding included) for the
# embedded store's directory CIDs.
# Idempotent: a second run with the same version installed does nothing.
set -euo pipefail

VERSION=5.3.0
IMPORTER=17.1.1
BLOCKSTORE=7.0.1
DEST=${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/node-oracles
STAMP=$DEST/node_modules/@web3-storage/data-segment/package.json
IMPORTER_STAMP=$DEST/node_modules/ipfs-unixfs-importer/package.json

if ! command -v npm >/dev/null 2>&1; then
  echo "node oracles: installing nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
installed() { [ -f "$1" ] && [ "$(node -p "require('$1').version")" = "$2" ]; }
if installed "$STAMP" "$VERSION" && installed "$IMPORTER_STAMP" "$IMPORTER"; then
  echo "node oracles: data-segment $VERSION and ipfs-unixfs-importer $IMPORTER already in $DEST"
  exit 0
fi
mkdir -p "$DEST"
cd "$DEST"
[ -f package.json ] || npm init -y >/dev/null
echo "node oracles: installing data-segment $VERSION and ipfs-unixfs-importer $IMPORTER into $DEST"
npm install --no-audit --no-fund --silent "@web3-storage/data-segment@$VERSION" \
  "ipfs-unixfs-importer@$IMPORTER" "blockstore-core@$BLOCKSTORE"
