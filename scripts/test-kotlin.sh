#!/usr/bin/env bash
# Builds the Kotlin JVM artifact and runs the Kotlin binding tests against it, on the JVM, with
# the reference backend over loopback:
#   1. installs kotlinc, JNA and JUnit 4 (scripts/setup-jvm.sh),
#   2. builds the cdylib (tokenkeeper-uniffi) and the backend (tokenkeeper-server),
#   3. builds the JVM artifact dev.tokenkeeper:tokenkeeper-jvm:<version> in <target>/kotlin/libs:
#        tokenkeeper-jvm-<v>.jar          the generated bindings + the sugar, compiled by kotlinc,
#                                         and linux-x86-64/libtokenkeeper_uniffi.so (JNA loads it
#                                         from the classpath), plus its POM under META-INF/maven
#        tokenkeeper-jvm-<v>-sources.jar  the Kotlin sources
#        tokenkeeper-jvm-<v>.pom          coordinates and dependencies (kotlin/gradle.properties)
#   4. compile checks against the jar and the stand-ins of kotlin/src/test/stubs/ (no Android SDK
#      here): the Android helpers (src/androidMain) and every ```kotlin block of kotlin/README.md and README.md
#      not marked `// not compiled` (scripts/lib/kotlin-readme-snippets.py),
#   5. compiles src/test/kotlin against the jar alone and runs it with `java`: the library is
#      found inside the jar (no jna.library.path), as an app depending on the artifact would.
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
gradle_prop() { sed -n "s/^$1=//p" kotlin/gradle.properties; }
GROUP="$(gradle_prop GROUP)"
VERSION="$(python3 scripts/version.py)"
ARTIFACT="tokenkeeper-jvm"

echo "kotlin: building tokenkeeper-uniffi and tokenkeeper-server" >&2
cargo build --quiet -p tokenkeeper-uniffi --lib \
    || fail "cargo build -p tokenkeeper-uniffi"
cargo build --quiet -p tokenkeeper-server --bin tokenkeeper-server \
    || fail "cargo build -p tokenkeeper-server"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
LIBDIR="$TARGET_DIR/debug"
SO="$LIBDIR/libtokenkeeper_uniffi.so"
[[ -f "$SO" ]] || fail "no $SO"

OUT="$TARGET_DIR/kotlin"
LIBS="$OUT/libs"
JAR="$LIBS/$ARTIFACT-$VERSION.jar"
CP_DEPS="$KLIB/kotlinx-coroutines-core-jvm.jar:$KLIB/kotlin-stdlib.jar:$JNA"
CP_TEST_DEPS="$KLIB/kotlin-test.jar:$KLIB/kotlin-test-junit.jar:$JUNIT:$HAMCREST"

main_sources=()
while IFS= read -r f; do main_sources+=("$f"); done < <(find kotlin/src/main/kotlin -name '*.kt' | sort)
test_sources=()
while IFS= read -r f; do test_sources+=("$f"); done < <(find kotlin/src/test/kotlin -name '*.kt' | sort)

# --- 1. main classes (cached by a hash of the sources and the compiler) --------------------------
main_stamp="$(cat "${main_sources[@]}" "$KOTLINC" | sha256sum | cut -c1-16)"
if [[ ! -f "$OUT/main-$main_stamp.ok" ]]; then
    echo "kotlin: compiling ${#main_sources[@]} main files with kotlinc" >&2
    rm -rf "$OUT/main-classes" "$OUT"/main-*.ok
    mkdir -p "$OUT/main-classes"
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$CP_DEPS" -d "$OUT/main-classes" "${main_sources[@]}" \
        || fail "kotlinc (main)"
    touch "$OUT/main-$main_stamp.ok"
fi

# --- 2. the artifact: jar (classes + host library + POM), sources jar, POM ------------------------
pom() {
    cat <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>$GROUP</groupId>
  <artifactId>$ARTIFACT</artifactId>
  <version>$VERSION</version>
  <name>$(gradle_prop POM_NAME) (JVM, linux-x86-64)</name>
  <description>$(gradle_prop POM_DESCRIPTION) JVM build for tests and desktop tools: carries the linux-x86-64 library.</description>
  <url>$(gradle_prop POM_URL)</url>
  <licenses>
    <license>
      <name>$(gradle_prop POM_LICENSE_NAME)</name>
      <url>$(gradle_prop POM_LICENSE_URL)</url>
    </license>
  </licenses>
  <scm>
    <url>$(gradle_prop POM_URL)</url>
  </scm>
  <dependencies>
    <dependency>
      <groupId>net.java.dev.jna</groupId>
      <artifactId>jna</artifactId>
      <version>$(gradle_prop JNA_VERSION)</version>
    </dependency>
    <dependency>
      <groupId>org.jetbrains.kotlinx</groupId>
      <artifactId>kotlinx-coroutines-core-jvm</artifactId>
      <version>$(gradle_prop COROUTINES_VERSION)</version>
    </dependency>
  </dependencies>
</project>
POM
}

stage="$OUT/jar-stage"
rm -rf "$stage" "$LIBS"
mkdir -p "$stage/linux-x86-64" "$stage/META-INF/maven/$GROUP/$ARTIFACT" "$LIBS"
cp -R "$OUT/main-classes/." "$stage/"
# The debug build's DWARF is of no use inside a jar; symbols and program headers stay.
objcopy --strip-debug "$SO" "$stage/linux-x86-64/libtokenkeeper_uniffi.so" || fail "objcopy"
pom >"$stage/META-INF/maven/$GROUP/$ARTIFACT/pom.xml"
printf 'groupId=%s\nartifactId=%s\nversion=%s\n' "$GROUP" "$ARTIFACT" "$VERSION" \
    >"$stage/META-INF/maven/$GROUP/$ARTIFACT/pom.properties"
cp LICENSE "$stage/META-INF/LICENSE"
jar --create --file "$JAR" -C "$stage" . || fail "jar (classes)"
jar --create --file "$LIBS/$ARTIFACT-$VERSION-sources.jar" -C kotlin/src/main/kotlin . \
    || fail "jar (sources)"
pom >"$LIBS/$ARTIFACT-$VERSION.pom"
rm -rf "$stage"
echo "kotlin: built $GROUP:$ARTIFACT:$VERSION: $(du -k "$JAR" | cut -f1) KiB jar, $(du -k "$LIBS/$ARTIFACT-$VERSION-sources.jar" | cut -f1) KiB sources ($LIBS)" >&2

# --- 3. compile checks: Android helpers and README snippets, against the jar and stand-ins ---------
check_sources=()
while IFS= read -r f; do check_sources+=("$f"); done < <(find kotlin/src/androidMain kotlin/src/test/stubs -name '*.kt' | sort)
check_stamp="$(cat "${check_sources[@]}" kotlin/README.md README.md scripts/lib/kotlin-readme-snippets.py | sha256sum | cut -c1-8)-$main_stamp"
if [[ ! -f "$OUT/check-$check_stamp.ok" ]]; then
    rm -rf "$OUT/check" "$OUT"/check-*.ok
    mkdir -p "$OUT/check/classes"
    python3 scripts/lib/kotlin-readme-snippets.py kotlin/README.md README.md >"$OUT/check/ReadmeSnippets.kt" \
        2> >(sed 's/^/kotlin: README.md: /' >&2) || fail "extracting the README snippets"
    echo "kotlin: compiling the Android helpers and the README snippets against stand-ins" >&2
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$JAR:$CP_DEPS" -d "$OUT/check/classes" \
        "${check_sources[@]}" "$OUT/check/ReadmeSnippets.kt" \
        || fail "kotlinc (Android helpers / README snippets; the snippets are in $OUT/check/ReadmeSnippets.kt)"
    touch "$OUT/check-$check_stamp.ok"
fi

# --- 4. tests, compiled against the jar (cached by the test sources and the jar's classes) -------
test_stamp="$(cat "${test_sources[@]}" | sha256sum | cut -c1-8)-$main_stamp"
if [[ ! -f "$OUT/test-$test_stamp.ok" ]]; then
    echo "kotlin: compiling ${#test_sources[@]} test files against $(basename "$JAR")" >&2
    rm -rf "$OUT/test-classes" "$OUT"/test-*.ok
    mkdir -p "$OUT/test-classes"
    # -Xfriend-paths: the tests may use `internal` declarations of the jar, as Gradle's unit
    # tests may use those of their main source set.
    "$KOTLINC" -nowarn -jvm-target 17 -Xfriend-paths="$JAR" -cp "$JAR:$CP_DEPS:$CP_TEST_DEPS" \
        -d "$OUT/test-classes" "${test_sources[@]}" || fail "kotlinc (tests)"
    touch "$OUT/test-$test_stamp.ok"
fi

# Start the reference backend on an ephemeral loopback port.
source "$ROOT/scripts/lib/reference-server.sh"
start_reference_server "$LIBDIR/tokenkeeper-server" python3

CP_RUN="$OUT/test-classes:$JAR:$CP_DEPS:$CP_TEST_DEPS"
# No jna.library.path: JNA finds libtokenkeeper_uniffi.so in the jar. jna.nosys=false lets
# Debian's JNA use its system libjnidispatch.
JAVA_OPTS=(-Djna.nosys=false -Xss2m)
if ((BENCH)); then
    # Timing against the optimised library (profile `release`), not the debug one in the jar.
    cargo build --quiet --release -p tokenkeeper-uniffi --lib || fail "cargo build --release"
    java -Djna.library.path="$TARGET_DIR/release" -Djna.nosys=false -cp "$CP_RUN" \
        dev.tokenkeeper.CurrentBenchKt
fi
java "${JAVA_OPTS[@]}" -cp "$CP_RUN" dev.tokenkeeper.RunTestsKt
