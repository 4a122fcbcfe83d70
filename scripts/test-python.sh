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

SERVER_LOG="$(mktemp)"
SERVER_OUT="$(mktemp)"
"$LIBDIR/tokenkeeper-server" --addr 127.0.0.1:0 --no-rate-limit >"$SERVER_OUT" 2>"$SERVER_LOG" &
SERVER_PID=$!
cleanup() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    rm -f "$SERVER_LOG" "$SERVER_OUT"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    [[ -s "$SERVER_OUT" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; fail "tokenkeeper-server exited"; }
    sleep 0.1
done
banner="$(head -n1 "$SERVER_OUT")"
[[ -n "$banner" ]] || fail "tokenkeeper-server printed no banner"
export TK_SERVER_URL="$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["listening"])' "$banner")"
export TK_ADMIN_KEY="$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["admin_key"])' "$banner")"

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
