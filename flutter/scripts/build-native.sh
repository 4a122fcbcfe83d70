#!/usr/bin/env bash
# Builds the tokenkeeper native library (Rust crate `tokenkeeper-frb`) ahead of time, for app
# builds on machines without Rust, and puts it where the package's Android and iOS builds pick it
# up instead of building it themselves with cargokit (README.md, "Prebuilt libraries instead"):
#
#   scripts/build-native.sh android   → android/src/main/jniLibs/<abi>/libtokenkeeper_frb.so
#                                        (arm64-v8a, armeabi-v7a, x86_64)
#   scripts/build-native.sh ios       → ios/Frameworks/TokenKeeperFrb.xcframework
#                                        (device arm64 + simulator arm64/x86_64, static)
#
# Needs: a Rust toolchain (rustup); for Android the Android NDK (ANDROID_NDK_HOME) and
# cargo-ndk (installed if missing); for iOS macOS with Xcode. The library is built from the
# workspace this package lives in (../ from here), in release mode. The `release` profile keeps
# panic unwinding on purpose: flutter_rust_bridge turns a Rust panic into a Dart exception
# instead of aborting the app.
#
# Environment: TOKENKEEPER_ANDROID_ABIS (default "arm64-v8a armeabi-v7a x86_64"),
# ANDROID_MIN_SDK (default 21, the plugin's minSdk), CARGO_PROFILE (default release). The Android
# libraries get 16 KB page alignment from the crate's build script (bindings/elf_page_size.rs).
set -euo pipefail

PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKSPACE="$(cd "$PKG/.." && pwd)"
CRATE="tokenkeeper-frb"
LIB="libtokenkeeper_frb"
PROFILE="${CARGO_PROFILE:-release}"
TARGET_DIR="$(cd "$WORKSPACE" && cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"

log() { printf 'build-native: %s\n' "$*" >&2; }

android() {
    local abis="${TOKENKEEPER_ANDROID_ABIS:-arm64-v8a armeabi-v7a x86_64}"
    : "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to your NDK (Android Studio → SDK Manager → NDK)}"
    command -v cargo-ndk >/dev/null || cargo install cargo-ndk --locked
    local targets=() args=()
    for abi in $abis; do
        case "$abi" in
            arm64-v8a) targets+=(aarch64-linux-android) ;;
            armeabi-v7a) targets+=(armv7-linux-androideabi) ;;
            x86_64) targets+=(x86_64-linux-android) ;;
            x86) targets+=(i686-linux-android) ;;
            *) log "unknown ABI '$abi'"; exit 2 ;;
        esac
        args+=(-t "$abi")
    done
    rustup target add "${targets[@]}"
    local out="$PKG/android/src/main/jniLibs"
    (cd "$WORKSPACE" && cargo ndk --platform "${ANDROID_MIN_SDK:-21}" "${args[@]}" -o "$out" \
        build -p "$CRATE" --profile "$PROFILE")
    log "Android libraries in $out:"
    find "$out" -name "$LIB.so" -exec ls -l {} + >&2
}

ios() {
    [[ "$(uname)" == Darwin ]] || { log "iOS builds need macOS with Xcode"; exit 2; }
    local device=aarch64-apple-ios sims=(aarch64-apple-ios-sim x86_64-apple-ios)
    rustup target add "$device" "${sims[@]}"
    for t in "$device" "${sims[@]}"; do
        (cd "$WORKSPACE" && cargo build -p "$CRATE" --profile "$PROFILE" --target "$t")
    done
    local dir="$PROFILE"; [[ "$PROFILE" == dev ]] && dir=debug
    local sim_dir="$TARGET_DIR/ios-sim-universal/$dir"
    mkdir -p "$sim_dir"
    lipo -create "$TARGET_DIR/${sims[0]}/$dir/$LIB.a" "$TARGET_DIR/${sims[1]}/$dir/$LIB.a" \
        -output "$sim_dir/$LIB.a"
    local out="$PKG/ios/Frameworks/TokenKeeperFrb.xcframework"
    rm -rf "$out"
    xcodebuild -create-xcframework \
        -library "$TARGET_DIR/$device/$dir/$LIB.a" \
        -library "$sim_dir/$LIB.a" \
        -output "$out"
    log "iOS XCFramework: $out"
}

case "${1:-}" in
    android) android ;;
    ios) ios ;;
    *) echo "usage: $0 android|ios" >&2; exit 2 ;;
esac
