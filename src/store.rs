//! What oauth-pkce keeps in Doppler for one provider, under the names of SPEC.md
//! (`{PREFIX}_CLIENT_ID`, `_CLIENT_SECRET`, `_ACCESS_TOKEN`, `_REFRESH_TOKEN`,
//! `_TOKEN_EXPIRES_AT`, `_REFRESH_LEASE`), read in one request and written in one request.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use crate::doppler::{Change, Doppler, Secrets};
use crate::error::{Error, Result};
use crate::provider::{ClientAuth, Provider};
use crate::token::{ClientCredentials, TokenSet};

pub const CLIENT_ID: &str = "CLIENT_ID";
pub const CLIENT_SECRET: &str = "CLIENT_SECRET";
pub const ACCESS_TOKEN: &str = "ACCESS_TOKEN";
pub const REFRESH_TOKEN: &str = "REFRESH_TOKEN";
pub const TOKEN_EXPIRES_AT: &str = "TOKEN_EXPIRES_AT";
pub const REFRESH_LEASE: &str = "REFRESH_LEASE";

/// Every suffix, in the order they are read.
pub const SUFFIXES: &[&str] = &[
    CLIENT_ID,
    CLIENT_SECRET,
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    TOKEN_EXPIRES_AT,
    REFRESH_LEASE,
];

/// `1*VSCHAR` (RFC 6749 Appendix A): printable ASCII, space included.
fn is_vschar(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// The Doppler secret names of one provider.
pub fn secret_names(provider: &Provider) -> Vec<String> {
    SUFFIXES.iter().map(|s| provider.secret_name(s)).collect()
}

/// One provider's secrets as read from Doppler. Empty values count as absent.
pub struct Stored {
    secrets: Secrets,
    prefix: String,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("prefix", &self.prefix)
            .field("names", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Stored {
    pub fn new(provider: &Provider, secrets: Secrets) -> Stored {
        Stored {
            secrets,
            prefix: provider.secret_prefix.clone(),
        }
    }

    /// The provider's secrets out of a read that covered several providers.
    pub fn subset(provider: &Provider, all: &Secrets) -> Stored {
        let own = secret_names(provider);
        let secrets = all
            .iter()
            .filter(|(k, _)| own.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Stored::new(provider, secrets)
    }

    /// Reads the provider's secrets in one request.
    pub async fn load(doppler: &Doppler, provider: &Provider) -> Result<Stored> {
        let secrets = doppler.read(&secret_names(provider)).await?;
        Ok(Stored::new(provider, secrets))
    }

    pub fn name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.prefix)
    }

    /// The value of `{PREFIX}_{suffix}`, if present and not empty.
    pub fn get(&self, suffix: &str) -> Option<&SecretString> {
        self.secrets
            .get(&self.name(suffix))
            .filter(|v| !v.expose_secret().is_empty())
    }

    /// Whether the secret exists in Doppler (even empty).
    pub fn exists(&self, suffix: &str) -> bool {
        self.secrets.contains_key(&self.name(suffix))
    }

    /// The stored access token, if it is one: RFC 6749's VSCHAR only, so a value that is not a
    /// token (or that carries terminal escape sequences) is never printed or sent.
    pub fn access_token(&self) -> Option<&SecretString> {
        self.get(ACCESS_TOKEN)
            .filter(|t| is_vschar(t.expose_secret()))
    }

    pub fn refresh_token(&self) -> Option<&SecretString> {
        self.get(REFRESH_TOKEN)
            .filter(|t| is_vschar(t.expose_secret()))
    }

    /// `{PREFIX}_TOKEN_EXPIRES_AT` as Unix seconds; `None` when empty or not a number.
    pub fn expires_at(&self) -> Option<i64> {
        self.get(TOKEN_EXPIRES_AT)?
            .expose_secret()
            .trim()
            .parse()
            .ok()
    }

    /// Whether anything at all is stored (a client id or tokens).
    pub fn has_anything(&self) -> bool {
        [CLIENT_ID, ACCESS_TOKEN, REFRESH_TOKEN]
            .iter()
            .any(|s| self.get(s).is_some())
    }

    /// The client credentials: Doppler first, then the environment variable of the same name.
    pub fn credentials(
        &self,
        provider: &Provider,
        env: &HashMap<String, SecretString>,
    ) -> Result<ClientCredentials> {
        let lookup = |suffix: &str| {
            self.get(suffix)
                .or_else(|| {
                    env.get(&self.name(suffix))
                        .filter(|v| !v.expose_secret().is_empty())
                })
                .cloned()
        };
        let client_id = lookup(CLIENT_ID).ok_or_else(|| Error::MissingCredential {
            what: "the client id",
            secret: self.name(CLIENT_ID),
        })?;
        let client_secret = match provider.client_auth {
            ClientAuth::None => None,
            _ => Some(
                lookup(CLIENT_SECRET).ok_or_else(|| Error::MissingCredential {
                    what: "the client secret",
                    secret: self.name(CLIENT_SECRET),
                })?,
            ),
        };
        Ok(ClientCredentials {
            client_id: client_id.expose_secret().trim().to_string(),
            client_secret,
        })
    }

    /// The changes that store `tokens`: access token, expiry, and the refresh token (a new
    /// one, or the stored one kept when the response had none). `spent` makes the refresh
    /// token's write a compare-and-swap against the refresh token just used. `clear_lease`
    /// also writes `{PREFIX}_REFRESH_LEASE` as empty.
    pub fn token_changes(
        &self,
        tokens: &TokenSet,
        spent: Option<&SecretString>,
        clear_lease: bool,
    ) -> Vec<Change> {
        let change = |suffix: &str, value: SecretString, original: Option<SecretString>| Change {
            name: self.name(suffix),
            value,
            original,
            exists: self.exists(suffix),
        };
        let refresh = tokens
            .refresh_token
            .clone()
            .or_else(|| spent.cloned())
            .unwrap_or_else(|| SecretString::from(String::new()));
        let mut changes = vec![
            change(ACCESS_TOKEN, tokens.access_token.clone(), None),
            change(REFRESH_TOKEN, refresh, spent.cloned()),
            change(
                TOKEN_EXPIRES_AT,
                SecretString::from(tokens.expires_at.map(|e| e.to_string()).unwrap_or_default()),
                None,
            ),
        ];
        if clear_lease {
            changes.push(change(
                REFRESH_LEASE,
                SecretString::from(String::new()),
                None,
            ));
        }
        changes
    }

    // The rest of the store's change vocabulary: every compare-and-swap rule is decided here.

    /// Creates the (empty) lease secret for tokens stored by something other than `authorize`,
    /// so that taking the lease has a value to compare against.
    pub fn lease_created(&self) -> Change {
        Change {
            name: self.name(REFRESH_LEASE),
            value: SecretString::from(String::new()),
            original: None,
            exists: false,
        }
    }

    /// Takes the lease: `lease` replaces the `current` value, and the refresh token must still
    /// be `refresh_token` (one request, both compared).
    pub fn lease_taken(
        &self,
        current: &str,
        lease: &str,
        refresh_token: &SecretString,
    ) -> Vec<Change> {
        vec![
            Change {
                name: self.name(REFRESH_LEASE),
                value: SecretString::from(lease.to_string()),
                original: Some(SecretString::from(current.to_string())),
                exists: true,
            },
            Change {
                name: self.name(REFRESH_TOKEN),
                value: refresh_token.clone(),
                original: Some(refresh_token.clone()),
                exists: true,
            },
        ]
    }

    /// Empties the lease, if it still holds `lease` (ours).
    pub fn lease_released(&self, lease: &str) -> Change {
        Change {
            name: self.name(REFRESH_LEASE),
            value: SecretString::from(String::new()),
            original: Some(SecretString::from(lease.to_string())),
            exists: true,
        }
    }

    /// Empties the stored tokens (revoke): the refresh token only if it is still the one read.
    pub fn cleared(&self) -> Vec<Change> {
        [ACCESS_TOKEN, REFRESH_TOKEN, TOKEN_EXPIRES_AT]
            .into_iter()
            .filter(|s| self.exists(s))
            .map(|suffix| Change {
                name: self.name(suffix),
                value: SecretString::from(String::new()),
                original: (suffix == REFRESH_TOKEN)
                    .then(|| self.refresh_token().cloned())
                    .flatten(),
                exists: true,
            })
            .collect()
    }

    /// Writes the lease secret to the value it holds, compared against itself: a write that
    /// changes nothing (doctor's check that the token can write).
    pub fn probe(&self) -> Change {
        let current = self
            .get(REFRESH_LEASE)
            .map(|v| v.expose_secret().to_string())
            .unwrap_or_default();
        Change {
            name: self.name(REFRESH_LEASE),
            value: SecretString::from(current.clone()),
            original: Some(SecretString::from(current)),
            exists: self.exists(REFRESH_LEASE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_token_with_control_characters_is_not_a_token() {
        let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
        let secrets = [
            ("JOBBER_ACCESS_TOKEN", "tok\u{1b}]52;c;x\u{7}"),
            ("JOBBER_REFRESH_TOKEN", "rt-ok"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v)))
        .collect();
        let stored = Stored::new(&provider, secrets);
        assert!(
            !format!("{stored:?}").contains("rt-ok"),
            "Debug shows names only"
        );
        assert!(stored.access_token().is_none());
        assert_eq!(stored.refresh_token().unwrap().expose_secret(), "rt-ok");
    }
}
