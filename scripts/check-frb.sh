#!/usr/bin/env bash
# Checks the flutter_rust_bridge bindings:
#   1. regenerates the glue (bindings/frb/src/frb_generated.rs and flutter/lib/src/rust/) in a
#      scratch copy of the workspace and fails if it differs from the committed files;
#   2. checks that the library does not pull in the core's server-side `mint` feature;
#   3. builds tokenkeeper-frb (cdylib, staticlib, rlib).
# With --with-tests it also runs the API tests (cargo test -p tokenkeeper-frb --test api).
#
# Self-contained: installs the pinned generator and the SDK stubs through setup-frb.sh. Runs
# from any directory; exits non-zero on the first failure. Never modifies the working tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_TESTS=0
for arg in "$@"; do
    case "$arg" in
        --with-tests) WITH_TESTS=1 ;;
        *) echo "check-frb: unknown argument '$arg' (only --with-tests)" >&2; exit 2 ;;
    esac
done
log() { printf 'check-frb: %s\n' "$*" >&2; }

stub_dir="$("$ROOT/scripts/setup-frb.sh" | tail -n 1)"
if [[ -n "$stub_dir" ]]; then
    export PATH="$stub_dir:$PATH"
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# 1. Regenerate in a scratch copy (sources only) and compare.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
log "regenerating the glue in $scratch"
# Sources only: no build outputs (target/, build/, .dart_tool/, .gradle/), no VCS data, no
# installed tools (.tools/), and not the fuzzing tree (outside the workspace; its corpus and
# target are large).
tar -C "$ROOT" --exclude=.git --exclude=target --exclude=build --exclude=.dart_tool \
    --exclude=.gradle --exclude=node_modules --exclude=./fuzz --exclude=./.tools -cf - . | tar -C "$scratch" -xf -
# The generator expands the crate with `--cfg frb_expand`; a target dir of its own keeps those
# artefacts from invalidating the workspace's normal build cache.
(
    cd "$scratch"
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/frb-expand" \
        flutter_rust_bridge_codegen generate >"$scratch/.codegen.log" 2>&1
) || { tail -n 40 "$scratch/.codegen.log" >&2; log "FAILED: flutter_rust_bridge_codegen generate"; exit 1; }

status=0
diff -ru "$ROOT/bindings/frb/src/frb_generated.rs" "$scratch/bindings/frb/src/frb_generated.rs" || status=1
diff -ru "$ROOT/flutter/lib/src/rust" "$scratch/flutter/lib/src/rust" || status=1
if [[ $status -ne 0 ]]; then
    log "FAILED: the committed flutter_rust_bridge glue is stale; run"
    log "  PATH=\"$stub_dir:\$PATH\" flutter_rust_bridge_codegen generate   (from $ROOT)"
    log "and commit bindings/frb/src/frb_generated.rs and flutter/lib/src/rust/"
    exit 1
fi
log "generated glue is current"

# 2. The mobile library must not contain the server-side token minting code.
features="$(cd "$ROOT" && cargo tree -p tokenkeeper-frb --edges normal -i tokenkeeper -f '{p} [{f}]' --depth 0)"
if grep -q 'mint' <<<"$features"; then
    log "FAILED: tokenkeeper-frb enables the core's \`mint\` feature: $features"
    exit 1
fi
log "core features in tokenkeeper-frb: ${features#* }"

# 3. Build the library.
(cd "$ROOT" && cargo build -p tokenkeeper-frb)
log "built tokenkeeper-frb"

if [[ $WITH_TESTS -eq 1 ]]; then
    (cd "$ROOT" && cargo test -p tokenkeeper-frb --test api)
fi
log "OK"
