#!/usr/bin/env bash
# Installs what scripts/check-frb.sh needs to regenerate the flutter_rust_bridge glue:
#   * flutter_rust_bridge_codegen, pinned to the same version as the `flutter_rust_bridge`
#     crate in the workspace (2.13.0), into ~/.cargo/bin;
#   * cargo-expand (pinned), which the generator runs to read the crate (it would otherwise
#     install the latest version by itself on first use);
#   * stub `dart` and `flutter` executables, because the generator refuses to run without
#     finding an SDK even when formatting, build_runner and dependency checks are off. The stubs
#     answer `--version` and nothing else. On a machine with a real Flutter SDK on PATH no stub
#     is installed and the real tools are used.
#
# Idempotent: re-running only rewrites the two tiny stubs.
# Prints, as its last line, the directory to prepend to PATH (the stubs' directory, or nothing).
set -euo pipefail

FRB_VERSION="2.13.0"
EXPAND_VERSION="1.0.127"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
STUB_DIR="${TOKENKEEPER_DART_STUB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenkeeper/dart-stub}"

log() { printf 'setup-frb: %s\n' "$*" >&2; }

# 1. The code generator, exact version.
codegen="$CARGO_BIN/flutter_rust_bridge_codegen"
if [[ -x "$codegen" ]] && "$codegen" --version 2>/dev/null | grep -q "$FRB_VERSION"; then
    log "flutter_rust_bridge_codegen $FRB_VERSION already installed"
else
    log "installing flutter_rust_bridge_codegen $FRB_VERSION (long compile; runs niced)"
    nice -n 10 cargo install flutter_rust_bridge_codegen --version "$FRB_VERSION" --locked
fi

# 1b. cargo-expand, exact version.
expand="$CARGO_BIN/cargo-expand"
if [[ -x "$expand" ]] && "$expand" expand --version 2>/dev/null | grep -q "$EXPAND_VERSION"; then
    log "cargo-expand $EXPAND_VERSION already installed"
else
    log "installing cargo-expand $EXPAND_VERSION (runs niced)"
    nice -n 10 cargo install cargo-expand --version "$EXPAND_VERSION" --locked
fi

# 2. A Dart/Flutter SDK, or stubs that satisfy the generator's version probe. The generator
#    probes `flutter --version` for a Flutter package (flutter/pubspec.yaml depends on the Flutter
#    SDK) and `dart --version` otherwise; each stub answers `--version` and refuses anything else.
if command -v flutter >/dev/null 2>&1 && [[ "$(command -v flutter)" != "$STUB_DIR/flutter" ]]; then
    log "using the real Flutter SDK at $(command -v flutter)"
    echo ""
    exit 0
fi
mkdir -p "$STUB_DIR"
write_stub() { # name, version line
    cat >"$STUB_DIR/$1.tmp" <<STUB
#!/usr/bin/env bash
# Stub '$1' for flutter_rust_bridge_codegen on machines without a Dart/Flutter SDK (installed by
# scripts/setup-frb.sh). It answers --version only; anything else fails loudly.
if [[ "\${1:-}" == "--version" ]]; then
    echo "$2"
    exit 0
fi
echo "$1 stub: only --version is supported here (no real SDK installed), got: \$*" >&2
exit 64
STUB
    chmod +x "$STUB_DIR/$1.tmp"
    mv -f "$STUB_DIR/$1.tmp" "$STUB_DIR/$1"
}
write_stub dart "Dart SDK version: 3.7.0 (stable) (stub: no real SDK)"
write_stub flutter "Flutter 3.29.0 • channel stable (stub: no real SDK) • Dart 3.7.0"
log "stub dart and flutter in $STUB_DIR (they answer --version only)"
echo "$STUB_DIR"
