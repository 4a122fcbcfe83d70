#!/usr/bin/env bash
# Produces the Swift release artefact and points Package.swift at it:
#   1. builds swift/TokenKeeperFFI.xcframework (scripts/build-xcframework.sh: device + simulator +
#      macOS static frameworks, profile release-small unless --profile is given),
#   2. zips it as target/swift-release/TokenKeeperFFI.xcframework.zip,
#   3. computes the SwiftPM checksum (`swift package compute-checksum`, the SHA-256 of the zip),
#   4. stamps it into Package.swift (`let releaseChecksum = "…"`) and prints it.
# Then: upload the zip as <repository>/releases/download/v<version>/TokenKeeperFFI.xcframework.zip
# (the URL Package.swift builds from `repository` and `version`), commit Package.swift and tag
# v<version> on that commit, so that `.package(url:, from:)` resolves to it.
#
# Needs macOS with Xcode. Usage: scripts/release-swift.sh [build-xcframework.sh options]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
fail() { echo "release-swift: FAILED: $*" >&2; exit 1; }

python3 scripts/version.py --check >/dev/null || fail "versions disagree (scripts/version.py --check)"
VERSION="$(python3 scripts/version.py)"
scripts/build-xcframework.sh "$@"

OUT_DIR="$ROOT/target/swift-release"
ZIP="$OUT_DIR/TokenKeeperFFI.xcframework.zip"
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"
# ditto keeps the bundle layout (symlinks, permissions) the way Xcode expects it.
(cd swift && ditto -c -k --sequesterRsrc --keepParent TokenKeeperFFI.xcframework "$ZIP")

checksum="$(swift package compute-checksum "$ZIP")"
[[ "$checksum" =~ ^[0-9a-f]{64}$ ]] || fail "unexpected checksum '$checksum'"
sed -i '' -E "s/^let releaseChecksum = \"[0-9a-f]*\"$/let releaseChecksum = \"$checksum\"/" Package.swift
grep -q "^let releaseChecksum = \"$checksum\"$" Package.swift || fail "could not stamp Package.swift"

repository="$(sed -n 's/^let repository = "\(.*\)"$/\1/p' Package.swift)"
echo "release-swift: $ZIP ($(du -k "$ZIP" | cut -f1) KiB)"
echo "release-swift: checksum $checksum (stamped into Package.swift)"
echo "release-swift: upload it as $repository/releases/download/v$VERSION/TokenKeeperFFI.xcframework.zip,"
echo "release-swift: then commit Package.swift and tag v$VERSION"
