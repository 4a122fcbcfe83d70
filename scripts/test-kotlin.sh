#!/usr/bin/env bash
# Runs the Kotlin binding tests on the JVM against the reference backend over loopback:
#   1. installs kotlinc, JNA and JUnit 4 (scripts/setup-jvm.sh),
#   2. builds the cdylib (tokenkeeper-uniffi) and the backend (tokenkeeper-server),
#   3. compiles the generated bindings + the hand-written sugar + the tests with kotlinc,
#   4. starts the backend on 127.0.0.1 (ephemeral port) and runs the tests with `java`.
# Prints "kotlin: N passed, M failed" and exits non-zero on any failure.
#
# Usage: scripts/test-kotlin.sh [--bench]   (--bench: also time `current()` through the binding)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH=0
[[ "${1:-}" == "--bench" ]] && BENCH=1

fail() { echo "kotlin: FAILED: $*" >&2; exit 1; }

setup_line="$("$ROOT/scripts/setup-jvm.sh" | tail -n1)" || fail "scripts/setup-jvm.sh"
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$setup_line"; }
KOTLINC="$(val kotlinc)"
JNA="$(val jna)"
JUNIT="$(val junit)"
HAMCREST="$(val hamcrest)"
KLIB="$(dirname "$(dirname "$KOTLINC")")/lib"

echo "kotlin: building tokenkeeper-uniffi and tokenkeeper-server" >&2
cargo build --quiet -p tokenkeeper-uniffi --lib \
    || fail "cargo build -p tokenkeeper-uniffi"
cargo build --quiet -p tokenkeeper-server --bin tokenkeeper-server \
    || fail "cargo build -p tokenkeeper-server"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LIBDIR="$TARGET_DIR/debug"
[[ -f "$LIBDIR/libtokenkeeper_uniffi.so" ]] || fail "no $LIBDIR/libtokenkeeper_uniffi.so"

# Compile (cached by a hash of the sources and the compiler).
CP_COMPILE="$KLIB/kotlinx-coroutines-core-jvm.jar:$KLIB/kotlin-test.jar:$KLIB/kotlin-test-junit.jar:$JNA:$JUNIT:$HAMCREST"
SOURCES=()
while IFS= read -r f; do SOURCES+=("$f"); done < <(find kotlin/src/main/kotlin kotlin/src/test/kotlin -name '*.kt' | sort)
OUT="$TARGET_DIR/kotlin-tests"
stamp="$(cat "${SOURCES[@]}" "$KOTLINC" | sha256sum | cut -c1-16)"
if [[ ! -f "$OUT/$stamp.ok" ]]; then
    echo "kotlin: compiling ${#SOURCES[@]} files with kotlinc" >&2
    rm -rf "$OUT"
    mkdir -p "$OUT/classes"
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$CP_COMPILE" -d "$OUT/classes" "${SOURCES[@]}" \
        || fail "kotlinc"
    touch "$OUT/$stamp.ok"
fi

# Start the reference backend on an ephemeral loopback port.
source "$ROOT/scripts/lib/reference-server.sh"
start_reference_server "$LIBDIR/tokenkeeper-server" python3

CP_RUN="$OUT/classes:$KLIB/kotlin-stdlib.jar:$CP_COMPILE"
JAVA_OPTS=(-Djna.library.path="$LIBDIR" -Djna.nosys=false -Xss2m)
if ((BENCH)); then
    # Timing against the optimised library (profile `release`), not the debug one the tests use.
    cargo build --quiet --release -p tokenkeeper-uniffi --lib || fail "cargo build --release"
    java -Djna.library.path="$TARGET_DIR/release" -cp "$CP_RUN" dev.tokenkeeper.CurrentBenchKt
fi
java "${JAVA_OPTS[@]}" -cp "$CP_RUN" dev.tokenkeeper.RunTestsKt
