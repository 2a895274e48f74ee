//! This machine's token cache (docs/usage.md, "`token`: the cache"): the access token and its
//! expiry, never the refresh token, one file per (store target, provider) in the state dir's
//! `cache/` (0600 files in a 0700 dir, written atomically, never through a symlink).
//!
//! Each file is `v1 || nonce (12 bytes) || ChaCha20-Poly1305(JSON)`, with the key derived
//! (HKDF-SHA256) from the store's own credential — the Doppler token — and the file's name as
//! associated data, so a file written under another Doppler token, copied from another entry,
//! truncated or tampered with does not decrypt and is ignored. Crypto is `ring`'s, which
//! rustls already builds.
//!
//! An entry remembers how far the store's clock was from this machine's when it was written,
//! so its expiry is judged on the store's clock without asking the store.

use std::path::PathBuf;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::state::{self, Key, StateDir};
use crate::token::now;

const VERSION: u8 = 1;
const SALT: &[u8] = b"oauth-pkce token cache v1";

/// One cached access token.
pub(crate) struct Entry {
    pub(crate) access_token: SecretString,
    /// Expiry on the store's clock.
    pub(crate) expires_at: i64,
    /// How far the store's clock was ahead of this machine's at the write.
    pub(crate) skew: i64,
}

impl Entry {
    /// Seconds left, on the store's clock as this machine estimates it.
    pub(crate) fn seconds_left(&self) -> i64 {
        self.expires_at - (now() + self.skew)
    }

    /// The expiry on this machine's clock.
    pub(crate) fn local_expiry(&self) -> i64 {
        self.expires_at - self.skew
    }
}

#[derive(Serialize, Deserialize)]
struct Plain {
    access_token: String,
    expires_at: i64,
    skew: i64,
}

/// The cache file of one (store target, provider).
pub(crate) struct Cache {
    path: PathBuf,
    name: String,
    key: LessSafeKey,
}

impl Cache {
    /// The entry of `key` in `dir`, sealed with a key derived from `secret`.
    pub(crate) fn new(dir: &StateDir, key: &Key, secret: &SecretString) -> Cache {
        let name = key.as_str().to_string();
        let prk =
            hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret.expose_secret().as_bytes());
        let info = [name.as_bytes()];
        let okm = prk
            .expand(&info, &CHACHA20_POLY1305)
            .expect("a 32-byte key is a valid HKDF length");
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes).expect("the key fills 32 bytes");
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("a 32-byte ChaCha20 key"),
        );
        Cache {
            path: dir.path().join("cache").join(format!("{name}.bin")),
            name,
            key,
        }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The entry, if there is one this key can open. Anything else — absent, loose mode, a
    /// symlink, another token's, truncated, tampered — is no entry.
    pub(crate) fn load(&self) -> Option<Entry> {
        let bytes = match state::read_private(&self.path) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!("cache ignored: {e}");
                return None;
            }
        };
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain =
            match self
                .key
                .open_in_place(nonce, Aad::from(self.name.as_bytes()), &mut sealed)
            {
                Ok(p) => p,
                Err(_) => {
                    tracing::debug!("cache ignored: it does not open with this Doppler token");
                    return None;
                }
            };
        let plain: Plain = serde_json::from_slice(plain).ok()?;
        Some(Entry {
            access_token: SecretString::from(plain.access_token),
            expires_at: plain.expires_at,
            skew: plain.skew,
        })
    }

    /// Writes `entry` (best effort: a cache that cannot be written only costs requests).
    pub(crate) fn save(&self, entry: &Entry) {
        let plain = SecretString::from(
            serde_json::to_string(&Plain {
                access_token: entry.access_token.expose_secret().to_string(),
                expires_at: entry.expires_at,
                skew: entry.skew,
            })
            .expect("a cache entry serializes"),
        );
        let mut nonce = [0u8; NONCE_LEN];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).is_err() {
            return;
        }
        let mut sealed = plain.expose_secret().as_bytes().to_vec();
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.name.as_bytes()),
                &mut sealed,
            )
            .is_err()
        {
            return;
        }
        let mut bytes = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        let dir = self.path.parent().expect("a cache file has a directory");
        let written = state::private_dir(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| state::write_private(&self.path, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::debug!("could not write the token cache: {e}");
        }
    }

    /// Removes the entry (after `revoke`, or a token the caller saw refused).
    pub(crate) fn clear(&self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!("could not remove the token cache: {e}");
            }
        }
    }
}

/// Removes every entry of `provider` in `dir`, whichever store target, token or setting
/// wrote it: `revoke` and `authorize` change what every one of them should hold, also when
/// this run's cache is off or its Doppler token is another (a person's, beside the scripts'
/// service token). Entries are `cache/{provider}-{16 hex digits}.bin`.
pub(crate) fn forget(dir: &StateDir, provider: &str) {
    let Ok(entries) = std::fs::read_dir(dir.path().join("cache")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = name
            .to_str()
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|n| n.strip_prefix(provider))
            .and_then(|n| n.strip_prefix('-'))
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if ours {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::debug!("could not remove a token cache entry: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_removes_every_entry_of_the_provider_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path());
        let key = |provider: &str, config: &str| {
            Key::new(provider, &["https://api.doppler.com/", "p", config], None)
        };
        let caches = [
            Cache::new(
                &state,
                &key("quickbooks", "dev"),
                &SecretString::from("dp.st.FAKE-a"),
            ),
            Cache::new(
                &state,
                &key("quickbooks", "prd"),
                &SecretString::from("dp.pt.FAKE-b"),
            ),
            Cache::new(
                &state,
                &key("quickbooks-sandbox", "dev"),
                &SecretString::from("dp.st.FAKE-a"),
            ),
        ];
        for c in &caches {
            c.save(&entry());
        }
        forget(&state, "quickbooks");
        assert!(caches[0].load().is_none() && caches[1].load().is_none());
        assert!(caches[2].load().is_some(), "another provider's entry stays");
    }

    fn cache(dir: &std::path::Path, token: &str) -> Cache {
        let key = Key::new("jobber", &["https://api.doppler.com/", "p", "c"], None);
        Cache::new(&StateDir::at(dir), &key, &SecretString::from(token))
    }

    fn entry() -> Entry {
        Entry {
            access_token: SecretString::from("AT-SENTINEL-cache"),
            expires_at: now() + 3600,
            skew: 0,
        }
    }

    #[test]
    fn an_entry_round_trips_and_is_not_in_clear_text() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), "dp.st.dev.one");
        assert!(c.load().is_none());
        c.save(&entry());
        let loaded = c.load().unwrap();
        assert_eq!(loaded.access_token.expose_secret(), "AT-SENTINEL-cache");
        assert!(loaded.seconds_left() > 3590);
        let bytes = std::fs::read(c.path()).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"SENTINEL-"), "sealed");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(c.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        c.clear();
        assert!(c.load().is_none());
    }

    #[test]
    fn another_token_a_tampered_truncated_loose_or_linked_file_is_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), "dp.st.dev.one");
        c.save(&entry());
        assert!(
            cache(dir.path(), "dp.st.dev.two").load().is_none(),
            "another token"
        );
        let good = std::fs::read(c.path()).unwrap();
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        for bytes in [tampered, good[..good.len() / 2].to_vec(), vec![], vec![1]] {
            state::write_private(c.path(), &bytes).unwrap();
            assert!(c.load().is_none());
        }
        state::write_private(c.path(), &good).unwrap();
        assert!(c.load().is_some());
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(c.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(c.load().is_none(), "a loose file is refused");
        std::fs::remove_file(c.path()).unwrap();
        let elsewhere = dir.path().join("elsewhere.bin");
        state::write_private(&elsewhere, &good).unwrap();
        std::os::unix::fs::symlink(&elsewhere, c.path()).unwrap();
        assert!(c.load().is_none(), "a symlink is refused");
    }
}
