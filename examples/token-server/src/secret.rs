//! Comparing and storing credentials.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex sha256 of a credential (how keys, codes and refresh tokens are stored and looked up).
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Whether a presented credential equals the expected one, in time that depends on neither
/// value: both are hashed to 32 bytes first (so the length leaks nothing either), then
/// compared with `subtle`'s constant-time equality.
pub(crate) fn secret_eq(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// Whether `presented` hashes to the stored hex sha256 `stored_hex`, compared in constant time.
pub(crate) fn hash_matches(presented: &str, stored_hex: &str) -> bool {
    let a = sha256_hex(presented);
    a.len() == stored_hex.len() && bool::from(a.as_bytes().ct_eq(stored_hex.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_eq_accepts_only_the_exact_value() {
        let key = "adm_0123456789abcdefghij";
        assert!(secret_eq(key, key));
        assert!(
            !secret_eq("adm_0123456789abcdefghik", key),
            "last char differs"
        );
        assert!(!secret_eq("adm_0123456789", key), "a prefix");
        assert!(!secret_eq(&format!("{key}x"), key), "an extension");
        assert!(!secret_eq("", key));
    }

    #[test]
    fn hash_matches_compares_against_the_stored_hash() {
        let stored = sha256_hex("s3cret");
        assert!(hash_matches("s3cret", &stored));
        assert!(!hash_matches("s3creT", &stored));
        assert!(!hash_matches("s3cret", "short"));
    }
}
