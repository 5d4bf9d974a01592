# Shared by the .ci/install-*.sh scripts (sourced, not run).

# missing_debs PKG...: set MISSING to those of the Debian packages that are not installed.
missing_debs() {
  MISSING=()
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || MISSING+=("$pkg")
  done
}

# need_root LABEL: installing needs root; say what is missing and stop otherwise.
need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1: missing ${MISSING[*]}; run this script as root" >&2
    exit 1
  fi
}
