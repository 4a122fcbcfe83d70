//! Build script shared by the two mobile façades (`tokenkeeper-uniffi`, `tokenkeeper-frb`): links
//! their shared library (`cdylib`) with 16 KB ELF segment alignment on every ELF target, Android
//! and Linux alike.
//!
//! Google Play requires 16 KB-aligned native libraries in apps that target Android 15 or later
//! (devices with 16 KB memory pages refuse to load a library whose `PT_LOAD` segments are aligned
//! to less); a 16 KB-aligned library still loads on 4 KB-page devices. NDK r28 and later align to
//! 16 KB by default, older ones (and the host linker) need the flag, so it is always passed.
//! Applying it to the host library too lets the test command read the alignment of a library
//! linked with exactly these flags (`scripts/check-elf-alignment.sh`) on a machine that cannot
//! cross-compile for Android. Apple targets (Mach-O, ld64) do not take `-z` options and are left
//! alone.
#![allow(clippy::print_stdout)] // a build script talks to cargo on stdout

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "android" | "linux") {
        println!("cargo::rustc-cdylib-link-arg=-Wl,-z,max-page-size=16384");
    }
    println!("cargo::rerun-if-changed=../elf_page_size.rs");
}
