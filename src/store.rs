//! The store seam: where the tokens of one provider are kept, under the names docs/usage.md
//! lists (`{PREFIX}_CLIENT_ID`, `_CLIENT_SECRET`, `_ACCESS_TOKEN`, `_REFRESH_TOKEN`,
//! `_TOKEN_EXPIRES_AT`, `_REFRESH_LEASE`, `_REFRESH_TOKEN_EXPIRES_AT`), read in one request
//! and written in one request.
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
use crate::error::{Error, Result, StoreKind};
use crate::provider::{ClientAuth, Provider};
use crate::state::Key;
use crate::token::{ClientCredentials, TokenSet};
use crate::vault::Vault;

mod choice;
mod clock;
mod vault;

pub use clock::Clock;

pub use choice::{chosen, vault_ca_file, Chosen, StoreSettings};

pub const CLIENT_ID: &str = "CLIENT_ID";
pub const CLIENT_SECRET: &str = "CLIENT_SECRET";
pub(crate) const ACCESS_TOKEN: &str = "ACCESS_TOKEN";
pub(crate) const REFRESH_TOKEN: &str = "REFRESH_TOKEN";
pub(crate) const TOKEN_EXPIRES_AT: &str = "TOKEN_EXPIRES_AT";
/// When the refresh token itself dies (Unix seconds), when the provider said.
pub(crate) const REFRESH_TOKEN_EXPIRES_AT: &str = "REFRESH_TOKEN_EXPIRES_AT";
pub const REFRESH_LEASE: &str = "REFRESH_LEASE";

/// Every suffix, in the order they are read.
pub(crate) const SUFFIXES: &[&str] = &[
    CLIENT_ID,
    CLIENT_SECRET,
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    TOKEN_EXPIRES_AT,
    REFRESH_LEASE,
    REFRESH_TOKEN_EXPIRES_AT,
];

/// `1*VSCHAR` (RFC 6749 Appendix A): printable ASCII, space included.
fn is_vschar(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// The Doppler secret names of one provider.
pub fn secret_names(provider: &Provider) -> Vec<String> {
    SUFFIXES.iter().map(|s| provider.secret_name(s)).collect()
}

/// Where the tokens are kept: Doppler, or Vault/OpenBao KV version 2.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    Doppler(Doppler),
    Vault(Vault),
}

/// A write, relative to the snapshot it is asked of: every precondition is "still as read".
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// A new grant (`authorize`, device flow): stored unconditionally, an older grant's refresh
    /// token dropped when the new grant has none, the lease written free so that it exists.
    NewGrant(&'a TokenSet),
    /// A rotation: stored only while the refresh token is still `spent`; `lease`, when given,
    /// is released in the same write.
    Rotation {
        tokens: &'a TokenSet,
        spent: &'a SecretString,
        lease: Option<&'a str>,
    },
    /// Makes the lease free where it is absent or empty (tokens stored by something other
    /// than `authorize`, or by an older version).
    LeaseFreed,
    /// Takes the lease: `lease` replaces the lease as read, only while the refresh token is
    /// still `refresh_token` (both compared in one write).
    LeaseTaken {
        lease: &'a str,
        refresh_token: &'a SecretString,
    },
    /// Frees the lease, if it still holds `lease` (ours).
    LeaseReleased(&'a str),
    /// Empties the stored tokens (revoke), the refresh token only while it is as read;
    /// frees `lease` when given.
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
                let answer = d.read(&secret_names(provider)).await?;
                Ok(Stored::new(provider, answer.secrets).at(Clock::of(answer.server_time)))
            }
            Store::Vault(v) => vault::load(v, provider).await,
        }
    }

    /// Every provider's secrets, in one request.
    pub async fn load_each(&self, providers: &[&Provider]) -> Result<Vec<Stored>> {
        match self {
            Store::Doppler(d) => {
                let names: Vec<String> = providers.iter().flat_map(|p| secret_names(p)).collect();
                let all = d.read(&names).await?;
                let clock = Clock::of(all.server_time);
                Ok(providers
                    .iter()
                    .map(|p| Stored::subset(p, &all.secrets).at(clock))
                    .collect())
            }
            Store::Vault(v) => vault::load_each(v, providers).await,
        }
    }

    /// Applies `write` against `snapshot` in one request, and returns what the store echoed;
    /// whether each change took is in the [`Echo`]. A lost answer is
    /// [`crate::Error::StoreAnswerLost`]: re-read to decide.
    pub async fn write(&self, snapshot: &Stored, write: Write<'_>) -> Result<Echo> {
        match self {
            Store::Doppler(d) => Ok(Echo {
                secrets: d.write(&snapshot.changes(write)).await?.secrets,
                prefix: snapshot.prefix.clone(),
                version: None,
            }),
            Store::Vault(v) => vault::write(v, snapshot, write).await,
        }
    }

    /// The target, for people: `demo/dev` (a Doppler project and config), or
    /// `secret/oauth-pkce at https://vault:8200` (a Vault mount and path).
    pub fn describe_target(&self) -> String {
        match self {
            Store::Doppler(d) => d.settings().describe_target(),
            Store::Vault(v) => v.settings().describe_target(),
        }
    }

    /// The store and its target, for people: `Doppler (demo/dev)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.kind(), self.describe_target())
    }

    /// Which store this is, for messages: `Doppler`, `Vault`.
    pub fn kind(&self) -> StoreKind {
        match self {
            Store::Doppler(_) => StoreKind::Doppler,
            Store::Vault(v) => v.kind(None),
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
            Store::Vault(v) => {
                let s = v.settings();
                Key::new(
                    &provider.name,
                    &[
                        "vault",
                        s.addr.as_str(),
                        s.namespace.as_deref().unwrap_or(""),
                        &s.mount,
                        &s.path,
                    ],
                    None,
                )
            }
        }
    }

    /// The store's own credential (the Doppler token): the cache's key is derived from it.
    pub(crate) fn credential(&self) -> &SecretString {
        match self {
            Store::Doppler(d) => &d.settings().token,
            Store::Vault(v) => &v.settings().token,
        }
    }

    /// The Doppler client, when this is Doppler.
    pub fn doppler(&self) -> Option<&Doppler> {
        match self {
            Store::Doppler(d) => Some(d),
            Store::Vault(_) => None,
        }
    }
}

/// One provider's secrets as read from the store. Empty values count as absent.
pub struct Stored {
    secrets: Secrets,
    prefix: String,
    /// The provider's name (Vault's secret is named after it).
    provider: String,
    /// Which store it was read from, for the errors it gives.
    store: StoreKind,
    /// Vault: the secret's version as read (0: absent), which a write must name.
    version: Option<u64>,
    /// Not read: every secret is assumed to exist (a journal's replay, written after a read).
    assumed: bool,
    clock: Clock,
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
        let stored = Stored {
            secrets,
            prefix: provider.secret_prefix.clone(),
            provider: provider.name.clone(),
            store: StoreKind::Doppler,
            version: None,
            assumed: false,
            clock: Clock::of(None),
        };
        for suffix in [ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET] {
            if let Some(value) = stored.get(suffix) {
                crate::text::conceal(value.expose_secret());
            }
        }
        stored
    }

    fn at(self, clock: Clock) -> Stored {
        Stored { clock, ..self }
    }

    /// This snapshot as `echo`'s write left it, where the store echoes the whole of it (Vault:
    /// the secret and its new version, which the next write must name); else unchanged.
    pub(crate) fn after(self, echo: &Echo) -> Stored {
        match echo.version {
            Some(version) => Stored {
                secrets: echo.secrets.clone(),
                version: Some(version),
                ..self
            },
            None => self,
        }
    }

    /// This snapshot with `{PREFIX}_{suffix}` holding `value` (a write's echo showed it).
    pub(crate) fn with(mut self, suffix: &str, value: &str) -> Stored {
        self.secrets
            .insert(self.name(suffix), SecretString::from(value.to_string()));
        self
    }

    /// Which store this was read from.
    pub fn store_kind(&self) -> &StoreKind {
        &self.store
    }

    /// The store's clock as of this read.
    pub fn clock(&self) -> &Clock {
        &self.clock
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
                store: self.store.clone(),
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

    /// `{PREFIX}_REFRESH_TOKEN_EXPIRES_AT` as Unix seconds: when the refresh token dies.
    pub fn refresh_expires_at(&self) -> Option<i64> {
        self.get(REFRESH_TOKEN_EXPIRES_AT)?
            .expose_secret()
            .trim()
            .parse()
            .ok()
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
            store: self.store.clone(),
        })?;
        let client_secret = match provider.client_auth {
            ClientAuth::None => None,
            _ => Some(
                lookup(CLIENT_SECRET).ok_or_else(|| Error::MissingCredential {
                    what: "the client secret",
                    secret: self.name(CLIENT_SECRET),
                    store: self.store.clone(),
                })?,
            ),
        };
        let client_id = client_id.expose_secret().trim().to_string();
        if let Some(secret) = &client_secret {
            crate::text::conceal_client(&client_id, secret.expose_secret());
        }
        Ok(ClientCredentials {
            client_id,
            client_secret,
        })
    }

    /// Doppler's changes for `write`: every compare-and-swap rule is decided here.
    ///
    /// The rules, safe whatever Doppler does with `originalValue: ""` and whether or not it
    /// applies a batch all-or-nothing: every precondition that protects a refresh token is on a
    /// non-empty value of one secret (the lease as read, the refresh token as read); the
    /// secret carrying the precondition comes first in its batch, so a server that stops at the
    /// first failed change applies nothing else; a lease is never left empty (the free value is
    /// a fresh nonce each time, so a stale read can never compare equal to it).
    fn changes(&self, write: Write<'_>) -> Vec<Change> {
        let free = || SecretString::from(crate::lease::free());
        match write {
            Write::NewGrant(tokens) => {
                // Do not keep a refresh token from an older grant.
                let refresh = tokens
                    .refresh_token
                    .clone()
                    .unwrap_or_else(|| SecretString::from(String::new()));
                let mut changes = self.token_changes(tokens, refresh, None);
                // Nor the older grant's end: unknown now, so absent.
                let stale_end = self.get(REFRESH_TOKEN_EXPIRES_AT).is_some();
                if tokens.refresh_expires_at.is_none() && stale_end && !self.assumed {
                    let empty = SecretString::from(String::new());
                    changes.push(self.change(REFRESH_TOKEN_EXPIRES_AT, empty, None));
                }
                changes.push(self.change(REFRESH_LEASE, free(), None));
                changes
            }
            Write::Rotation {
                tokens,
                spent,
                lease,
            } => {
                // The stored refresh token is kept when the answer had none.
                let refresh = tokens
                    .refresh_token
                    .clone()
                    .unwrap_or_else(|| spent.clone());
                let mut changes = self.token_changes(tokens, refresh, Some(spent));
                changes.extend(lease.map(|l| self.change(REFRESH_LEASE, free(), Some(l))));
                changes
            }
            Write::LeaseFreed => {
                // Converting an empty lease compares with "" — which Doppler may not enforce;
                // the protocol re-reads before taking (see `crate::lease`).
                let original = self.exists(REFRESH_LEASE).then_some("");
                vec![self.change(REFRESH_LEASE, free(), original)]
            }
            Write::LeaseTaken {
                lease,
                refresh_token,
            } => {
                let current = self
                    .get(REFRESH_LEASE)
                    .map(|v| v.expose_secret().to_string())
                    .unwrap_or_default();
                vec![
                    self.change(
                        REFRESH_LEASE,
                        SecretString::from(lease.to_string()),
                        Some(&current),
                    ),
                    self.change(
                        REFRESH_TOKEN,
                        refresh_token.clone(),
                        Some(refresh_token.expose_secret()),
                    ),
                ]
            }
            Write::LeaseReleased(lease) => vec![self.change(REFRESH_LEASE, free(), Some(lease))],
            Write::Cleared { lease } => {
                let empty = || SecretString::from(String::new());
                // The refresh token first: only while it is the one read.
                let read = self.refresh_token().map(|t| t.expose_secret().to_string());
                let mut changes: Vec<Change> = [
                    REFRESH_TOKEN,
                    ACCESS_TOKEN,
                    TOKEN_EXPIRES_AT,
                    REFRESH_TOKEN_EXPIRES_AT,
                ]
                .into_iter()
                .filter(|s| self.exists(s))
                .map(|suffix| {
                    let original = (suffix == REFRESH_TOKEN)
                        .then_some(read.as_deref())
                        .flatten();
                    self.change(suffix, empty(), original)
                })
                .collect();
                changes.extend(lease.map(|l| self.change(REFRESH_LEASE, free(), Some(l))));
                changes
            }
            Write::Probe => {
                let current = self
                    .get(REFRESH_LEASE)
                    .map(|v| v.expose_secret().to_string())
                    .unwrap_or_default();
                vec![self.change(
                    REFRESH_LEASE,
                    SecretString::from(current.clone()),
                    Some(&current),
                )]
            }
        }
    }

    fn change(&self, suffix: &str, value: SecretString, original: Option<&str>) -> Change {
        Change {
            name: self.name(suffix),
            value,
            original: original.map(|o| SecretString::from(o.to_string())),
            exists: self.exists(suffix),
        }
    }

    /// The refresh token (first, compared with `spent` when given), the access token and the
    /// expiry.
    fn token_changes(
        &self,
        tokens: &TokenSet,
        refresh: SecretString,
        spent: Option<&SecretString>,
    ) -> Vec<Change> {
        let expires_at = tokens.expires_at.map(|e| e.to_string()).unwrap_or_default();
        let mut changes = vec![
            self.change(REFRESH_TOKEN, refresh, spent.map(|s| s.expose_secret())),
            self.change(ACCESS_TOKEN, tokens.access_token.clone(), None),
            self.change(TOKEN_EXPIRES_AT, SecretString::from(expires_at), None),
        ];
        // The refresh token's own expiry, when the provider gave one (never against a
        // snapshot that was not read: whether the secret exists is then unknown).
        if let (Some(at), false) = (tokens.refresh_expires_at, self.assumed) {
            let value = SecretString::from(at.to_string());
            changes.push(self.change(REFRESH_TOKEN_EXPIRES_AT, value, None));
        }
        changes
    }
}

/// What a write echoed: each secret's value after it.
pub struct Echo {
    secrets: Secrets,
    prefix: String,
    /// Vault: the whole secret is in `secrets`, at this version.
    version: Option<u64>,
}

impl Echo {
    /// Whether `{PREFIX}_{suffix}` holds `value` after the write (a change that did not take,
    /// answered 200 with the change skipped, shows the old value).
    pub fn holds(&self, suffix: &str, value: &str) -> bool {
        self.value(suffix) == Some(value)
    }

    /// The value of `{PREFIX}_{suffix}` after the write.
    pub fn value(&self, suffix: &str) -> Option<&str> {
        self.secrets
            .get(&format!("{}_{suffix}", self.prefix))
            .map(|v| v.expose_secret())
    }
}

#[cfg(test)]
mod tests;
