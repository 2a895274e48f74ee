//! [`TokenSource`]: the library's way to get a valid access token, for Rust programs.
//!
//! It keeps the token in memory, refreshes it when it expires within the buffer (one refresh
//! at a time across tasks, and across processes and machines through the protocol of
//! [`crate::refresh`]), can refresh ahead of expiry in the background, and forces one refresh
//! after the API answered 401.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use secrecy::ExposeSecret as _;
//! let source = oauth_pkce::TokenSource::from_env("jobber")?;
//! let http = reqwest::Client::new();
//! let mut token = source.access_token().await?;
//! let mut resp = http.post("https://api.getjobber.com/api/graphql")
//!     .bearer_auth(token.expose_secret()).send().await?;
//! if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
//!     token = source.refresh_after_unauthorized(&token).await?;
//!     resp = http.post("https://api.getjobber.com/api/graphql")
//!         .bearer_auth(token.expose_secret()).send().await?;
//! }
//! # let _ = resp; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::doppler::SettingsInputs;
use crate::error::Result;
use crate::provider::{user_dir, Catalog};
use crate::refresh::{obtain, refresh_due, Want};
use crate::state::StateDir;
use crate::store::StoreSettings;
use crate::{Context, Quiet, Reporter};

/// A token whose expiry is unknown is re-read from Doppler this often.
const UNKNOWN_EXPIRY_TTL: Duration = Duration::from_secs(60);

struct Cached {
    token: SecretString,
    expires_at: Option<i64>,
    fetched: Instant,
}

/// A source of valid access tokens for one provider.
pub struct TokenSource {
    ctx: Context,
    cache: tokio::sync::Mutex<Option<Cached>>,
    reporter: Box<dyn Reporter>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("provider", &self.ctx.provider.name)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for the context's provider, reporting nothing.
    pub fn new(ctx: Context) -> TokenSource {
        TokenSource {
            ctx,
            cache: tokio::sync::Mutex::new(None),
            reporter: Box::new(Quiet),
        }
    }

    /// Settings from the environment, exactly as the CLI resolves them (no flags): the
    /// library's one reader of the process environment.
    pub fn from_env(provider: &str) -> Result<TokenSource> {
        let provider = Catalog::find(user_dir().as_deref(), &[], provider)?;
        let inputs = SettingsInputs::from_process(None, None);
        let settings = StoreSettings::resolve(&inputs)?;
        let mut network = crate::http::NetworkSettings::from_process();
        network
            .ca_files
            .extend(crate::store::vault_ca_file(&inputs));
        let http = crate::http::Http::with_network(&network)?;
        let store = settings.into_store(http.clone());
        let mut ctx = Context::with_store(http, store, provider, StateDir::locate()?);
        ctx.env_credentials = crate::credentials_from_env(std::env::vars());
        ctx.cache =
            crate::env::cache_on(std::env::var(crate::env::OAUTH_PKCE_CACHE).ok().as_deref());
        Ok(TokenSource::new(ctx))
    }

    /// Sends progress and warnings to `reporter`.
    pub fn with_reporter(mut self, reporter: Box<dyn Reporter>) -> TokenSource {
        self.reporter = reporter;
        self
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// A valid access token: from memory while it is outside the buffer, else from Doppler,
    /// refreshed first when due.
    pub async fn access_token(&self) -> Result<SecretString> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            let fresh = match c.expires_at {
                Some(_) => !refresh_due(c.expires_at, self.ctx.refresh_buffer),
                None => c.fetched.elapsed() < UNKNOWN_EXPIRY_TTL,
            };
            if fresh {
                return Ok(c.token.clone());
            }
        }
        let fresh = obtain(&self.ctx, Want::Valid, None, self.reporter.as_ref()).await?;
        let token = fresh.access_token.clone();
        *cache = Some(Cached {
            token: fresh.access_token,
            expires_at: fresh.expires_at,
            fetched: Instant::now(),
        });
        Ok(token)
    }

    /// Call after an API answered 401 to `rejected`: returns a different valid token, forcing
    /// one refresh unless another task, process or machine already did.
    pub async fn refresh_after_unauthorized(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if c.token.expose_secret() != rejected.expose_secret() && !refresh_due(c.expires_at, 0)
            {
                return Ok(c.token.clone());
            }
        }
        let fresh = obtain(
            &self.ctx,
            Want::Refresh,
            Some(rejected),
            self.reporter.as_ref(),
        )
        .await?;
        let token = fresh.access_token.clone();
        *cache = Some(Cached {
            token: fresh.access_token,
            expires_at: fresh.expires_at,
            fetched: Instant::now(),
        });
        Ok(token)
    }

    /// Refreshes in the background shortly before the token enters the buffer, so callers
    /// rarely wait. Errors are retried after a pause. Abort the handle to stop it.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let source = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let wait = match source.access_token().await {
                    Ok(_) => {
                        let expires_at = source
                            .cache
                            .lock()
                            .await
                            .as_ref()
                            .and_then(|c| c.expires_at);
                        match expires_at {
                            Some(e) => {
                                let secs = e - crate::token::now() - source.ctx.refresh_buffer;
                                Duration::from_secs(secs.clamp(5, 3600) as u64)
                            }
                            None => UNKNOWN_EXPIRY_TTL,
                        }
                    }
                    Err(e) => {
                        tracing::warn!("background refresh failed: {e}");
                        Duration::from_secs(30)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }
}
