//! Syntax and binding checks of the OAuth parameters: PKCE (RFC 7636), scope (RFC 6749 §3.3),
//! redirect URIs (RFC 6749 §4.1.3, exact match per RFC 9700 §2.1).

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] [a-z] [0-9] - . _ ~`.
pub(crate) fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge: base64url without padding of a sha256, i.e. 43 characters.
pub(crate) fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` hashes to `challenge` (S256), compared in constant time.
pub(crate) fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// RFC 6749 §3.3: space-delimited tokens of `%x21 / %x23-5B / %x5D-7E`, at most 16 tokens of
/// 64 bytes. Returns the tokens.
pub(crate) fn parse_scope(s: &str) -> Option<Vec<&str>> {
    let tokens: Vec<&str> = s.split(' ').collect();
    let ok = !s.is_empty()
        && tokens.len() <= 16
        && tokens.iter().all(|t| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        });
    ok.then_some(tokens)
}

/// Whether every token of `requested` was granted in `granted`.
pub(crate) fn scope_within(requested: &[&str], granted: &str) -> bool {
    requested
        .iter()
        .all(|r| granted.split(' ').any(|g| g == *r))
}

/// A redirect URI a client may register: absolute `https://` or loopback `http://`, no
/// fragment, at most 512 bytes.
pub(crate) fn valid_redirect_uri(u: &str) -> bool {
    let lower = u.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://")
        || lower.starts_with("http://127.0.0.1")
        || lower.starts_with("http://localhost")
        || lower.starts_with("http://[::1]")
        // private-use schemes of native apps (RFC 8252 §7.1), e.g. `com.example.app:/cb`
        || lower
            .split_once(":/")
            .is_some_and(|(s, _)| s.contains('.') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)));
    scheme_ok && u.len() <= 512 && !u.contains('#') && !u.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_syntax_follows_rfc_7636() {
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(valid_verifier(&"~".repeat(128)));
    }

    #[test]
    fn rfc_7636_appendix_b_example_matches() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches("x", challenge));
    }

    #[test]
    fn scope_parsing_and_narrowing() {
        assert_eq!(parse_scope("rtc chat"), Some(vec!["rtc", "chat"]));
        assert_eq!(parse_scope(""), None);
        assert_eq!(parse_scope("rtc  chat"), None);
        assert_eq!(parse_scope("r\"tc"), None);
        assert!(scope_within(&["rtc"], "rtc chat"));
        assert!(!scope_within(&["admin"], "rtc chat"));
    }

    #[test]
    fn redirect_uris_must_be_https_loopback_or_private_use() {
        assert!(valid_redirect_uri("https://app.example/cb"));
        assert!(valid_redirect_uri("http://127.0.0.1:8123/cb"));
        assert!(valid_redirect_uri("com.example.app:/oauth2redirect"));
        assert!(!valid_redirect_uri("http://evil.example/cb"));
        assert!(!valid_redirect_uri("https://app.example/cb#frag"));
        assert!(!valid_redirect_uri("javascript:alert(1)"));
    }
}
