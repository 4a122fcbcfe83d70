#!/usr/bin/env bash
# Reads the ELF program headers of shared libraries and fails if any PT_LOAD segment is aligned
# to less than 16 KB (0x4000): Android 15+ devices with 16 KB pages refuse to load such a library,
# and Google Play rejects apps that carry one.
#
# The Rust libraries get the alignment from bindings/elf_page_size.rs (the build script of both
# façades), for Android and Linux alike. This machine cannot install the Android targets, so the
# test command checks the host (x86_64 Linux) libraries, linked with the same flag; on a machine
# with cargo-ndk pass the Android libraries (e.g. kotlin/build/rustJniLibs/*/*.so).
#
# Usage: scripts/check-elf-alignment.sh [LIB.so…]
#   without arguments: the host debug builds of libtokenkeeper_uniffi.so and libtokenkeeper_frb.so
#   in the workspace target directory and the library inside the Python wheel installed by
#   scripts/test-python.sh (whichever exist; at least one must).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIN=16384
fail() { echo "elf-alignment: FAILED: $*" >&2; exit 1; }
command -v readelf >/dev/null || fail "readelf not found (Debian package binutils)"

libs=("$@")
if ((${#libs[@]} == 0)); then
    target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
    for lib in "$target_dir"/debug/libtokenkeeper_uniffi.so "$target_dir"/debug/libtokenkeeper_frb.so \
        "$target_dir"/python-venv/lib/python*/site-packages/tokenkeeper/_native/libtokenkeeper_uniffi.so; do
        [[ -f "$lib" ]] && libs+=("$lib")
    done
    ((${#libs[@]})) || fail "no library built in $target_dir/debug (build tokenkeeper-uniffi or tokenkeeper-frb first)"
fi

status=0
for lib in "${libs[@]}"; do
    [[ -f "$lib" ]] || fail "$lib does not exist"
    # Program header lines: Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align; Flg may hold
    # spaces ("R E"), so the alignment is read as the last field.
    aligns=$(readelf -lW "$lib" | awk '$1 == "LOAD" { print $NF }')
    [[ -n "$aligns" ]] || fail "$lib has no PT_LOAD segment (not an ELF shared library?)"
    smallest=""
    for a in $aligns; do
        v=$((a))
        if [[ -z "$smallest" ]] || ((v < smallest)); then smallest=$v; fi
    done
    count=$(wc -w <<<"$aligns")
    if ((smallest < MIN)); then
        echo "elf-alignment: $lib: $count LOAD segments, smallest alignment $smallest (0x$(printf '%x' "$smallest")) < $MIN" >&2
        status=1
    else
        echo "elf-alignment: ok: $lib: $count LOAD segments, all aligned to >= $smallest (0x$(printf '%x' "$smallest")) bytes"
    fi
done
((status == 0)) || fail "link with -Wl,-z,max-page-size=16384 (see bindings/elf_page_size.rs)"
