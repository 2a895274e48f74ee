//! The store seam: where the tokens of one provider are kept, under the names of SPEC.md
//! (`{PREFIX}_CLIENT_ID`, `_CLIENT_SECRET`, `_ACCESS_TOKEN`, `_REFRESH_TOKEN`,
//! `_TOKEN_EXPIRES_AT`, `_REFRESH_LEASE`), read in one request and written in one request.
//!
//! Callers read a snapshot ([`Stored`]) and ask for a [`Write`] *relative to it*: a new grant,
//! a rotation, taking, creating or releasing the lease, clearing, a probe. Each store turns
//! the intent into its own preconditions — Doppler's per-secret `originalValue` here; Vault
//! KV v2's whole-secret check-and-set (`cas` = the version read) and AWS Secrets Manager's
//! version stages fit the same shape, since every precondition is "as in the snapshot" —
//! so the compare-and-swap rules are decided in this module only.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use crate::doppler::{Change, Doppler, Secrets};
use crate::error::{Error, Result};
use crate::provider::{ClientAuth, Provider};
use crate::state::Key;
use crate::token::{ClientCredentials, TokenSet};

pub const CLIENT_ID: &str = "CLIENT_ID";
pub const CLIENT_SECRET: &str = "CLIENT_SECRET";
pub(crate) const ACCESS_TOKEN: &str = "ACCESS_TOKEN";
pub(crate) const REFRESH_TOKEN: &str = "REFRESH_TOKEN";
pub(crate) const TOKEN_EXPIRES_AT: &str = "TOKEN_EXPIRES_AT";
pub const REFRESH_LEASE: &str = "REFRESH_LEASE";

/// Every suffix, in the order they are read.
pub(crate) const SUFFIXES: &[&str] = &[
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

/// Where the tokens are kept. Doppler is the first store; Vault/OpenBao KV v2 is next.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    Doppler(Doppler),
}

/// A write, relative to the snapshot it is asked of: every precondition is "still as read".
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// A new grant (`authorize`, device flow): stored unconditionally, an older grant's refresh
    /// token dropped when the new grant has none, the lease emptied so that it exists.
    NewGrant(&'a TokenSet),
    /// A rotation: stored only while the refresh token is still `spent`; `lease`, when given,
    /// is released in the same write.
    Rotation {
        tokens: &'a TokenSet,
        spent: &'a SecretString,
        lease: Option<&'a str>,
    },
    /// Creates the (empty) lease for tokens stored by something other than `authorize`.
    LeaseCreated,
    /// Takes the lease: `lease` replaces the lease as read, only while the refresh token is
    /// still `refresh_token` (both compared in one write).
    LeaseTaken {
        lease: &'a str,
        refresh_token: &'a SecretString,
    },
    /// Empties the lease, if it still holds `lease` (ours).
    LeaseReleased(&'a str),
    /// Empties the stored tokens (revoke), the refresh token only while it is as read;
    /// releases `lease` when given.
    Cleared { lease: Option<&'a str> },
    /// Writes the lease to the value it holds, compared against itself: a write that changes
    /// nothing (`doctor`'s check that the token can write).
    Probe,
}

impl Store {
    /// The provider's secrets, in one request.
    pub async fn load(&self, provider: &Provider) -> Result<Stored> {
        match self {
            Store::Doppler(d) => {
                let secrets = d.read(&secret_names(provider)).await?;
                Ok(Stored::new(provider, secrets))
            }
        }
    }

    /// Every provider's secrets, in one request.
    pub async fn load_each(&self, providers: &[&Provider]) -> Result<Vec<Stored>> {
        match self {
            Store::Doppler(d) => {
                let names: Vec<String> = providers.iter().flat_map(|p| secret_names(p)).collect();
                let all = d.read(&names).await?;
                Ok(providers.iter().map(|p| Stored::subset(p, &all)).collect())
            }
        }
    }

    /// Applies `write` against `snapshot` in one request.
    pub async fn write(&self, snapshot: &Stored, write: Write<'_>) -> Result<()> {
        match self {
            Store::Doppler(d) => d.write(&snapshot.changes(write)).await.map(|_| ()),
        }
    }

    /// The target, for people: `Doppler project demo, config dev (api.doppler.com)`.
    pub fn describe_target(&self) -> String {
        match self {
            Store::Doppler(d) => d.settings().describe_target(),
        }
    }

    /// The name of (this target, `provider`) in the state dir: locks and journals.
    pub fn key(&self, provider: &Provider) -> Key {
        use secrecy::ExposeSecret as _;
        match self {
            Store::Doppler(d) => {
                let s = d.settings();
                let (project, config) = (s.project.as_deref(), s.config.as_deref());
                let implied =
                    (project.is_none() || config.is_none()).then(|| s.token.expose_secret());
                Key::new(
                    &provider.name,
                    &[
                        s.api_host.as_str(),
                        project.unwrap_or(""),
                        config.unwrap_or(""),
                    ],
                    implied,
                )
            }
        }
    }

    pub fn doppler(&self) -> &Doppler {
        match self {
            Store::Doppler(d) => d,
        }
    }
}

/// One provider's secrets as read from the store. Empty values count as absent.
pub struct Stored {
    secrets: Secrets,
    prefix: String,
    /// Not read: every secret is assumed to exist (a journal's replay, written after a read).
    assumed: bool,
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
            assumed: false,
        }
    }

    /// A snapshot without a read, in which every secret exists and holds nothing known: a
    /// [`Write::Rotation`] against it compares only what the write itself names.
    pub fn unread(provider: &Provider) -> Stored {
        Stored {
            assumed: true,
            ..Stored::new(provider, Secrets::new())
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

    pub fn name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.prefix)
    }

    /// The value of `{PREFIX}_{suffix}`, if present and not empty.
    pub fn get(&self, suffix: &str) -> Option<&SecretString> {
        self.secrets
            .get(&self.name(suffix))
            .filter(|v| !v.expose_secret().is_empty())
    }

    /// Whether the secret exists in the store (even empty).
    pub fn exists(&self, suffix: &str) -> bool {
        self.assumed || self.secrets.contains_key(&self.name(suffix))
    }

    /// The stored refresh token, or what to do without one.
    pub fn require_refresh_token(&self, provider: &str) -> Result<SecretString> {
        self.refresh_token().cloned().ok_or_else(|| {
            let missing = if self.access_token().is_none() {
                ACCESS_TOKEN
            } else {
                REFRESH_TOKEN
            };
            Error::NotAuthorized {
                provider: provider.to_string(),
                secret: self.name(missing),
            }
        })
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

    /// Doppler's changes for `write`: every compare-and-swap rule is decided here.
    fn changes(&self, write: Write<'_>) -> Vec<Change> {
        match write {
            Write::NewGrant(tokens) => {
                let mut changes = self.token_changes(tokens, None, true);
                if tokens.refresh_token.is_none() {
                    // Do not keep a refresh token from an older grant.
                    let name = self.name(REFRESH_TOKEN);
                    for c in changes.iter_mut().filter(|c| c.name == name) {
                        c.value = SecretString::from(String::new());
                    }
                }
                changes
            }
            Write::Rotation {
                tokens,
                spent,
                lease,
            } => {
                let mut changes = self.token_changes(tokens, Some(spent), false);
                changes.extend(lease.map(|l| self.lease_released(l)));
                changes
            }
            Write::LeaseCreated => vec![self.lease_created()],
            Write::LeaseTaken {
                lease,
                refresh_token,
            } => {
                let current = self
                    .get(REFRESH_LEASE)
                    .map(|v| v.expose_secret().to_string())
                    .unwrap_or_default();
                self.lease_taken(&current, lease, refresh_token)
            }
            Write::LeaseReleased(lease) => vec![self.lease_released(lease)],
            Write::Cleared { lease } => {
                let mut changes = self.cleared();
                changes.extend(lease.map(|l| self.lease_released(l)));
                changes
            }
            Write::Probe => vec![self.probe()],
        }
    }

    /// The changes that store `tokens`: access token, expiry, and the refresh token (a new
    /// one, or the stored one kept when the response had none). `spent` makes the refresh
    /// token's write a compare-and-swap against the refresh token just used. `clear_lease`
    /// also writes `{PREFIX}_REFRESH_LEASE` as empty.
    fn token_changes(
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

    /// Creates the (empty) lease secret for tokens stored by something other than `authorize`,
    /// so that taking the lease has a value to compare against.
    fn lease_created(&self) -> Change {
        Change {
            name: self.name(REFRESH_LEASE),
            value: SecretString::from(String::new()),
            original: None,
            exists: false,
        }
    }

    /// Takes the lease: `lease` replaces the `current` value, and the refresh token must still
    /// be `refresh_token` (one request, both compared).
    fn lease_taken(&self, current: &str, lease: &str, refresh_token: &SecretString) -> Vec<Change> {
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
    fn lease_released(&self, lease: &str) -> Change {
        Change {
            name: self.name(REFRESH_LEASE),
            value: SecretString::from(String::new()),
            original: Some(SecretString::from(lease.to_string())),
            exists: true,
        }
    }

    /// Empties the stored tokens (revoke): the refresh token only if it is still the one read.
    fn cleared(&self) -> Vec<Change> {
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
    fn probe(&self) -> Change {
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

    fn tokens(refresh: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: SecretString::from("at-new"),
            refresh_token: refresh.map(SecretString::from),
            expires_at: Some(100),
            expiry_source: crate::token::ExpirySource::ExpiresIn,
        }
    }

    fn originals(changes: &[Change]) -> Vec<(&str, &str, Option<&str>, bool)> {
        changes
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.value.expose_secret(),
                    c.original.as_ref().map(|o| o.expose_secret()),
                    c.exists,
                )
            })
            .collect()
    }

    #[test]
    fn each_write_carries_exactly_its_compare_and_swap_preconditions() {
        let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
        let secrets = [
            ("JOBBER_REFRESH_TOKEN", "rt-old"),
            ("JOBBER_REFRESH_LEASE", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v)))
        .collect();
        let read = Stored::new(&provider, secrets);

        // A new grant without a refresh token drops the old one, unconditionally.
        let grant = tokens(None);
        assert_eq!(
            originals(&read.changes(Write::NewGrant(&grant))),
            [
                ("JOBBER_ACCESS_TOKEN", "at-new", None, false),
                ("JOBBER_REFRESH_TOKEN", "", None, true),
                ("JOBBER_TOKEN_EXPIRES_AT", "100", None, false),
                ("JOBBER_REFRESH_LEASE", "", None, true),
            ]
        );
        // Taking the lease compares the lease as read and the refresh token.
        let rt = SecretString::from("rt-old");
        let take = Write::LeaseTaken {
            lease: "L",
            refresh_token: &rt,
        };
        assert_eq!(
            originals(&read.changes(take)),
            [
                ("JOBBER_REFRESH_LEASE", "L", Some(""), true),
                ("JOBBER_REFRESH_TOKEN", "rt-old", Some("rt-old"), true),
            ]
        );
        // A replayed rotation has not read anything: every secret is taken to exist, and only
        // the spent refresh token and our lease are compared.
        let rotated = tokens(Some("rt-new"));
        let replay = Write::Rotation {
            tokens: &rotated,
            spent: &rt,
            lease: Some("L"),
        };
        assert_eq!(
            originals(&Stored::unread(&provider).changes(replay)),
            [
                ("JOBBER_ACCESS_TOKEN", "at-new", None, true),
                ("JOBBER_REFRESH_TOKEN", "rt-new", Some("rt-old"), true),
                ("JOBBER_TOKEN_EXPIRES_AT", "100", None, true),
                ("JOBBER_REFRESH_LEASE", "", Some("L"), true),
            ]
        );
    }
}
