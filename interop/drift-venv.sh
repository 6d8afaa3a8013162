#!/usr/bin/env bash
# Builds interop/.venv-drift (Evidently and the pandas 2 it needs) from interop/requirements-drift.txt,
# only when that file changed; prints the venv's python. Used by interop/test_drift.py and bench:drift.
#
#   bash interop/drift-venv.sh        # -> /…/interop/.venv-drift/bin/python
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-drift"
req="$here/requirements-drift.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$want" ]]; then
  printf 'interop: creating %s\n' "$venv" >&2
  rm -rf "$venv"
  "${SLIPWAY_PYTHON:-python3.11}" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" >"$venv/.requirements-sha256"
fi
echo "$venv/bin/python"
