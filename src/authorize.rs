//! The authorize flow (docs/ARCHITECTURE.md, "The flow"): credentials → PKCE + state → callback port →
//! authorization URL and browser → wait for the callback (or a pasted redirect URL) → code
//! exchange → one Doppler write.

use std::time::Duration;

use secrecy::ExposeSecret as _;

use crate::browser;
use crate::callback::{Callback, Expected, Issuer, PastedLines};
use crate::error::{Error, Result};
use crate::pkce::PkcePair;
use crate::provider::PortRange;
use crate::store::{Stored, Write, ACCESS_TOKEN};
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
    /// Redirect URLs the user pastes (the CLI's stdin), accepted as the callback would be.
    pub paste: Option<PastedLines>,
    /// The browser is probably on another machine (an SSH session, no display): say how to
    /// reach the callback even when a browser opener started.
    pub remote: bool,
}

impl Default for AuthorizeOptions {
    fn default() -> Self {
        AuthorizeOptions {
            ports: None,
            scopes: Vec::new(),
            no_browser: false,
            timeout: Duration::from_secs(300),
            browser_var: None,
            paste: None,
            remote: false,
        }
    }
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
    // One sign-in at a time per provider on this machine: no second browser, no second port.
    let _sign_in = ctx.sign_in_lock()?;
    // 1. Provider and client credentials (one Doppler read, which also tells which token
    //    secrets already exist).
    let mut stored = ctx.store.load(provider).await?;
    let credentials = stored.credentials(provider, &ctx.env_credentials)?;
    let endpoint = TokenEndpoint::new(provider, &credentials, &ctx.http);
    // Before any browser or port: can this token store what the sign-in brings?
    stored = preflight(ctx, stored).await?;

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
    if !provider.pkce {
        reporter.event(Event::Warning(&format!(
            "PKCE is off for {} (`pkce = false` in {}): the sign-in rests on `state` and the client secret",
            provider.name, provider.source
        )));
    }
    reporter.event(Event::AuthorizationUrl(&url));
    // The opener is watched for a quick failure (xdg-open without a display) on a thread of
    // its own, while the callback is already awaited: a browser that signs in within the
    // watch (a script playing one) is not kept waiting.
    let callback_port = callback.port;
    let opening = (!opts.no_browser).then(|| {
        let (url, var) = (url.clone(), opts.browser_var.clone());
        tokio::task::spawn_blocking(move || browser::open(&url, var.as_deref()))
    });
    let redirect_uri = callback.redirect_uri.clone();
    let expected = Expected {
        provider: provider.name.clone(),
        state: pkce.state.clone(),
        issuer: Issuer {
            expected: provider.issuer.clone(),
            required: provider.require_iss,
        },
    };
    // 5. The callback, or the redirect URL pasted.
    let waiting = callback.wait_for_code(&expected, opts.timeout, opts.paste.as_ref(), reporter);
    tokio::pin!(waiting);
    let say_how_to_reach = |opened: bool| {
        if !opened || opts.remote {
            reporter.event(Event::Remote {
                port: callback_port,
                redirect_uri: &redirect_uri,
                paste: opts.paste.is_some(),
            });
        }
        reporter.event(Event::Waiting {
            seconds: opts.timeout.as_secs(),
            redirect_uri: &redirect_uri,
        });
    };
    let (code, page) = match opening {
        None => {
            say_how_to_reach(false);
            waiting.await?
        }
        Some(opening) => tokio::select! {
            biased;
            opened = opening => {
                let opened = match opened {
                    Ok(Ok(_)) => {
                        reporter.event(Event::BrowserOpened);
                        true
                    }
                    Ok(Err(e)) => {
                        reporter.event(Event::BrowserFailed(&e.to_string()));
                        false
                    }
                    Err(e) => {
                        reporter.event(Event::BrowserFailed(&e.to_string()));
                        false
                    }
                };
                say_how_to_reach(opened);
                waiting.await?
            }
            done = &mut waiting => done?,
        },
    };

    // 6. The exchange, and 7. the store; the browser's page then says how it ended.
    reporter.event(Event::Exchanging);
    let done = async {
        let tokens = endpoint
            .exchange_code(code, &pkce.verifier, &redirect_uri)
            .await?;
        keep_new_grant(ctx, &stored, &tokens, reporter).await?;
        Ok::<_, Error>(tokens)
    }
    .await;
    match &done {
        Ok(_) => {
            let title = format!("Signed in to {}", provider.display_name);
            let text = format!(
                "The tokens are stored in {}. You can close this tab.",
                ctx.store.describe()
            );
            page.send(title, text).await;
        }
        Err(e) => {
            let text = format!("{}. Next: {}", e.with_causes(), e.hint());
            page.send("Sign-in failed".into(), text).await;
        }
    }
    let tokens = done?;
    Ok(Authorized {
        tokens,
        redirect_uri,
    })
}

/// Before the user signs in, a write that shows whether this token can store the result: the
/// compare-and-swap probe `doctor` makes (the lease written to its own value: nothing
/// changes), or, before the first sign-in, the free lease the new grant would get anyway. A
/// read-only token is found out before the browser opens, not after the code is spent.
/// Returns the snapshot to write against (with the lease the write created).
pub(crate) async fn preflight(ctx: &Context, stored: Stored) -> Result<Stored> {
    use crate::error::DopplerFailure;
    use crate::store::REFRESH_LEASE;
    let existed = stored.exists(REFRESH_LEASE);
    let write = if existed {
        Write::Probe
    } else {
        Write::LeaseFreed
    };
    match ctx.store.write(&stored, write).await {
        Ok(echo) => Ok(match echo.value(REFRESH_LEASE) {
            Some(value) if !existed => stored.with(REFRESH_LEASE, value).after(&echo),
            _ => stored.after(&echo),
        }),
        // Refused by the precondition only: the write itself was allowed.
        Err(e) if matches!(e.store_refusal(), Some((_, DopplerFailure::Conflict))) => {
            ctx.store.load(&ctx.provider).await
        }
        Err(e)
            if matches!(
                e.store_refusal(),
                Some((_, DopplerFailure::ReadOnly | DopplerFailure::Forbidden))
            ) =>
        {
            Err(Error::ReadOnlyCannotSignIn {
                provider: ctx.provider.name.clone(),
                target: ctx.store.describe_target(),
                store: ctx.store.kind(),
            })
        }
        Err(Error::StoreAnswerLost { .. }) => ctx.store.load(&ctx.provider).await,
        Err(e) => Err(e),
    }
}

/// Step 7 for a code just spent: the tokens go to this machine's journal first (as for a
/// refresh), so a store that fails, or a process killed, after the exchange loses nothing:
/// the next command pushes them, unless Doppler has moved on to other tokens meanwhile.
pub(crate) async fn keep_new_grant(
    ctx: &Context,
    stored: &Stored,
    tokens: &TokenSet,
    reporter: &dyn Reporter,
) -> Result<()> {
    let journal = ctx.journal();
    let pending = crate::journal::Pending {
        tokens: tokens.clone(),
        spent: stored
            .refresh_token()
            .cloned()
            .unwrap_or_else(|| secrecy::SecretString::from(String::new())),
        lease: None,
        new_grant: true,
    };
    let journaled = match journal.save(&ctx.provider.name, &pending) {
        Ok(()) => true,
        Err(e) => {
            reporter.event(Event::Warning(&format!(
                "could not write the journal ({e}); storing in {} directly",
                ctx.store.kind()
            )));
            false
        }
    };
    match store_new_grant(ctx, stored, tokens, reporter).await {
        Ok(()) => {
            journal.remove();
            Ok(())
        }
        Err(e) if journaled => Err(Error::StoreFailed {
            provider: ctx.provider.name.clone(),
            store: ctx.store.kind(),
            journal: journal.path.clone(),
            source: Box::new(e),
        }),
        Err(e) => Err(e),
    }
}

/// Step 7, shared with the device flow: one store write of the new grant's tokens, its
/// expiry (on the store's clock) and a free lease, so it always exists. A write whose answer
/// was lost, or that did not take, is judged by a re-read.
pub(crate) async fn store_new_grant(
    ctx: &Context,
    stored: &Stored,
    tokens: &TokenSet,
    reporter: &dyn Reporter,
) -> Result<()> {
    if tokens.expires_at.is_none() {
        reporter.event(Event::Warning(
            "the token response had no expires_in and the access token is not a JWT with exp: the expiry is unknown, so `token` cannot refresh ahead of time",
        ));
    }
    if let Some(w) = &tokens.warning {
        reporter.event(Event::Warning(&format!("{} says: {w}", ctx.provider.name)));
    }
    if tokens.refresh_token.is_none() {
        reporter.event(Event::Warning("the provider returned no refresh token: run `authorize` again when the access token expires"));
    }
    let skew = stored.clock().skew();
    let tokens = tokens.clone().on_store_clock(skew);
    let at = tokens.access_token.expose_secret();
    let landed = match ctx.store.write(stored, Write::NewGrant(&tokens)).await {
        Ok(echo) if echo.holds(ACCESS_TOKEN, at) => true,
        Ok(_) | Err(Error::StoreAnswerLost { .. }) => {
            let now = ctx.store.load(&ctx.provider).await?;
            now.access_token().map(|t| t.expose_secret()) == Some(at)
        }
        Err(e) => return Err(e),
    };
    if !landed {
        let store = ctx.store.kind();
        return Err(Error::store_response(
            &store,
            format!("the new tokens were sent but {store} does not hold them"),
        ));
    }
    // This machine's cache: the new grant replaces whatever any entry held.
    ctx.forget_cached();
    if let (Some(cache), Some(expires_at)) = (ctx.token_cache(), tokens.expires_at) {
        cache.save(&crate::cache::Entry {
            access_token: tokens.access_token.clone(),
            expires_at,
            skew,
        });
    }
    Ok(())
}
