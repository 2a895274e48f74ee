//! # oauth-pkce
//!
//! OAuth 2.0 Authorization Code + PKCE (RFC 7636, S256) from a terminal, with the tokens kept in
//! [Doppler](https://doppler.com) so that every machine, CI job and agent reading the same
//! Doppler config shares them. The `oauth-pkce` binary is a thin layer over this library.
//!
//! For a Rust program the API is [`TokenSource`]: a valid access token for one provider,
//! refreshed when it expires within a buffer (one refresh at a time across tasks, processes
//! and machines, safe under refresh-token rotation), and one forced refresh after an API
//! answered 401. [`TokenSource::from_env`] resolves everything as the CLI does; a [`Context`]
//! built by hand ([`Http`], [`DopplerSettings`], a [`Provider`] from the [`Catalog`], a
//! [`StateDir`]) reads nothing from the process environment. Failures are one typed
//! [`Error`], whose [`Error::exit_code`] and [`Error::hint`] the CLI prints.
//!
//! The modules behind it (private): `provider` (catalog and definitions), `doppler` (settings
//! and client) behind the `store` seam, `pkce`, `callback` (the loopback listener and the
//! redirect validator), `browser`, `token` and `oauth` (the OAuth edge), `device` (RFC 8628),
//! `revoke` (RFC 7009), `refresh` with `lease`, `state` and `journal` (this machine's locks
//! and refresh journals), `status`, `exec` and `http`. The binary adds what only a command
//! line needs: `doctor`'s checks, the demo's local authorization server, `exec`'s child
//! process and signals.
//!
//! ```no_run
//! # async fn demo() -> oauth_pkce::Result<()> {
//! // Doppler settings, provider files and CA files from the environment, as the CLI reads them.
//! let source = oauth_pkce::TokenSource::from_env("jobber")?;
//! let token = source.access_token().await?; // refreshed first when it expires within 5 min
//! # let _ = token; Ok(()) }
//! ```
//!
//! Invariants: the library never prints (progress goes through [`Reporter`]); only
//! `callback` listens on a socket, on loopback only; every
//! secret is a [`secrecy::SecretString`] whose `Debug` is redacted, and no secret-bearing type
//! implements `Display`.

#![forbid(unsafe_code)]

#[cfg(test)]
mod architecture;
mod authorize;
mod browser;
mod cache;
mod callback;
mod device;
mod doppler;
pub mod env;
mod error;
mod exec;
mod http;
mod journal;
mod lease;
mod oauth;
mod pkce;
mod provider;
mod refresh;
mod revoke;
mod source;
mod state;
mod status;
mod store;
mod text;
mod token;
mod vault;

use std::collections::HashMap;

use secrecy::SecretString;

pub use doppler::{DopplerSettings, SettingsInputs};
pub use error::{DopplerFailure, Error, ExitClass, FileOp, Holder, Result, StoreKind};
pub use http::{Http, NetworkSettings};
pub use provider::{Catalog, LifetimeFrom, Provider};
pub use refresh::Fresh;
pub use source::TokenSource;
pub use state::StateDir;
pub use store::{Echo, Store, StoreSettings};
pub use vault::VaultSettings;

/// What the `oauth-pkce` binary uses beyond the API above: not part of the library's API, and
/// free to change in any release.
#[doc(hidden)]
pub mod bin {
    pub use crate::authorize::{authorize, AuthorizeOptions, Authorized};
    pub use crate::browser::{find_opener, Opener};
    pub use crate::callback::{probe_ports, PastedLines};
    pub use crate::device::authorize_device;
    pub use crate::doppler::{Change, Doppler, TokenKind, TokenSource as DopplerTokenSource};
    pub use crate::exec::{token_env, TokenEnv};
    pub use crate::http::is_loopback_url;
    pub use crate::pkce::{is_valid_verifier, random_token, s256_challenge};
    pub use crate::provider::{default_user_dir, PortRange};
    pub use crate::refresh::refresh_due;
    /// The refresh protocol's entry points, as `refresh` and `token` run them.
    pub mod refresh {
        pub use crate::refresh::{
            after_unauthorized, cached_until, if_due, push_pending, refresh, token,
        };
    }
    pub use crate::revoke::{revoke, Revoked};
    pub use crate::state::private_dir;
    pub use crate::status::{status_all, status_of, CheckOutcome, CheckResult, ProviderStatus};
    pub use crate::store::{
        chosen, secret_names, vault_ca_file, Chosen, Clock, Stored, Write, CLIENT_ID,
        CLIENT_SECRET, REFRESH_LEASE,
    };
    pub use crate::text::{html_escape, mask, printable, terminal_safe};
    pub use crate::token::now;
    pub use crate::vault::{TokenInfo as VaultTokenInfo, Vault, VaultTokenSource};
}

/// Default refresh buffer: a token expiring within this many seconds is refreshed first.
pub const DEFAULT_REFRESH_BUFFER: i64 = 300;

/// Everything a command needs for one provider: the HTTP client, the store, the provider, the
/// client credentials found in the environment (used when the store has none), the refresh
/// buffer and this user's state dir.
#[derive(Debug)]
pub struct Context {
    pub http: http::Http,
    pub store: store::Store,
    pub provider: provider::Provider,
    pub env_credentials: HashMap<String, SecretString>,
    pub refresh_buffer: i64,
    /// Where locks and refresh journals live (the user's own state dir, never a shared one).
    pub state_dir: state::StateDir,
    /// Whether this machine's token cache is used (`--no-cache`, `OAUTH_PKCE_CACHE=off`).
    pub cache: bool,
}

impl Context {
    /// A context for `provider` in the Doppler config of `settings`, sending through `http`,
    /// with no environment credentials and the default buffer. Nothing is read from the
    /// process environment here.
    pub fn new(
        http: http::Http,
        settings: doppler::DopplerSettings,
        provider: provider::Provider,
        state_dir: state::StateDir,
    ) -> Context {
        let store = store::Store::Doppler(doppler::Doppler::new(http.clone(), settings));
        Context::with_store(http, store, provider, state_dir)
    }

    /// A context for `provider` in `store` (Doppler or Vault), otherwise as [`Context::new`].
    pub fn with_store(
        http: http::Http,
        store: store::Store,
        provider: provider::Provider,
        state_dir: state::StateDir,
    ) -> Context {
        Context {
            store,
            http,
            provider,
            env_credentials: HashMap::new(),
            refresh_buffer: DEFAULT_REFRESH_BUFFER,
            state_dir,
            cache: true,
        }
    }

    /// This (store target, provider) in the state dir.
    pub fn key(&self) -> state::Key {
        self.store.key(&self.provider)
    }

    pub(crate) fn journal(&self) -> journal::Journal {
        journal::Journal::new(&self.state_dir, &self.key())
    }

    pub(crate) async fn refresh_lock(
        &self,
        max_wait: std::time::Duration,
    ) -> Result<state::LocalLock> {
        self.state_dir.refresh_lock(&self.key(), max_wait).await
    }

    /// Removes every entry this machine's cache holds for the provider (cache on or off).
    pub(crate) fn forget_cached(&self) {
        cache::forget(&self.state_dir, &self.provider.name);
    }

    /// This machine's cache entry for the provider, when the cache is on.
    pub(crate) fn token_cache(&self) -> Option<cache::Cache> {
        self.cache
            .then(|| cache::Cache::new(&self.state_dir, &self.key(), self.store.credential()))
    }

    pub(crate) fn sign_in_lock(&self) -> Result<state::SignInLock> {
        self.state_dir.sign_in_lock(&self.key())
    }
}

/// `*_CLIENT_ID` and `*_CLIENT_SECRET` variables from an environment.
pub fn credentials_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> HashMap<String, SecretString> {
    vars.filter(|(k, _)| k.ends_with("_CLIENT_ID") || k.ends_with("_CLIENT_SECRET"))
        .map(|(k, v)| (k, SecretString::from(v)))
        .collect()
}

impl doppler::SettingsInputs {
    /// Inputs from this process: its environment, working directory and home.
    pub fn from_process(project_flag: Option<String>, config_flag: Option<String>) -> Self {
        doppler::SettingsInputs {
            store_flag: None,
            project_flag,
            config_flag,
            vars: env::STORE_VARS
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
                .collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
            home: dirs::home_dir(),
        }
    }
}

/// Progress of a command, for people. The CLI prints these to stderr.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The authorization URL (always shown: the browser may not open).
    AuthorizationUrl(&'a url::Url),
    /// The callback is not on the first port of the range.
    PortFallback {
        port: u16,
        first: u16,
        redirect_uri: &'a str,
    },
    BrowserOpened,
    BrowserFailed(&'a str),
    Waiting {
        seconds: u64,
        redirect_uri: &'a str,
    },
    /// The browser may not reach this machine (no browser opened, or an SSH session): how to
    /// finish anyway — forward `port`, or paste the final redirect URL when `paste` is on.
    Remote {
        port: u16,
        redirect_uri: &'a str,
        paste: bool,
    },
    /// A pasted redirect URL was refused (why, never the text itself); the wait goes on.
    PasteRefused(&'a str),
    /// A pasted redirect URL was accepted.
    PasteAccepted,
    /// Device flow (RFC 8628): what the user must enter where, already terminal-safe.
    DeviceCode {
        user_code: &'a str,
        verification_uri: &'a url::Url,
        /// The same page with the code filled in, when the provider gives one.
        verification_uri_complete: Option<&'a url::Url>,
        seconds: u64,
    },
    /// Device flow: polling the token endpoint until the user approves.
    DeviceWaiting {
        seconds: u64,
    },
    /// Device flow: the provider asked to poll less often; the new interval in seconds.
    SlowDown {
        interval: u64,
    },
    Exchanging,
    Refreshing,
    Warning(&'a str),
}

/// Receives [`Event`]s.
pub trait Reporter: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// A [`Reporter`] that drops everything.
pub struct Quiet;

impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
}
