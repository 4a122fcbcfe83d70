#!/usr/bin/env bash
# The project's one test command (README.md). Installs what it needs on a fresh Debian machine,
# then runs every gate: formatting, lints, docs, licenses, packaging metadata, Swift/Dart syntax,
# Rust tests, binding generation checks, the Kotlin suite against the JVM jar and the Python
# suite against the wheel (both against the reference backend), and the 16 KB alignment of the
# mobile libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }
failures=()
run() { # run NAME CMD...: keep going, remember failures, report at the end (with its duration)
    local name=$1 start=$SECONDS; shift
    step "$name"
    if "$@"; then echo "ok: $name ($((SECONDS - start)) s)"; else echo "FAILED: $name ($((SECONDS - start)) s)"; failures+=("$name"); fi
}

step "toolchain setup"
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
[ -x scripts/setup-jvm.sh ] && scripts/setup-jvm.sh
[ -x scripts/setup-tools.sh ] && scripts/setup-tools.sh
[ -x scripts/setup-frb.sh ] && scripts/setup-frb.sh
# PostgreSQL on loopback for the reference backend's multi-instance tests (installs it if missing).
if pg_url=$(scripts/setup-postgres.sh); then export TOKENKEEPER_TEST_PG_URL="$pg_url"
else echo "FAILED: postgres setup"; failures+=("postgres setup"); fi
echo "toolchain setup: $SECONDS s"

run "rustfmt" cargo fmt --all -- --check
run "clippy (all targets, all features)" \
    cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
run "clippy (core, no default features)" \
    cargo clippy -p tokenkeeper --no-default-features --locked -- -D warnings
run "docs" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked
run "mobile libraries carry no minting code" scripts/check-no-mint.sh
run "dependency licenses (cargo deny, offline)" scripts/check-licenses.sh
run "packaging metadata (one version, privacy manifest, Gradle wrapper, cargokit)" \
    scripts/check-packaging.sh
run "swift and dart syntax (tree-sitter)" scripts/check-syntax.sh
# Benches are compiled by clippy --all-targets above; `cargo bench` runs them (README.md).
run "rust tests" cargo test --workspace --all-features --locked --no-fail-fast
[ -x scripts/gen-uniffi.sh ] && run "uniffi generation is current" scripts/gen-uniffi.sh --check
[ -x scripts/test-kotlin.sh ] && run "kotlin (JVM) tests" scripts/test-kotlin.sh
[ -x scripts/test-python.sh ] && run "python tests" scripts/test-python.sh
[ -x scripts/check-frb.sh ] && run "flutter_rust_bridge generation is current" scripts/check-frb.sh
# After the Kotlin, Python and frb steps, which built the libraries it reads.
run "16 KB ELF alignment of the mobile libraries (host build)" scripts/check-elf-alignment.sh

echo
if [ ${#failures[@]} -gt 0 ]; then
    printf 'FAILED gates: %s\n' "${failures[*]}"
    exit 1
fi
echo "all gates passed"
