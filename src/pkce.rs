//! RFC 7636 (PKCE, S256) and the `state` value: pure functions over bytes from the OS CSPRNG.
//!
//! The verifier is 32 random octets, base64url without padding: 43 characters of the
//! unreserved set (RFC 7636 §4.1, §7.1). The challenge is `BASE64URL(SHA256(verifier))`.
//! `state` is another, independent 32 random octets. Both are secrets: they live in
//! [`SecretString`] and are only exposed where the URL or the token request is built.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// One authorization attempt's PKCE verifier, its S256 challenge and the CSRF `state`.
pub(crate) struct PkcePair {
    /// The `code_verifier` (secret until it is sent to the token endpoint).
    pub verifier: SecretString,
    /// The `code_challenge`, safe to put in the authorization URL.
    pub challenge: String,
    /// The `state` parameter (secret: it binds the callback to this flow).
    pub state: SecretString,
}

impl std::fmt::Debug for PkcePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkcePair")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .field("state", &"[redacted]")
            .finish()
    }
}

impl PkcePair {
    /// A fresh verifier, challenge and state from the OS CSPRNG.
    pub(crate) fn generate() -> Self {
        let verifier = random_token();
        // The verifier is never shown; the state is, in the URL the user opens.
        crate::text::conceal(verifier.expose_secret());
        let challenge = s256_challenge(verifier.expose_secret());
        PkcePair {
            verifier,
            challenge,
            state: random_token(),
        }
    }
}

/// 32 octets from the operating system's CSPRNG, base64url without padding (43 characters).
pub fn random_token() -> SecretString {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let encoded = URL_SAFE_NO_PAD.encode(bytes);
    bytes.fill(0);
    SecretString::from(encoded)
}

/// `BASE64URL(SHA256(ASCII(verifier)))`, RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` satisfies `code-verifier = 43*128unreserved` (RFC 7636 §4.1).
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = URL_SAFE_NO_PAD.encode(octets);
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            s256_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn rfc7636_appendix_a_base64url_without_padding() {
        assert_eq!(URL_SAFE_NO_PAD.encode([3u8, 236, 255, 224, 193]), "A-z_4ME");
    }

    #[test]
    fn oauth2_crate_agrees_with_our_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let theirs = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
            &oauth2::PkceCodeVerifier::new(verifier.to_string()),
        );
        assert_eq!(theirs.as_str(), s256_challenge(verifier));
        assert_eq!(theirs.method().as_str(), "S256");
    }

    #[test]
    fn generated_values_are_43_unreserved_chars_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let pair = PkcePair::generate();
            let v = pair.verifier.expose_secret().to_string();
            let s = pair.state.expose_secret().to_string();
            assert_eq!(v.len(), 43);
            assert!(is_valid_verifier(&v));
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(URL_SAFE_NO_PAD.decode(&s).unwrap().len(), 32);
            assert_ne!(v, s);
            assert_eq!(pair.challenge, s256_challenge(&v));
            assert!(seen.insert(v));
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn verifier_boundaries() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        for bad in ["+", "/", "=", " ", "%"] {
            assert!(!is_valid_verifier(&format!("{}{bad}", "a".repeat(43))));
        }
    }

    #[test]
    fn debug_redacts_verifier_and_state() {
        let pair = PkcePair::generate();
        let dbg = format!("{pair:?}");
        assert!(!dbg.contains(pair.verifier.expose_secret()));
        assert!(!dbg.contains(pair.state.expose_secret()));
    }
}
