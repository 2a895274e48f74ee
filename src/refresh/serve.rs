//! What is served without a refresh, or after one: this machine's cached token (and the outage
//! bridge that falls back on it), the store's token while still valid, and the caching of
//! what the store or a refresh gave.

use secrecy::ExposeSecret as _;

use super::Fresh;
use crate::cache::{Cache, Entry};
use crate::error::Error;
use crate::store::Stored;
use crate::token::TokenSet;
use crate::{Event, Reporter};

/// The outage bridge: this machine's cached token while it is valid at all, with one warning
/// that says `why` the store was not used.
pub(super) fn bridged(cache: Option<&Cache>, reporter: &dyn Reporter, why: &str) -> Option<Fresh> {
    let entry = cache?.load();
    let fresh = cached_beyond(entry.as_ref(), 0)?;
    let left = entry.as_ref().map_or(0, |e| e.seconds_left());
    reporter.event(Event::Warning(&format!(
        "{why}; using this machine's cached token, valid for {left} s more"
    )));
    Some(fresh)
}

/// An outage, or a store failure because of one (writes answered 5xx count: their answers
/// are lost, and re-reads showed them not landed).
pub(super) fn outage_within(e: &Error) -> bool {
    let outage = |e: &Error| is_outage(e) || matches!(e, Error::StoreAnswerLost { .. });
    match e {
        Error::StoreFailed { source, .. } => outage(source),
        e => outage(e),
    }
}

/// A cached token with more than `buffer` seconds left, as the caller gets it.
pub(super) fn cached_beyond(entry: Option<&Entry>, buffer: i64) -> Option<Fresh> {
    let entry = entry.filter(|e| e.seconds_left() > buffer)?;
    Some(Fresh {
        access_token: entry.access_token.clone(),
        expires_at: Some(entry.local_expiry()),
        refreshed: false,
    })
}

/// The store unreachable, rate-limiting or failing: the cases a cached token may bridge.
pub(super) fn is_outage(e: &Error) -> bool {
    use crate::error::DopplerFailure::{RateLimited, Server};
    e.store_unreachable() || matches!(e.store_refusal(), Some((_, RateLimited | Server)))
}

/// Caches a token read from the store (when its expiry is known and it is not cached yet).
pub(super) fn remember(cache: Option<&Cache>, stored: &Stored, fresh: &Fresh) {
    let (Some(cache), Some(expires_at)) = (cache, stored.expires_at()) else {
        return;
    };
    // Not over the same token, nor over a newer one (a later expiry: what `authorize` or a
    // refresh on this machine cached after this process read the store).
    let keep = cache.load().is_some_and(|c| {
        c.access_token.expose_secret() == fresh.access_token.expose_secret()
            || c.expires_at > expires_at
    });
    if !keep {
        cache.save(&Entry {
            access_token: fresh.access_token.clone(),
            expires_at,
            skew: stored.clock().skew(),
        });
    }
}

/// Caches the tokens of a refresh and returns them to the caller.
pub(super) fn cache_new(cache: Option<&Cache>, tokens: TokenSet, skew: i64) -> Fresh {
    if let (Some(cache), Some(expires_at)) = (cache, tokens.expires_at) {
        cache.save(&Entry {
            access_token: tokens.access_token.clone(),
            expires_at,
            skew,
        });
    }
    fresh(tokens, skew)
}

/// What the caller gets: the expiry on this machine's clock.
fn fresh(tokens: TokenSet, skew: i64) -> Fresh {
    Fresh {
        access_token: tokens.access_token,
        expires_at: tokens.expires_at.map(|e| e - skew),
        refreshed: true,
    }
}

/// The stored access token and how many seconds it has left, when its expiry is known and
/// still ahead (on the store's clock).
pub(super) fn still_valid(stored: &Stored) -> Option<(Fresh, i64)> {
    let access = stored.access_token()?;
    let left = stored.expires_at()? - stored.clock().now();
    (left > 0).then(|| {
        let fresh = Fresh {
            access_token: access.clone(),
            expires_at: stored.expires_at().map(|e| e - stored.clock().skew()),
            refreshed: false,
        };
        (fresh, left)
    })
}
