#!/usr/bin/env bash
# Installs what scripts/check-frb.sh needs to regenerate the flutter_rust_bridge glue:
#   * flutter_rust_bridge_codegen, pinned to the same version as the `flutter_rust_bridge`
#     crate in the workspace (2.13.0), into ~/.cargo/bin;
#   * a stub `dart` executable, because the generator refuses to run without finding a Dart SDK
#     even when formatting, build_runner and dependency checks are off. The stub answers
#     `dart --version` and nothing else. On a machine with a real Dart/Flutter SDK on PATH the
#     stub is not installed and the real `dart` is used.
#
# Idempotent: does nothing when the pinned version and a `dart` are already present.
# Prints, as its last line, the directory to prepend to PATH (the stub's directory, or nothing).
set -euo pipefail

FRB_VERSION="2.13.0"
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

# 2. A Dart SDK, or a stub that satisfies the generator's version probe.
if command -v dart >/dev/null 2>&1 && [[ "$(command -v dart)" != "$STUB_DIR/dart" ]]; then
    log "using the real dart at $(command -v dart)"
    echo ""
    exit 0
fi
mkdir -p "$STUB_DIR"
cat >"$STUB_DIR/dart.tmp" <<'STUB'
#!/usr/bin/env bash
# Stub Dart SDK for flutter_rust_bridge_codegen on machines without Dart (installed by
# scripts/setup-frb.sh). It answers `--version` only; anything else fails loudly.
if [[ "${1:-}" == "--version" ]]; then
    echo "Dart SDK version: 3.7.0 (stable) (stub for flutter_rust_bridge_codegen; no real SDK)"
    exit 0
fi
echo "dart stub: only --version is supported here, got: $*" >&2
exit 64
STUB
chmod +x "$STUB_DIR/dart.tmp"
mv -f "$STUB_DIR/dart.tmp" "$STUB_DIR/dart"
log "stub dart at $STUB_DIR/dart"
echo "$STUB_DIR"
