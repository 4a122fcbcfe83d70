#!/usr/bin/env bash
# Release hygiene of the packages, without building anything:
#   1. one version: Cargo.toml's version and repository URL are the ones in Package.swift, the
#      Gradle properties, the podspec, the pubspecs, pyproject.toml, CHANGELOG.md and the install
#      instructions (scripts/version.py --check);
#   2. the Apple privacy manifest is a valid property list, and the Flutter plugin ships the same
#      file as the Swift package;
#   3. the Gradle wrapper jar is the one Gradle published (checksum);
#   4. flutter/cargokit is byte for byte the cargokit of flutter_rust_bridge_codegen 2.13.0's
#      plugin template, when that crate's source is in the cargo cache (scripts/setup-frb.sh
#      installs it; without it the comparison is reported as skipped).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
status=0
bad() { echo "packaging: FAILED: $*" >&2; status=1; }

# 1. versions
python3 scripts/version.py --check || status=1

# 2. privacy manifest
PRIVACY=swift/Sources/TokenKeeper/Resources/PrivacyInfo.xcprivacy
python3 -c 'import plistlib,sys; d=plistlib.load(open(sys.argv[1],"rb")); assert d["NSPrivacyTracking"] is False' \
    "$PRIVACY" || bad "$PRIVACY is not a valid privacy manifest"
cmp -s "$PRIVACY" flutter/ios/Resources/PrivacyInfo.xcprivacy \
    || bad "flutter/ios/Resources/PrivacyInfo.xcprivacy differs from $PRIVACY (copy it)"

# 3. Gradle wrapper: the Gradle 9.4 wrapper jar (it starts any distribution; the version used is
#    the one in gradle-wrapper.properties). Checksum as Gradle publishes it.
WRAPPER_SHA256="55243ef57851f12b070ad14f7f5bb8302daceeebc5bce5ece5fa6edb23e1145c"
echo "$WRAPPER_SHA256  kotlin/gradle/wrapper/gradle-wrapper.jar" | sha256sum --check --quiet \
    || bad "kotlin/gradle/wrapper/gradle-wrapper.jar is not the published Gradle 9.4 wrapper jar"
grep -q '^distributionSha256Sum=[0-9a-f]\{64\}$' kotlin/gradle/wrapper/gradle-wrapper.properties \
    || bad "kotlin/gradle/wrapper/gradle-wrapper.properties pins no distribution checksum"

# 4. vendored cargokit
FRB_VERSION="2.13.0"
template=""
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/flutter_rust_bridge_codegen-"$FRB_VERSION"; do
    [[ -d "$dir" ]] && template="$dir/assets/integration_template/cargokit/plugin/cargokit"
done
if [[ -n "$template" && -d "$template" ]]; then
    if diff -r "$template" flutter/cargokit >/dev/null; then
        echo "packaging: flutter/cargokit is flutter_rust_bridge_codegen $FRB_VERSION's template"
    else
        diff -rq "$template" flutter/cargokit >&2 || true
        bad "flutter/cargokit differs from flutter_rust_bridge_codegen $FRB_VERSION's plugin template"
    fi
else
    echo "packaging: cargokit comparison skipped: flutter_rust_bridge_codegen-$FRB_VERSION source not in the cargo cache"
fi

((status == 0)) && echo "packaging: ok"
exit $status
