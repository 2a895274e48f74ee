//! `refresh` and `token`: read what Doppler holds, refresh when asked or when the access token
//! expires within the buffer, and store the new tokens in one write whose refresh-token change
//! is a compare-and-swap against the refresh token just spent.

use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::store::{Stored, ACCESS_TOKEN, REFRESH_TOKEN};
use crate::token::{now, TokenEndpoint, TokenSet};
use crate::{Context, Event, Reporter};

/// A valid access token and when it expires.
pub struct Fresh {
    pub access_token: SecretString,
    pub expires_at: Option<i64>,
    /// Whether this call refreshed.
    pub refreshed: bool,
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("access_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("refreshed", &self.refreshed)
            .finish()
    }
}

/// Whether a token expiring at `expires_at` must be refreshed now, given `buffer` seconds.
/// An unknown expiry is not due (nothing says it is).
pub fn refresh_due(expires_at: Option<i64>, buffer: i64) -> bool {
    expires_at.is_some_and(|e| e - now() <= buffer)
}

/// Refreshes now with the stored refresh token and stores the new tokens.
pub async fn refresh(ctx: &Context, reporter: &dyn Reporter) -> Result<Fresh> {
    let stored = Stored::load(&ctx.doppler, &ctx.provider).await?;
    refresh_stored(ctx, &stored, reporter).await
}

/// A valid access token: the stored one while it is outside the buffer, else a refreshed one.
pub async fn token(ctx: &Context, reporter: &dyn Reporter) -> Result<Fresh> {
    let stored = Stored::load(&ctx.doppler, &ctx.provider).await?;
    if let Some(access) = stored.access_token() {
        let expires_at = stored.expires_at();
        if !refresh_due(expires_at, ctx.refresh_buffer) {
            return Ok(Fresh {
                access_token: access.clone(),
                expires_at,
                refreshed: false,
            });
        }
    }
    refresh_stored(ctx, &stored, reporter).await
}

async fn refresh_stored(ctx: &Context, stored: &Stored, reporter: &dyn Reporter) -> Result<Fresh> {
    let provider = &ctx.provider;
    let Some(spent) = stored.refresh_token().cloned() else {
        let missing = if stored.access_token().is_none() {
            ACCESS_TOKEN
        } else {
            REFRESH_TOKEN
        };
        return Err(Error::NotAuthorized {
            provider: provider.name.clone(),
            secret: stored.name(missing),
        });
    };
    let credentials = stored.credentials(provider, &ctx.env_credentials)?;
    reporter.event(Event::Refreshing);
    let tokens: TokenSet = TokenEndpoint::new(provider, &credentials, &ctx.http)
        .refresh(&spent)
        .await?;
    if tokens.expires_at.is_none() {
        reporter.event(Event::Warning(
            "the refresh response had no expires_in and the access token is not a JWT with exp: the expiry is unknown",
        ));
    }
    let changes = stored.token_changes(&tokens, Some(&spent), false);
    ctx.doppler.write(&changes).await?;
    Ok(Fresh {
        access_token: tokens.access_token,
        expires_at: tokens.expires_at,
        refreshed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_within_buffer_only() {
        assert!(refresh_due(Some(now() + 100), 300));
        assert!(refresh_due(Some(now() - 10), 300));
        assert!(!refresh_due(Some(now() + 1000), 300));
        assert!(!refresh_due(None, 300));
    }
}
