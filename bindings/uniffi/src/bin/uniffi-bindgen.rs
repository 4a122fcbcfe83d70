//! `uniffi-bindgen`, pinned to the same uniffi version as the library
//! (`[workspace.dependencies] uniffi = "=0.32.2"`).
//!
//! Run through `scripts/gen-uniffi.sh`, which generates Kotlin, Swift and Python from the
//! built cdylib in library mode.

fn main() {
    uniffi::uniffi_bindgen_main()
}
