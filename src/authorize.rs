//! The authorize flow, SPEC.md's seven steps: credentials → PKCE + state → callback port →
//! authorization URL and browser → wait for the callback → code exchange → one Doppler write.

use std::time::Duration;

use secrecy::SecretString;

use crate::browser;
use crate::callback::Callback;
use crate::error::Result;
use crate::pkce::PkcePair;
use crate::provider::PortRange;
use crate::store::{Stored, REFRESH_TOKEN};
use crate::token::{TokenEndpoint, TokenSet};
use crate::{Context, Event, Reporter};

/// Options of `authorize`.
#[derive(Debug, Clone)]
pub struct AuthorizeOptions {
    /// Ports to try instead of the provider's.
    pub ports: Option<PortRange>,
    /// Scopes instead of the provider's defaults (empty: the provider's).
    pub scopes: Vec<String>,
    /// Only print the URL.
    pub no_browser: bool,
    /// How long to wait for the callback.
    pub timeout: Duration,
    /// The value of `$BROWSER`, if set.
    pub browser_var: Option<String>,
}

/// What `authorize` stored.
#[derive(Debug)]
pub struct Authorized {
    pub tokens: TokenSet,
    pub redirect_uri: String,
}

/// Runs the whole flow and stores the tokens in Doppler.
pub async fn authorize(
    ctx: &Context,
    opts: &AuthorizeOptions,
    reporter: &dyn Reporter,
) -> Result<Authorized> {
    let provider = &ctx.provider;
    provider.ensure_loopback_flow()?;
    // 1. Provider and client credentials (one Doppler read, which also tells which token
    //    secrets already exist).
    let stored = Stored::load(&ctx.doppler, provider).await?;
    let credentials = stored.credentials(provider, &ctx.env_credentials)?;
    let endpoint = TokenEndpoint::new(provider, &credentials, &ctx.http);

    // 2. PKCE verifier, challenge and state.
    let pkce = PkcePair::generate();

    // 3. The callback port.
    let ports = opts.ports.clone().unwrap_or_else(|| provider.ports.clone());
    let callback = Callback::bind(&provider.redirect_host, &provider.redirect_path, &ports).await?;
    if callback.port != ports.first {
        reporter.event(Event::PortFallback {
            port: callback.port,
            first: ports.first,
            redirect_uri: &callback.redirect_uri,
        });
    }

    // 4. The URL, printed always, and the browser.
    let scopes = if opts.scopes.is_empty() {
        &provider.scopes
    } else {
        &opts.scopes
    };
    let url =
        endpoint.authorization_url(&callback.redirect_uri, scopes, &pkce.challenge, &pkce.state)?;
    reporter.event(Event::AuthorizationUrl(&url));
    if !opts.no_browser {
        match browser::open(&url, opts.browser_var.as_deref()) {
            Ok(_) => reporter.event(Event::BrowserOpened),
            Err(e) => reporter.event(Event::BrowserFailed(&e.to_string())),
        }
    }
    reporter.event(Event::Waiting {
        seconds: opts.timeout.as_secs(),
        redirect_uri: &callback.redirect_uri,
    });

    // 5. The callback.
    let redirect_uri = callback.redirect_uri.clone();
    let issuer = crate::callback::Issuer {
        expected: provider.issuer.clone(),
        required: provider.require_iss,
    };
    let code = callback
        .wait_for_code(&pkce.state, &issuer, opts.timeout)
        .await?;

    // 6. The exchange.
    reporter.event(Event::Exchanging);
    let tokens = endpoint
        .exchange_code(code, &pkce.verifier, &redirect_uri)
        .await?;
    if tokens.expires_at.is_none() {
        reporter.event(Event::Warning(
            "the token response had no expires_in and the access token is not a JWT with exp: the expiry is unknown, so `token` cannot refresh ahead of time",
        ));
    }

    // 7. One Doppler write: tokens, expiry, and the lease as empty so it always exists.
    let mut changes = stored.token_changes(&tokens, None, true);
    if tokens.refresh_token.is_none() {
        // A new grant without a refresh token: do not keep one from an older grant.
        reporter.event(Event::Warning("the provider returned no refresh token: run `authorize` again when the access token expires"));
        for c in &mut changes {
            if c.name == stored.name(REFRESH_TOKEN) {
                c.value = SecretString::from(String::new());
            }
        }
    }
    ctx.doppler.write(&changes).await?;
    Ok(Authorized {
        tokens,
        redirect_uri,
    })
}
