//! The format-detecting entry point on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(info) = tokenkeeper::formats::describe(s) {
            let _ = info.details.to_json();
        }
    }
});
