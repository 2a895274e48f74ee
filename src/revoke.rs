//! `revoke`: revokes the stored tokens at the provider (RFC 7009) and removes them from
//! Doppler.
//!
//! 1. A journal left by an earlier run is pushed first, so the newest tokens are the ones
//!    revoked; then this machine's lock, one Doppler read, and the refresh lease (as a refresh
//!    takes it), so no refresh runs meanwhile. A read-only Doppler token fails here, before
//!    the provider is asked.
//! 2. Unless `local_only`: `POST revocation_url` with `token=<refresh token>` and
//!    `token_type_hint=refresh_token`, then the same for the access token, with the
//!    provider's client authentication. Any 2xx is success (RFC 7009 §2.2: also for a token
//!    that was already invalid); 429/5xx are retried like every request ([`crate::http`]).
//!    A provider without `revocation_url` is not asked (the caller is warned).
//! 3. One Doppler write empties `{PREFIX}_ACCESS_TOKEN`, `_REFRESH_TOKEN` and
//!    `_TOKEN_EXPIRES_AT` and releases the lease (compare-and-swap on the refresh token and
//!    the lease). The client id and secret stay.
//!
//! When the provider refuses or cannot be reached for the first token, nothing is removed
//! from Doppler: the tokens are the only handle to revoke the grant later (RFC 7009 §2.2.1:
//! on an error the client must assume the token still exists). `local_only` removes them
//! without asking the provider. A failure on the access token after the refresh token was
//! revoked is only a warning: revoking the refresh token ends the grant at most servers.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::lease::{self, Leased};
use crate::provider::TokenRequestFormat;
use crate::refresh::LOCK_WAIT;
use crate::store::{Stored, Write};
use crate::token::ClientCredentials;
use crate::{Context, Event, Reporter};

/// Largest revocation response read (only its error fields are used).
const BODY_LIMIT: usize = 64 * 1024;

/// What `revoke` did.
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub provider: String,
    /// The tokens the provider accepted to revoke, in order (`refresh_token`, `access_token`).
    pub revoked_at_provider: Vec<&'static str>,
    /// Why the provider was not asked, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_skipped: Option<String>,
    /// The token secrets were emptied in Doppler.
    pub doppler_cleared: bool,
    /// Nothing was stored, so nothing was done.
    pub nothing_stored: bool,
}

/// Revokes at the provider (unless `local_only`), then empties the token secrets in Doppler.
pub async fn revoke(ctx: &Context, local_only: bool, reporter: &dyn Reporter) -> Result<Revoked> {
    crate::refresh::push_pending(ctx, reporter).await?;
    // This machine's cached copies go first, whatever happens next (and again at the end:
    // a reader that read the store meanwhile may have cached what is being revoked).
    ctx.forget_cached();
    let _lock = ctx.refresh_lock(LOCK_WAIT).await?;
    let stored = ctx.store.load(&ctx.provider).await?;
    let mut done = Revoked {
        provider: ctx.provider.name.clone(),
        revoked_at_provider: Vec::new(),
        provider_skipped: None,
        doppler_cleared: false,
        nothing_stored: false,
    };
    if stored.access_token().is_none() && stored.refresh_token().is_none() {
        done.nothing_stored = true;
        return Ok(done);
    }

    // The lease keeps refreshes out while the tokens are revoked and removed.
    let (stored, lease) = if stored.refresh_token().is_some() {
        match lease::take(ctx, stored, |_| None::<()>, lease::MAX_WAIT).await {
            Ok(Leased::Ours(stored, lease)) => (*stored, Some(lease)),
            Ok(Leased::Done(())) => unreachable!("`done` never finds anything"),
            Err(Error::ReadOnlyCannotRefresh { .. }) => return Err(read_only(ctx)),
            Err(e) => return Err(e),
        }
    } else {
        (stored, None)
    };

    let asked = if local_only {
        done.provider_skipped = Some("--local-only".into());
        Ok(())
    } else if let Some(url) = ctx.provider.revocation_url.clone() {
        at_provider(ctx, &stored, url.as_str(), &mut done, reporter).await
    } else {
        done.provider_skipped = Some("the provider definition has no revocation_url".into());
        reporter.event(Event::Warning(&format!(
            "{} has no revocation endpoint (revocation_url): the tokens are removed from {} but stay valid at the provider until they expire; revoke the app's access in your account settings there",
            ctx.provider.display_name,
            ctx.store.kind()
        )));
        Ok(())
    };
    if let Err(e) = asked {
        if let Some(lease) = &lease {
            lease::release(ctx, &stored, lease).await;
        }
        return Err(e);
    }

    let cleared = Write::Cleared {
        lease: lease.as_deref(),
    };
    ctx.store.write(&stored, cleared).await.map_err(|e| {
        if done.revoked_at_provider.is_empty() {
            e
        } else {
            Error::RevokedNotRemoved {
                provider: ctx.provider.name.clone(),
                store: ctx.store.kind(),
                source: Box::new(e),
            }
        }
    })?;
    done.doppler_cleared = true;
    ctx.forget_cached();
    Ok(done)
}

fn read_only(ctx: &Context) -> Error {
    let store = ctx.store.kind();
    Error::store_refused(
        &store,
        403,
        format!(
            "this {store} token cannot write, so the tokens of {} cannot be removed",
            ctx.provider.name
        ),
        crate::error::DopplerFailure::ReadOnly,
    )
}

/// Revokes the refresh token (unless the provider file says not to), then the access token. A
/// failure on the first one asked is an error; on the access token after the refresh token, a
/// warning.
async fn at_provider(
    ctx: &Context,
    stored: &Stored,
    url: &str,
    done: &mut Revoked,
    reporter: &dyn Reporter,
) -> Result<()> {
    let credentials = stored.credentials(&ctx.provider, &ctx.env_credentials)?;
    let refresh = stored
        .refresh_token()
        .filter(|_| ctx.provider.revoke_refresh_token);
    // Nothing this provider takes is stored: removing the refresh token would drop the one
    // handle that can still get an access token to revoke.
    if refresh.is_none() && stored.access_token().is_none() {
        return Err(Error::RevocationNeedsAccessToken {
            provider: ctx.provider.name.clone(),
            display_name: ctx.provider.display_name.clone(),
        });
    }
    let tokens = [
        ("refresh_token", refresh),
        ("access_token", stored.access_token()),
    ];
    for (hint, token) in tokens {
        let Some(token) = token else { continue };
        match send(ctx, &credentials, url, token, hint).await {
            Ok(()) => done.revoked_at_provider.push(hint),
            Err(e) if done.revoked_at_provider.is_empty() => return Err(e),
            Err(e) => reporter.event(Event::Warning(&format!(
                "the refresh token was revoked, but the access token was not ({e}); it stays valid until it expires"
            ))),
        }
    }
    Ok(())
}

/// One RFC 7009 request.
async fn send(
    ctx: &Context,
    credentials: &ClientCredentials,
    url: &str,
    token: &SecretString,
    hint: &'static str,
) -> Result<()> {
    let provider = &ctx.provider;
    let auth = crate::oauth::client_authentication(provider.client_auth, credentials);
    let (body, content_type) = match provider.revocation_body {
        TokenRequestFormat::Form => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token.expose_secret())
                .append_pair("token_type_hint", hint);
            for (name, value) in &auth.form {
                form.append_pair(name, value.expose_secret());
            }
            (form.finish(), "application/x-www-form-urlencoded")
        }
        // Notion and QuickBooks: `{"token": …}` (client credentials in the Basic header, or
        // beside the token for client_secret_post).
        TokenRequestFormat::Json => {
            let mut object = serde_json::Map::new();
            object.insert("token".into(), token.expose_secret().into());
            for (name, value) in &auth.form {
                object.insert((*name).into(), value.expose_secret().into());
            }
            (
                serde_json::Value::Object(object).to_string(),
                "application/json",
            )
        }
    };
    let basic = auth.header;
    let body = SecretString::from(body);
    tracing::debug!(token_type_hint = hint, "revoking at the provider");
    let client = ctx.http.client()?;
    let response = ctx
        .http
        .send(|| {
            let mut request = client
                .post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.expose_secret().to_string());
            for (name, value) in &provider.token_headers {
                request = request.header(name, value);
            }
            if let Some(b) = &basic {
                let mut value = reqwest::header::HeaderValue::from_str(b.expose_secret())
                    .expect("base64 is a valid header value");
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            request
        })
        .await
        .map_err(|e| Error::RevocationUnreachable {
            provider: provider.name.clone(),
            url: url.to_string(),
            source: Box::new(crate::http::TransportError::from(e)),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = crate::http::read_capped(response, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let detail = match crate::oauth::parse_error(&body) {
        Some(e) => match e.description {
            Some(d) => format!("{} ({d})", e.error),
            None => e.error,
        },
        None => format!("HTTP {}", status.as_u16()),
    };
    Err(Error::RevocationFailed {
        provider: provider.name.clone(),
        url: url.to_string(),
        token: hint.replace('_', " "),
        detail,
    })
}
