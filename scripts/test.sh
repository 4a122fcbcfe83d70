#!/usr/bin/env bash
# The project's one test command (README.md). Installs what it needs on a fresh Debian machine,
# then runs every gate: formatting, lints, docs, Rust tests, binding generation checks, and the
# Kotlin and Python suites against the reference backend.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }
failures=()
run() { # run NAME CMD...: keep going, remember failures, report at the end
    local name=$1; shift
    step "$name"
    if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; failures+=("$name"); fi
}

step "toolchain setup"
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
[ -x scripts/setup-jvm.sh ] && scripts/setup-jvm.sh
[ -x scripts/setup-frb.sh ] && scripts/setup-frb.sh
# PostgreSQL on loopback for the reference backend's multi-instance tests (installs it if missing).
if pg_url=$(scripts/setup-postgres.sh); then export TOKENKEEPER_TEST_PG_URL="$pg_url"
else echo "FAILED: postgres setup"; failures+=("postgres setup"); fi

run "rustfmt" cargo fmt --all -- --check
run "clippy (all targets, all features)" \
    cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
run "clippy (core, no default features)" \
    cargo clippy -p tokenkeeper --no-default-features --locked -- -D warnings
run "docs" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked
run "mobile libraries carry no minting code" scripts/check-no-mint.sh
run "rust tests" cargo test --workspace --all-features --locked --no-fail-fast
run "benches compile" cargo bench --workspace --all-features --locked --no-run
[ -x scripts/gen-uniffi.sh ] && run "uniffi generation is current" scripts/gen-uniffi.sh --check
[ -x scripts/test-kotlin.sh ] && run "kotlin (JVM) tests" scripts/test-kotlin.sh
[ -x scripts/test-python.sh ] && run "python tests" scripts/test-python.sh
[ -x scripts/check-frb.sh ] && run "flutter_rust_bridge generation is current" scripts/check-frb.sh

echo
if [ ${#failures[@]} -gt 0 ]; then
    printf 'FAILED gates: %s\n' "${failures[*]}"
    exit 1
fi
echo "all gates passed"
