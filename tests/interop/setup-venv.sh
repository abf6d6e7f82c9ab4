#!/usr/bin/env bash
# Creates (or refreshes) the Python virtualenv the interop tests run: the real
# `followthemoney` package from PyPI, pinned in requirements.txt. Idempotent: a venv
# whose stamp matches requirements.txt is left as it is. Prints the venv's python.
# Usage: tests/interop/setup-venv.sh [VENV_DIR]   (default: target/interop-venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${1:-$root/target/interop-venv}"
req="$here/requirements.txt"
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  echo "$venv/bin/python"
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
"$venv/bin/python" -c "import followthemoney, requests" >&2
cp "$req" "$stamp"
echo "$venv/bin/python"
