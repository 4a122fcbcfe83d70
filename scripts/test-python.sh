#!/usr/bin/env bash
# Runs the Python binding tests (pytest) against the reference backend over loopback:
#   1. installs pytest with pip when missing,
#   2. builds the cdylib (tokenkeeper-uniffi) and the backend (tokenkeeper-server),
#   3. copies the library beside the generated module (python/tokenkeeper/, gitignored),
#   4. starts the backend on 127.0.0.1 (ephemeral port) and runs pytest.
# Prints pytest's summary ("N passed") and exits non-zero on any failure.
#
# Usage: scripts/test-python.sh [--bench] [pytest args…]  (--bench: also time `current()`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH=0
if [[ "${1:-}" == "--bench" ]]; then BENCH=1; shift; fi

fail() { echo "python: FAILED: $*" >&2; exit 1; }
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || fail "$PY not found"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "Python 3.9+ required"
if ! "$PY" -c 'import pytest' 2>/dev/null; then
    echo "python: installing pytest" >&2
    "$PY" -m pip install --quiet "pytest>=7,<9" || fail "pip install pytest"
fi

echo "python: building tokenkeeper-uniffi and tokenkeeper-server" >&2
cargo build --quiet -p tokenkeeper-uniffi --lib \
    || fail "cargo build -p tokenkeeper-uniffi"
cargo build --quiet -p tokenkeeper-server --bin tokenkeeper-server \
    || fail "cargo build -p tokenkeeper-server"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LIBDIR="$TARGET_DIR/debug"
case "$(uname -s)" in
    Darwin) LIBNAME="libtokenkeeper_uniffi.dylib" ;;
    *) LIBNAME="libtokenkeeper_uniffi.so" ;;
esac
[[ -f "$LIBDIR/$LIBNAME" ]] || fail "no $LIBDIR/$LIBNAME"
cp "$LIBDIR/$LIBNAME" python/tokenkeeper/

# Start the reference backend on an ephemeral loopback port.
source "$ROOT/scripts/lib/reference-server.sh"
start_reference_server "$LIBDIR/tokenkeeper-server" "$PY"

export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
if ((BENCH)); then
    # Timing against the optimised library (profile `release`), then back to the debug one.
    cargo build --quiet --release -p tokenkeeper-uniffi --lib || fail "cargo build --release"
    cp "$TARGET_DIR/release/$LIBNAME" python/tokenkeeper/
    "$PY" "$ROOT/python/bench_current.py"
    cp "$LIBDIR/$LIBNAME" python/tokenkeeper/
fi
cd "$ROOT/python"
"$PY" -m pytest -p no:cacheprovider -q "$@" tests
