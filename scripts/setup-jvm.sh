#!/usr/bin/env bash
# Installs what the Kotlin/JVM tests need on a fresh Debian machine, idempotently:
#   - kotlinc (npm package `kotlin-compiler`, pinned) into <repo>/.tools/kotlin (gitignored);
#     it ships lib/kotlinx-coroutines-core-jvm.jar and lib/kotlin-test*.jar too;
#   - JNA and JUnit 4 from Debian (`libjna-java`, `junit4`), skipped when already installed.
# Java 17 must already be on the PATH.
#
# Prints the paths it set up on its last line:
#   setup-jvm: ok kotlinc=<path> jna=<jar> junit=<jar> hamcrest=<jar>
set -euo pipefail

KOTLIN_VERSION="2.2.21"
JNA_DEB_VERSION="5.13.0-2"
JUNIT_DEB_VERSION="4.13.2-3"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools/kotlin"
KOTLIN_HOME="$TOOLS/node_modules/kotlin-compiler"

die() { echo "setup-jvm: FAILED: $*" >&2; exit 1; }

command -v java >/dev/null || die "java not found; install a JDK 17 (apt-get install openjdk-17-jdk-headless)"

# --- kotlinc -------------------------------------------------------------------------------------
installed_kotlin=""
if [[ -f "$KOTLIN_HOME/package.json" ]]; then
    installed_kotlin="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$KOTLIN_HOME/package.json" | head -n1)"
fi
if [[ "$installed_kotlin" != "$KOTLIN_VERSION" ]]; then
    command -v npm >/dev/null || die "npm not found; install Node.js (apt-get install npm)"
    mkdir -p "$TOOLS"
    echo "setup-jvm: installing kotlin-compiler@$KOTLIN_VERSION into $TOOLS" >&2
    (cd "$TOOLS" && npm install --no-audit --no-fund --loglevel=error --prefix "$TOOLS" \
        "kotlin-compiler@$KOTLIN_VERSION" >&2)
fi
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
[[ -f "$KOTLINC" ]] || die "kotlinc missing at $KOTLINC after npm install"
chmod +x "$KOTLIN_HOME"/bin/* 2>/dev/null || true
for jar in kotlinx-coroutines-core-jvm.jar kotlin-test.jar kotlin-test-junit.jar kotlin-stdlib.jar; do
    [[ -f "$KOTLIN_HOME/lib/$jar" ]] || die "kotlin-compiler@$KOTLIN_VERSION lacks lib/$jar"
done

# --- JNA and JUnit 4 from Debian ----------------------------------------------------------------
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
deb_installed libjna-java || missing+=("libjna-java=$JNA_DEB_VERSION")
deb_installed junit4 || missing+=("junit4=$JUNIT_DEB_VERSION")
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "apt-get not found; install JNA and JUnit 4 by hand"
    SUDO=""
    [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    echo "setup-jvm: apt-get install ${missing[*]}" >&2
    $SUDO apt-get update -qq >&2
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2; then
        # The pinned revision may have left the archive; take the current one rather than fail.
        echo "setup-jvm: pinned Debian versions unavailable, installing current ones" >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${missing[@]%%=*}" >&2
    fi
fi

JNA_JAR="/usr/share/java/jna.jar"
JUNIT_JAR="/usr/share/java/junit4.jar"
HAMCREST_JAR="/usr/share/java/hamcrest-core.jar"
[[ -f "$HAMCREST_JAR" ]] || HAMCREST_JAR="/usr/share/java/hamcrest.jar"
for f in "$JNA_JAR" "$JUNIT_JAR" "$HAMCREST_JAR"; do
    [[ -f "$f" ]] || die "expected $f after installing libjna-java/junit4"
done

echo "setup-jvm: ok kotlinc=$KOTLINC jna=$JNA_JAR junit=$JUNIT_JAR hamcrest=$HAMCREST_JAR"
