#!/usr/bin/env bash
# Install the js-ipfs daemon (npm ipfs@0.66.1) that the IPFS integration tests start.
#
# Kubo itself cannot be installed here (its npm package downloads from github.com), so the
# tests run against js-ipfs, which serves the same /api/v0 RPC.
# Idempotent: a second run with the same version installed does nothing.
#
# Installs into ${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/jsipfs:
#   node_modules/.bin/jsipfs   the daemon
#   withresolvers.cjs          Promise.withResolvers for Node < 22 (load with NODE_OPTIONS=--require)
set -euo pipefail

JSIPFS_VERSION=0.66.1
TOOLS_DIR=${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}
DEST=$TOOLS_DIR/jsipfs
POLYFILL=$DEST/withresolvers.cjs
STAMP=$DEST/node_modules/ipfs/package.json

write_polyfill() {
  # it-queue (pulled in by mortice) calls Promise.withResolvers, which Node 20 lacks.
  cat >"$POLYFILL" <<'JS'
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
JS
}

installed_version() {
  [ -f "$STAMP" ] && [ -x "$DEST/node_modules/.bin/jsipfs" ] || return 1
  node -p "require('$STAMP').version" 2>/dev/null
}

if command -v node >/dev/null 2>&1 && [ "$(installed_version || true)" = "$JSIPFS_VERSION" ]; then
  [ -f "$POLYFILL" ] || write_polyfill
  echo "js-ipfs $JSIPFS_VERSION already installed in $DEST"
  exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

echo "installing js-ipfs $JSIPFS_VERSION into $DEST with node $(node --version), npm $(npm --version)"
echo "(about 3 minutes and 290 MB the first time)"
mkdir -p "$DEST"
write_polyfill
cd "$DEST"
[ -f package.json ] || echo '{"name": "filplus-jsipfs", "private": true}' >package.json
npm install --no-audit --no-fund --loglevel=error "ipfs@$JSIPFS_VERSION"

# Smoke test: the CLI loads (this is where a missing polyfill would show).
NODE_OPTIONS="--require $POLYFILL" node node_modules/.bin/jsipfs --version >/dev/null
echo "js-ipfs $(installed_version) installed: $DEST/node_modules/.bin/jsipfs"
