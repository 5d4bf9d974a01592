#!/usr/bin/env bash
# Install Bacalhau's published Airflow provider (requirements-bacalhau-airflow.txt) with
# Apache Airflow into ${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/bacalhau-airflow-venv, a
# virtualenv of its own: its pins clash with ours and with our Airflow venv's.
#
# Idempotent: a stamp records what was installed; when it matches, this returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR=${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}
VENV=$TOOLS_DIR/bacalhau-airflow-venv
STAMP=$VENV/.filplus-installed
python=${FILPLUS_AIRFLOW_PYTHON:-$(command -v python3.11 || command -v python3)}
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$({ cat requirements-bacalhau-airflow.txt .ci/airflow-constraints.txt; echo "python $version"; } \
      | sha256sum | cut -c1-32)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ] && [ -x "$VENV/bin/airflow" ]; then
  echo "bacalhau-airflow: $VENV is up to date"
  exit 0
fi
start=$(date +%s)
rm -rf "$VENV"
mkdir -p "$TOOLS_DIR"
"$python" -m venv "$VENV"
# The bundled pip 23.2 backtracks over these pins for minutes; a current pip does not.
"$VENV/bin/pip" install --quiet --disable-pip-version-check -U pip \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
grep -v -i -E '^(certifi|pygments|cryptography)==' .ci/airflow-constraints.txt > "$constraints"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  -r requirements-bacalhau-airflow.txt -c "$constraints" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
BACALHAU_DIR=$(mktemp -d) "$VENV/bin/python" -c \
  'import bacalhau_airflow.operators, bacalhau_sdk.api' >/dev/null 2>&1
echo "$key" > "$STAMP"
echo "bacalhau-airflow: installed in $VENV in $(( $(date +%s) - start )) s"
