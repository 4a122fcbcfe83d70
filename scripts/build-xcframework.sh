#!/usr/bin/env bash
# Builds swift/TokenKeeperFFI.xcframework: the tokenkeeper-uniffi static library for iOS devices
# (arm64), the iOS simulator (arm64 + x86_64) and macOS (arm64 + x86_64, so `swift test` runs on
# a Mac), each with the generated C header and module map from swift/Sources/TokenKeeperFFI.
#
# Needs macOS with Xcode (xcodebuild, lipo) and rustup; installs the Rust targets it needs.
# Usage: scripts/build-xcframework.sh [--profile release-small|release] [--no-http]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROFILE="release-small"
FEATURES=()
while (($#)); do
    case "$1" in
        --profile) PROFILE="$2"; shift 2 ;;
        --no-http) FEATURES=(--no-default-features); shift ;;
        *) echo "usage: $0 [--profile NAME] [--no-http]" >&2; exit 2 ;;
    esac
done

fail() { echo "build-xcframework: FAILED: $*" >&2; exit 1; }
[[ "$(uname -s)" == "Darwin" ]] || fail "needs macOS with Xcode (xcodebuild); this is $(uname -s)"
command -v xcodebuild >/dev/null || fail "xcodebuild not found; install Xcode"
command -v rustup >/dev/null || fail "rustup not found"

TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${TARGETS[@]}" >/dev/null

# Keep the generated header and Swift sources current before packaging them.
"$ROOT/scripts/gen-uniffi.sh" --check

for t in "${TARGETS[@]}"; do
    echo "build-xcframework: cargo build --target $t --profile $PROFILE" >&2
    cargo build -p tokenkeeper-uniffi --lib --target "$t" --profile "$PROFILE" ${FEATURES[@]+"${FEATURES[@]}"}
done

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
lib() { echo "$TARGET_DIR/$1/$PROFILE/libtokenkeeper_uniffi.a"; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/headers" "$WORK/ios-sim" "$WORK/macos"
cp swift/Sources/TokenKeeperFFI/include/TokenKeeperFFI.h "$WORK/headers/"
cp swift/Sources/TokenKeeperFFI/include/module.modulemap "$WORK/headers/module.modulemap"

lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$WORK/ios-sim/libtokenkeeper_uniffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$WORK/macos/libtokenkeeper_uniffi.a"

OUT="$ROOT/swift/TokenKeeperFFI.xcframework"
rm -rf "$OUT"
xcodebuild -create-xcframework \
    -library "$(lib aarch64-apple-ios)" -headers "$WORK/headers" \
    -library "$WORK/ios-sim/libtokenkeeper_uniffi.a" -headers "$WORK/headers" \
    -library "$WORK/macos/libtokenkeeper_uniffi.a" -headers "$WORK/headers" \
    -output "$OUT"

echo "build-xcframework: ok: $OUT (profile $PROFILE)"
