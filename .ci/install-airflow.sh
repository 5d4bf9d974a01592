#!/usr/bin/env bash
# Install Apache Airflow for the Airflow operators' tests (tests/airflow/) in a virtualenv of
# its own, ${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}/airflow-venv: Airflow pins many packages
# (SQLAlchemy 1.4, Flask 2.2, …) that must not leak into the dashboard's .venv.
#
# It gets requirements-airflow.txt under .ci/airflow-constraints.txt, plus the executor's own
# runtime packages at requirements.txt's pins (the operators import executor.api_client and
# executor.spec; the checkout goes on PYTHONPATH, it is not installed).
#
# Idempotent: a stamp, written once `airflow version` has run, records what was installed;
# when it matches, this returns at once without touching pip.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR=${FILPLUS_TOOLS_DIR:-$HOME/.cache/filplus}
VENV=$TOOLS_DIR/airflow-venv
STAMP=$VENV/.filplus-installed
EXECUTOR_PACKAGES='httpx|py-cid|py-multibase|py-multihash|py-multicodec|base58|cbor2|wasmtime'

# Airflow 2.10 supports Python 3.8 to 3.12; the pins in .ci/airflow-constraints.txt are 3.11's.
python=${FILPLUS_AIRFLOW_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ]; then
  echo "airflow: no python3.11 or python3 on PATH" >&2
  exit 1
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$version" in
  3.9|3.10|3.11|3.12) ;;
  *) echo "airflow: Airflow 2.10 needs Python 3.9 to 3.12, $python is $version" >&2; exit 1 ;;
esac

executor_pins=$(grep -E "^($EXECUTOR_PACKAGES)==" requirements.txt)
key=$({ cat requirements-airflow.txt .ci/airflow-constraints.txt
        echo "$executor_pins"; echo "python $version"; } | sha256sum | cut -c1-32)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ] \
   && installed=$("$VENV/bin/python" -c \
        'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null); then
  echo "airflow: $VENV is up to date (Airflow $installed)"
  exit 0
fi

start=$(date +%s)
# A venv made by another Python is remade; otherwise pip brings it up to the pins in place.
if [ -x "$VENV/bin/python" ] \
   && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$version" ]; then
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$TOOLS_DIR"
  "$python" -m venv "$VENV"
fi
rm -f "$STAMP"
echo "airflow: installing requirements-airflow.txt into $VENV"
pins_file=$(mktemp)
trap 'rm -f "$pins_file"' EXIT
echo "$executor_pins" > "$pins_file"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  -r requirements-airflow.txt -c .ci/airflow-constraints.txt -r "$pins_file" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$VENV/bin/airflow" version >/dev/null
echo "$key" > "$STAMP"
echo "airflow: Airflow $("$VENV/bin/airflow" version 2>/dev/null) installed in $(( $(date +%s) - start )) s"
