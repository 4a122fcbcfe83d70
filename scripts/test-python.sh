#!/usr/bin/env bash
# Builds the Python wheel and runs the Python binding tests (pytest) against it:
#   1. installs maturin (scripts/setup-tools.sh),
#   2. builds the wheel with maturin's uniffi support (python/pyproject.toml) into
#      <target>/wheels, in the `dev` profile so that it reuses what `cargo test` compiled,
#   3. installs the wheel and pytest with pip into a fresh virtual environment
#      (<target>/python-venv) and checks that `import tokenkeeper` resolves to the installed
#      package at the workspace's version,
#   4. starts the reference backend on 127.0.0.1 (ephemeral port) and runs python/tests from
#      outside the source tree, so only the installed package can be imported.
# Prints pytest's summary ("N passed") and exits non-zero on any failure.
#
# Usage: scripts/test-python.sh [--bench] [pytest args…]
#   --bench: also build an optimised wheel (profile `release`) into a second fresh environment
#            and time `current()` through it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH=0
if [[ "${1:-}" == "--bench" ]]; then BENCH=1; shift; fi

fail() { echo "python: FAILED: $*" >&2; exit 1; }
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || fail "$PY not found"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "Python 3.9+ required"

setup_line="$("$ROOT/scripts/setup-tools.sh" | tail -n1)" || fail "scripts/setup-tools.sh"
TOOLS_VENV="$(sed -n 's/.* venv=\([^ ]*\).*/\1/p' <<<"$setup_line")"
MATURIN="$TOOLS_VENV/bin/maturin"
VERSION="$("$PY" "$ROOT/scripts/version.py")"

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
# maturin and the cargo commands share the workspace target directory.
export CARGO_TARGET_DIR="$TARGET_DIR"

echo "python: building tokenkeeper-server" >&2
cargo build --quiet -p tokenkeeper-server --bin tokenkeeper-server \
    || fail "cargo build -p tokenkeeper-server"

# build_wheel PROFILE OUTDIR: prints the path of the wheel it built.
build_wheel() {
    local profile=$1 out=$2
    rm -rf "$out"
    echo "python: maturin build --profile $profile (wheel of tokenkeeper-uniffi)" >&2
    # From python/: maturin reads pyproject.toml there (it names the crate's Cargo.toml).
    (cd "$ROOT/python" && "$MATURIN" build --quiet --profile "$profile" --out "$out") >&2 \
        || fail "maturin build --profile $profile"
    local wheels=("$out"/tokenkeeper-"$VERSION"-*.whl)
    [[ -f "${wheels[0]}" ]] || fail "no tokenkeeper-$VERSION wheel in $out: $(ls "$out")"
    echo "${wheels[0]}"
}

# fresh_venv DIR WHEEL: a new environment with the wheel (and pytest) installed by pip.
fresh_venv() {
    local dir=$1 wheel=$2
    rm -rf "$dir"
    "$PY" -m venv "$dir" || fail "$PY -m venv"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$wheel" "pytest>=7,<9" \
        || fail "pip install $(basename "$wheel") pytest"
    # From a directory outside the source tree: the import must find the installed package.
    local where
    where="$(cd "$TARGET_DIR" && "$dir/bin/python" -c 'import tokenkeeper, importlib.metadata as m; print(tokenkeeper.__file__, m.version("tokenkeeper"))')" \
        || fail "import tokenkeeper from $dir"
    [[ "$where" == "$dir"/lib/python*/site-packages/tokenkeeper/__init__.py\ "$VERSION" ]] \
        || fail "tokenkeeper imported as '$where', expected the installed $VERSION in $dir"
    echo "python: installed $(basename "$wheel") into $dir" >&2
}

WHEEL="$(build_wheel dev "$TARGET_DIR/wheels")"
VENV="$TARGET_DIR/python-venv"
fresh_venv "$VENV" "$WHEEL"
echo "python: wheel $(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KiB" >&2

# Start the reference backend on an ephemeral loopback port.
source "$ROOT/scripts/lib/reference-server.sh"
start_reference_server "$TARGET_DIR/debug/tokenkeeper-server" "$PY"

if ((BENCH)); then
    bench_wheel="$(build_wheel release "$TARGET_DIR/wheels-release")"
    fresh_venv "$TARGET_DIR/python-venv-release" "$bench_wheel"
    # Fed on stdin: run as a file, Python would put python/ (the sources) first on sys.path.
    (cd "$TARGET_DIR" && "$TARGET_DIR/python-venv-release/bin/python" - <"$ROOT/python/bench_current.py")
fi

# Run from the target directory (not python/, where `tokenkeeper/` would shadow the install).
cd "$TARGET_DIR"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q -c "$ROOT/python/pyproject.toml" \
    --rootdir "$ROOT/python" "$@" "$ROOT/python/tests"
