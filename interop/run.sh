#!/usr/bin/env bash
# Runs the Python interop suite: real Triton/KServe clients and perf_analyzer against Slipway.
#
#   bash interop/run.sh                 # set up interop/.venv if needed, build, run pytest
#   bash interop/run.sh -k grpc -x      # extra arguments go to pytest
#   bash interop/run.sh --install-only  # only set up interop/.venv
#
# The venv is rebuilt when requirements.txt or this script changes (a hash is kept in it).
# SLIPWAY_PYTHON picks the interpreter (default python3.11); SLIPWAY_INTEROP_NO_BUILD=1 skips
# `npm run build`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
python="${SLIPWAY_PYTHON:-python3.11}"

# perf_analyzer: the `perf-analyzer` wheels on PyPI need glibc >= 2.38 (Ubuntu 24.04 builds).
# tritonclient 2.51.0 is the last wheel that bundles a perf_analyzer built against glibc 2.35;
# it links libb64 (Debian package libb64-0d) and libcudart (the nvidia-cuda-runtime-cu12
# wheel), which are unpacked beside it rather than installed system-wide.
PA_TRITONCLIENT_VERSION=2.51.0
PA_CUDART_VERSION=12.9.79

log() { printf 'interop: %s\n' "$*" >&2; }

wheel_platform() {
  case "$(uname -m)" in
    x86_64) echo manylinux1_x86_64 ;;
    aarch64) echo manylinux2014_aarch64 ;;
    *) log "no perf_analyzer build for $(uname -m)"; return 1 ;;
  esac
}

install_perf_analyzer() {
  local dest="$venv/libexec/perf_analyzer" tmp
  tmp="$(mktemp -d)"
  mkdir -p "$dest/lib"
  "$venv/bin/pip" download -q --no-deps --only-binary=:all: --platform "$(wheel_platform)" \
    -d "$tmp/whl" "tritonclient==$PA_TRITONCLIENT_VERSION"
  "$venv/bin/python" - "$tmp/whl" "$dest" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("tritonclient-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/data/bin/perf_analyzer"))
    target = pathlib.Path(sys.argv[2]) / "perf_analyzer"
    target.write_bytes(z.read(name))
    target.chmod(0o755)
PY
  "$venv/bin/pip" install -q --no-deps --target "$tmp/cudart" "nvidia-cuda-runtime-cu12==$PA_CUDART_VERSION"
  cp "$(find "$tmp/cudart" -name 'libcudart.so.12' | head -n 1)" "$dest/lib/"
  if ! ldconfig -p 2>/dev/null | grep -q 'libb64\.so\.0d'; then
    (cd "$tmp" && { apt-get download libb64-0d >/dev/null 2>&1 || { apt-get update -qq && apt-get download libb64-0d; }; })
    dpkg-deb -x "$tmp"/libb64-0d_*.deb "$tmp/b64"
    cp "$(find "$tmp/b64" -name 'libb64.so.0d' | head -n 1)" "$dest/lib/"
  fi
  cat >"$venv/bin/perf_analyzer" <<'SH'
#!/bin/sh
d="$(cd "$(dirname "$0")/../libexec/perf_analyzer" && pwd)"
LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/perf_analyzer" "$@"
SH
  chmod +x "$venv/bin/perf_analyzer"
  rm -rf "$tmp"
  "$venv/bin/perf_analyzer" --version >/dev/null 2>&1
}

setup_venv() {
  local want
  want="$(cat "$here/requirements.txt" "$here/run.sh" | sha256sum | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && "$(cat "$venv/.slipway-hash" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  log "creating $venv with $("$python" --version)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  install_perf_analyzer
  echo "$want" >"$venv/.slipway-hash"
}

setup_venv
if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi

cd "$root"
if [[ "${SLIPWAY_INTEROP_NO_BUILD:-}" != "1" ]]; then
  npm run build --silent
fi

# Fail rather than skip when a tool the suite needs is missing.
export SLIPWAY_INTEROP_STRICT=1
export PATH="$venv/bin:$PATH"
set +e
"$venv/bin/python" -m pytest interop -q "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  log "pytest collected no tests"
  exit 1
fi
exit $rc
