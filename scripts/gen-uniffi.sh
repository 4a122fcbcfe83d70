#!/usr/bin/env bash
# Generates the uniffi bindings from the built cdylib (library mode) with the workspace's pinned
# `uniffi-bindgen` (crate tokenkeeper-uniffi, feature `cli`):
#   Kotlin -> kotlin/src/main/kotlin/dev/tokenkeeper/tokenkeeper.kt
#   Swift  -> swift/Sources/TokenKeeper/TokenKeeper.swift
#             swift/Sources/TokenKeeperFFI/include/{TokenKeeperFFI.h,module.modulemap}
# The generated files are committed and never edited by hand. One adjustment is made here, on
# every run: the module map loses uniffi's `use "Darwin"` / `use "_Builtin_*"` lines, which stop
# the FFI module from building under Xcode 26/27 (uniffi-rs#2917); Clang needs none of them.
# Python is not committed: maturin runs the same pinned uniffi-bindgen when it builds the wheel
# (python/pyproject.toml), so the Python module cannot go stale.
#
# Usage: scripts/gen-uniffi.sh [--check]
#   --check  regenerate into a temporary directory and fail if anything differs from the
#            committed files (CI); also checks that every uniffi symbol the Swift header declares
#            is exported by the library and vice versa.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE="write"
case "${1:-}" in
    "") ;;
    --check) MODE="check" ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

fail() { echo "gen-uniffi: FAILED: $*" >&2; exit 1; }

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
case "$(uname -s)" in
    Darwin) LIB="$TARGET_DIR/debug/libtokenkeeper_uniffi.dylib" ;;
    *) LIB="$TARGET_DIR/debug/libtokenkeeper_uniffi.so" ;;
esac
BINDGEN="$TARGET_DIR/debug/uniffi-bindgen"

# One build gives the cdylib and the bindgen binary with the same feature set (default + cli:
# `cli` adds nothing to the exported interface).
cargo build --quiet -p tokenkeeper-uniffi --features cli --lib --bin uniffi-bindgen \
    || fail "cargo build of tokenkeeper-uniffi"
[[ -f "$LIB" ]] || fail "cdylib not found at $LIB"

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

for lang in kotlin swift; do
    "$BINDGEN" generate --no-format --language "$lang" --out-dir "$OUT/$lang" "$LIB" \
        >/dev/null || fail "uniffi-bindgen generate --language $lang"
done

# Where each generated file lives in the repository: "generated-path repository-path".
MAP=(
    "kotlin/dev/tokenkeeper/tokenkeeper.kt kotlin/src/main/kotlin/dev/tokenkeeper/tokenkeeper.kt"
    "swift/TokenKeeper.swift swift/Sources/TokenKeeper/TokenKeeper.swift"
    "swift/TokenKeeperFFI.h swift/Sources/TokenKeeperFFI/include/TokenKeeperFFI.h"
    "swift/TokenKeeperFFI.modulemap swift/Sources/TokenKeeperFFI/include/module.modulemap"
)

# uniffi-rs#2917: drop the `use` declarations from the module map (see the header comment).
sed -i.orig -E '/^[[:space:]]*use "[^"]+"[[:space:]]*$/d' "$OUT/swift/TokenKeeperFFI.modulemap"
rm -f "$OUT/swift/TokenKeeperFFI.modulemap.orig"
! grep -q '^[[:space:]]*use ' "$OUT/swift/TokenKeeperFFI.modulemap" \
    || fail "the module map still has \`use\` lines"

# Every generated file must be mapped: a new one appearing means the layout changed.
expected=$(for m in "${MAP[@]}"; do echo "${m%% *}"; done | sort)
actual=$(cd "$OUT" && find . -type f | sed 's|^\./||' | sort)
[[ "$expected" == "$actual" ]] || fail "unexpected set of generated files:
$actual
expected:
$expected"

# --- the Swift header declares exactly the library's uniffi exports ------------------------------
HEADER="$OUT/swift/TokenKeeperFFI.h"
header_syms=$(grep -oE '\b(uniffi|ffi)_[A-Za-z0-9_]+[[:space:]]*\(' "$HEADER" | sed 's/[[:space:]]*($//' | sort -u)
case "$(uname -s)" in
    Darwin) lib_syms=$(nm -gU "$LIB" | awk '{print $3}' | sed 's/^_//') ;;
    *) lib_syms=$(nm -D --defined-only "$LIB" | awk '{print $3}') ;;
esac
lib_syms=$(echo "$lib_syms" | grep -E '^(uniffi|ffi)_' | sort -u)
missing_in_lib=$(comm -23 <(echo "$header_syms") <(echo "$lib_syms"))
missing_in_header=$(comm -13 <(echo "$header_syms") <(echo "$lib_syms"))
[[ -z "$missing_in_lib" ]] || fail "symbols declared in the Swift header but not exported by $LIB:
$missing_in_lib"
[[ -z "$missing_in_header" ]] || fail "symbols exported by $LIB but not declared in the Swift header:
$missing_in_header"
nsyms=$(echo "$header_syms" | wc -l)

if [[ "$MODE" == "check" ]]; then
    diffs=0
    for m in "${MAP[@]}"; do
        gen="$OUT/${m%% *}"
        repo="$ROOT/${m##* }"
        if [[ ! -f "$repo" ]]; then
            echo "gen-uniffi: missing committed file ${m##* }" >&2
            diffs=$((diffs + 1))
        elif ! diff -u "$repo" "$gen" >"$OUT/diff.txt"; then
            echo "gen-uniffi: ${m##* } is stale (run scripts/gen-uniffi.sh):" >&2
            head -n 40 "$OUT/diff.txt" >&2
            diffs=$((diffs + 1))
        fi
    done
    ((diffs == 0)) || fail "$diffs generated file(s) differ from the committed ones"
    echo "gen-uniffi: ok: Kotlin and Swift bindings up to date; header and library agree on $nsyms symbols"
else
    for m in "${MAP[@]}"; do
        repo="$ROOT/${m##* }"
        mkdir -p "$(dirname "$repo")"
        cp "$OUT/${m%% *}" "$repo"
    done
    echo "gen-uniffi: ok: wrote Kotlin and Swift bindings; header and library agree on $nsyms symbols"
fi
