//! `refresh` and `token`, safe under refresh-token rotation across processes and machines.
//!
//! The protocol, for one (Doppler project/config, provider):
//!
//! 1. A journal left by an earlier run is pushed to Doppler first ([`crate::journal`]).
//! 2. One Doppler read. A token outside the buffer is returned as it is.
//! 3. A per-user OS file lock serializes processes on this machine. A process that waited for
//!    it re-reads Doppler: the holder has usually refreshed already.
//! 4. A lease in Doppler (`{PREFIX}_REFRESH_LEASE`) serializes machines. It is taken with one
//!    write that is a compare-and-swap on the lease *and* on the refresh token, so a stale read
//!    cannot win. A held, unexpired lease means another machine is refreshing: wait and re-read
//!    until its tokens appear or the lease expires. A read-only Doppler token fails here, before
//!    anything is sent to the provider.
//! 5. One token request. The answer goes to the journal at once, then to Doppler in one write
//!    (a compare-and-swap against the refresh token just spent, releasing the lease), then the
//!    journal is removed.
//!
//! Cost without contention: 1 Doppler read, 1 lease write, 1 token request, 1 Doppler write.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::journal::Pending;
use crate::lease::{self, Leased};
use crate::store::Stored;
use crate::token::{now, TokenEndpoint, TokenSet};
use crate::{Context, Event, Reporter};

mod hooks;
mod land;
mod serve;

use hooks::failpoint;
pub(crate) use hooks::{clock_offset, injected_fault};
use land::{land, replay, replay_locked};
use serve::{bridged, cache_new, cached_beyond, is_outage, outage_within, remember, still_valid};

/// Longest wait for this machine's lock.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(90);
/// Longest wait for this machine's other processes before reading the store: past it (a
/// refresh that hangs on a slow provider, a holder retrying a failing store) a process reads
/// for itself, as it would without them.
const TURN_WAIT: Duration = Duration::from_secs(5);
/// A clock further than this from the store's is worth a warning.
const SKEW_WARNING: i64 = 60;
/// How long the token answer is awaited with `left` seconds of the lease to run: what leaves
/// the store write its budget and a margin before the lease ends (so no other machine takes
/// over while this refresh is in flight or unstored), and never more than a grant's timeout.
/// The lease is taken with at least [`lease::MIN_LEFT`] left, so this is at least 10 s.
fn grant_limit(left: i64) -> std::time::Duration {
    let store = crate::http::RETRY_BUDGET.as_secs() as i64;
    let seconds = (left - store - lease::STORE_CLOCK_MARGIN).max(1) as u64;
    std::time::Duration::from_secs(seconds).min(crate::http::GRANT_TIMEOUT)
}

/// A token with at least this long left is served at once when another process holds the
/// lease (perhaps a dead one, whose lease runs out only after 120 s), instead of waiting.
const SERVE_WHILE_LEASED: i64 = 60;
/// How long such a token's holder waits for another process's lease before serving it (a
/// live holder is done in a second or two; a killed one's lease lasts 120 s).
const PATIENCE_WHILE_VALID: Duration = Duration::from_secs(10);

/// A valid access token and when it expires.
pub struct Fresh {
    pub access_token: SecretString,
    pub expires_at: Option<i64>,
    /// Whether this call refreshed at the provider.
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
    due_at(expires_at, buffer, now())
}

/// [`refresh_due`] at `now` (the store's clock, for a stored expiry).
pub(crate) fn due_at(expires_at: Option<i64>, buffer: i64, now: i64) -> bool {
    expires_at.is_some_and(|e| e.saturating_sub(now) <= buffer)
}

/// What the caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A token valid beyond the buffer: refresh only if due. When the store fails, a token
    /// still valid serves (the outage bridge): what scripts want.
    Valid,
    /// As `Valid`, but never bridged: a keep-alive job (`refresh --if-due`) must fail when
    /// the store does, not report a token it could not refresh or store.
    Due,
    /// A new token from the provider, unless another process refreshed meanwhile.
    Refresh,
}

impl Want {
    /// `Valid` or `Due`: a token valid beyond the buffer is enough.
    fn valid(self) -> bool {
        matches!(self, Want::Valid | Want::Due)
    }
}

/// Refreshes now with the stored refresh token and stores the new tokens.
pub async fn refresh(ctx: &Context, reporter: &dyn Reporter) -> Result<Fresh> {
    obtain(ctx, Want::Refresh, None, reporter).await
}

/// A valid access token: the stored one while it is outside the buffer, else a refreshed one.
pub async fn token(ctx: &Context, reporter: &dyn Reporter) -> Result<Fresh> {
    obtain(ctx, Want::Valid, None, reporter).await
}

/// [`token`] for a keep-alive job (`refresh --if-due`): the same path, but a store failure is
/// an error, never bridged by a token still valid.
pub async fn if_due(ctx: &Context, reporter: &dyn Reporter) -> Result<Fresh> {
    obtain(ctx, Want::Due, None, reporter).await
}

/// Until when (this machine's clock) this machine's cache holds a token for the provider.
pub fn cached_until(ctx: &Context) -> Option<i64> {
    let entry = ctx.token_cache()?.load()?;
    (entry.seconds_left() > 0).then(|| entry.local_expiry())
}

/// `token --after-401`: the caller's token was refused by the API. That token is `refused`
/// when the caller says (`--refused-token-stdin`), else this machine's cached one (else the
/// one the store holds); the cache entry is dropped, and a refresh happens only if the store
/// still holds the refused token.
pub async fn after_unauthorized(
    ctx: &Context,
    refused: Option<SecretString>,
    reporter: &dyn Reporter,
) -> Result<Fresh> {
    let refused = match refused {
        Some(token) => Some(token),
        None => match ctx.token_cache().and_then(|c| c.load()) {
            Some(entry) => Some(entry.access_token),
            None => ctx.store.load(&ctx.provider).await?.access_token().cloned(),
        },
    };
    obtain(ctx, Want::Valid, refused.as_ref(), reporter).await
}

/// The core: returns a token per `want`. `rejected` is an access token the caller saw refused
/// (HTTP 401): a stored token equal to it is never returned as valid.
pub(crate) async fn obtain(
    ctx: &Context,
    want: Want,
    rejected: Option<&SecretString>,
    reporter: &dyn Reporter,
) -> Result<Fresh> {
    obtain_from(ctx, want, rejected, None, reporter).await
}

/// This machine's cached token, when it is valid beyond the buffer and no journal waits: what
/// [`token`] answers without any request.
pub(crate) fn cached(ctx: &Context) -> Option<Fresh> {
    if ctx.journal().exists() {
        return None;
    }
    cached_beyond(ctx.token_cache()?.load().as_ref(), ctx.refresh_buffer)
}

/// [`token`], starting from `first`: a snapshot of the store read moments ago for several
/// providers in one request (`exec -p A -p B`). A journal found here is replayed and the
/// store read again after it.
pub(crate) async fn token_from(
    ctx: &Context,
    first: Stored,
    reporter: &dyn Reporter,
) -> Result<Fresh> {
    obtain_from(ctx, Want::Valid, None, Some(first), reporter).await
}

async fn obtain_from(
    ctx: &Context,
    want: Want,
    rejected: Option<&SecretString>,
    first: Option<Stored>,
    reporter: &dyn Reporter,
) -> Result<Fresh> {
    let journal = ctx.journal();
    let cache = ctx.token_cache();
    let cached = match (&cache, rejected) {
        (Some(c), None) => c.load(),
        (Some(c), Some(_)) => {
            // The caller saw a token refused: this machine's copy is no proof of anything.
            c.clear();
            None
        }
        (None, _) => None,
    };
    // The hot path: a cached token valid beyond the buffer costs no request at all.
    if want.valid() && !journal.exists() {
        if let Some(fresh) = cached_beyond(cached.as_ref(), ctx.refresh_buffer) {
            return Ok(fresh);
        }
    }
    // Not served from the cache, or a journal: the processes of this machine take turns
    // before reading the store. When one reads or refreshes, the others find its token in the
    // cache and send nothing (16 callers at once cost one read and one refresh, not 16 reads);
    // a journal is pushed by whoever holds the lock, only if it is still there then. Without
    // a usable lock (a read-only state dir), or after [`TURN_WAIT`], each reads for itself.
    let mut early = None;
    let share = want.valid() && rejected.is_none() && cache.is_some();
    let pending = journal.exists();
    if pending || share {
        // A journal is pushed under the lock; a caller holding a cached token still valid
        // waits for that only briefly (the holder may be retrying a store that is down).
        let bridge = share && want == Want::Valid;
        let can_wait_less = bridge && cached_beyond(cached.as_ref(), 0).is_some();
        let wait = if pending && !can_wait_less {
            LOCK_WAIT
        } else {
            TURN_WAIT
        };
        let lock = match ctx.refresh_lock(wait).await {
            Ok(lock) => Some(lock),
            Err(e) if !journal.exists() => {
                tracing::debug!("no turn-taking on this machine: {e}");
                None
            }
            Err(e) => {
                let why = format!(
                    "another process of this machine is pushing the tokens kept here to {}",
                    ctx.store.kind()
                );
                let cache = cache.as_ref().filter(|_| bridge);
                return bridged(cache, reporter, &why).ok_or(e);
            }
        };
        if let Some(lock) = lock {
            match replay_locked(ctx, &journal, reporter).await {
                Ok(()) => {}
                // The store down with tokens waiting here: a cached token still valid (the
                // one the journal holds, cached when it was saved) keeps scripts going.
                Err(e) if bridge && outage_within(&e) => {
                    let why = format!(
                        "{} could not take the tokens kept on this machine ({})",
                        ctx.store.kind(),
                        e.with_causes()
                    );
                    return bridged(cache.as_ref(), reporter, &why).ok_or(e);
                }
                Err(e) => return Err(e),
            }
            // Looked at again under the lock, waited or not: a holder may have finished
            // between the first look and the lock.
            if share {
                let now_cached = cache.as_ref().and_then(|c| c.load());
                if let Some(fresh) = cached_beyond(now_cached.as_ref(), ctx.refresh_buffer) {
                    return Ok(fresh);
                }
                // What the process we waited for just got, even if it lives shorter than the
                // buffer: taken, not refreshed once more.
                let newer = now_cached.filter(|c| {
                    lock.waited
                        && cached.as_ref().is_none_or(|old| {
                            old.access_token.expose_secret() != c.access_token.expose_secret()
                        })
                });
                if let Some(fresh) = cached_beyond(newer.as_ref(), 0) {
                    return Ok(fresh);
                }
            }
            early = Some(lock);
        }
    }

    // A snapshot read before a journal was replayed is stale: read again.
    let first = first.filter(|_| !pending);
    let read_now = first.is_none();
    let loaded = match first {
        Some(snapshot) => Ok(snapshot),
        None => ctx.store.load(&ctx.provider).await,
    };
    let stored = match loaded {
        Ok(s) => s,
        Err(e) if want == Want::Valid && is_outage(&e) => {
            // Doppler is down or rate-limiting: a cached token still valid keeps scripts going
            // (none after a 401: that entry was dropped above).
            let why = format!("{} could not be read ({e})", ctx.store.kind());
            return bridged(cache.as_ref(), reporter, &why).ok_or(e);
        }
        Err(e) => return Err(e),
    };
    warn_on_skew(&stored, reporter);
    let first_seen = stored.refresh_token().cloned();
    if let Some(fresh) = usable(ctx, &stored, want, rejected, first_seen.as_ref()) {
        remember(cache.as_ref(), &stored, &fresh);
        return Ok(fresh);
    }
    stored.require_refresh_token(&ctx.provider.name)?;

    // Taken before the read, the lock needs no second look at the store.
    let (lock, read_under_lock) = match early {
        Some(lock) => (lock, read_now),
        None => (ctx.refresh_lock(LOCK_WAIT).await?, false),
    };
    let mut stored = stored;
    if lock.waited && !read_under_lock {
        // The holder has usually just refreshed and cached the new token: no read needed.
        if want.valid() {
            let now_cached = cache.as_ref().and_then(|c| c.load());
            let newer = now_cached.as_ref().filter(|c| {
                stored
                    .access_token()
                    .is_none_or(|a| a.expose_secret() != c.access_token.expose_secret())
            });
            if let Some(fresh) = cached_beyond(newer, 0) {
                return Ok(fresh);
            }
        }
        stored = ctx.store.load(&ctx.provider).await?;
        if let Some(fresh) = usable(ctx, &stored, want, rejected, first_seen.as_ref()) {
            remember(cache.as_ref(), &stored, &fresh);
            return Ok(fresh);
        }
    }

    // A token still valid is better than a wait for another process's lease (a killed
    // holder's runs out only after 120 s) or an error once the wait is over.
    let still_valid = (want == Want::Valid && rejected.is_none())
        .then(|| still_valid(&stored))
        .flatten();
    let patience = match &still_valid {
        Some((_, left)) if *left >= SERVE_WHILE_LEASED => PATIENCE_WHILE_VALID,
        _ => lease::MAX_WAIT,
    };
    let done = |s: &Stored| usable(ctx, s, want, rejected, first_seen.as_ref());
    let (stored, lease) = match lease::take(ctx, stored, done, patience).await {
        Ok(Leased::Ours(stored, lease)) => (*stored, lease),
        Ok(Leased::Done(fresh)) => return Ok(fresh),
        // Busy, or the store failing mid-way (the lease write rate-limited, a re-read
        // unreachable): the token read first still serves while it is valid, as a cached
        // one would when the first read fails.
        Err(e) if matches!(e, Error::RefreshBusy { .. }) || is_outage(&e) => {
            return match still_valid {
                Some((fresh, left)) if fresh.expires_at.is_some_and(|at| at > now()) => {
                    let why = match &e {
                        Error::RefreshBusy { .. } => {
                            "another process holds the refresh lease".to_string()
                        }
                        e => format!("{} failed ({e})", ctx.store.kind()),
                    };
                    reporter.event(Event::Warning(&format!(
                        "{why}; using the stored token, valid for about {left} s more"
                    )));
                    Ok(fresh)
                }
                _ => Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let spent = stored.require_refresh_token(&ctx.provider.name)?;
    let credentials = match stored.credentials(&ctx.provider, &ctx.env_credentials) {
        Ok(c) => c,
        Err(e) => {
            lease::release(ctx, &stored, &lease).await;
            return Err(e);
        }
    };

    // Room for the answer before the refresh token is spent: a disk that fills up meanwhile
    // cannot refuse it. Without it (a read-only state dir) Doppler is the only copy.
    if let Err(e) = journal.reserve() {
        reporter.event(Event::Warning(&format!(
            "could not reserve the refresh journal ({e}); the new tokens go to {} only",
            ctx.store.kind()
        )));
    }
    reporter.event(Event::Refreshing);
    let endpoint = TokenEndpoint::new(&ctx.provider, &credentials, &ctx.http);
    let limit = grant_limit(lease::seconds_left(&stored, &lease));
    let tokens: TokenSet = match endpoint.refresh(&spent, limit).await {
        Ok(t) => t,
        Err(e) => {
            if matches!(e, Error::RefreshRefused { .. }) {
                // Another machine may have rotated it after all: believe Doppler.
                let now_stored = ctx.store.load(&ctx.provider).await?;
                let rotated = now_stored
                    .refresh_token()
                    .is_some_and(|rt| rt.expose_secret() != spent.expose_secret());
                let theirs = rotated
                    .then(|| usable(ctx, &now_stored, want, rejected, Some(&spent)))
                    .flatten();
                if let Some(fresh) = theirs {
                    lease::release(ctx, &now_stored, &lease).await;
                    remember(cache.as_ref(), &now_stored, &fresh);
                    return Ok(fresh);
                }
            }
            lease::release(ctx, &stored, &lease).await;
            return Err(e);
        }
    };
    if tokens.expires_at.is_none() {
        reporter.event(Event::Warning(
            "the refresh response had no expires_in and the access token is not a JWT with exp: the expiry is unknown",
        ));
    }
    if let Some(w) = &tokens.warning {
        reporter.event(Event::Warning(&format!("{} says: {w}", ctx.provider.name)));
    }

    let skew = stored.clock().skew();
    let pending = Pending {
        new_grant: false,
        tokens: tokens.on_store_clock(skew),
        spent,
        lease: Some(lease),
    };
    if let Err(e) = journal.save(&ctx.provider.name, &pending) {
        // Doppler is the only copy left to make: try it now rather than lose the tokens.
        reporter.event(Event::Warning(&format!(
            "could not write the refresh journal ({e}); storing in {} directly",
            ctx.store.kind()
        )));
        return match land(ctx, stored, &journal, &pending, reporter).await {
            Ok(()) => Ok(cache_new(cache.as_ref(), pending.tokens, skew)),
            Err(Error::StoreFailed { source, .. }) => Err(Error::TokensLost {
                provider: ctx.provider.name.clone(),
                store: ctx.store.kind(),
                source,
            }),
            Err(e) => Err(e),
        };
    }
    failpoint("after-journal");
    // Cached at once, before the lock is given up (the next process of this machine finds it),
    // and before the store write: should that fail, this machine still has the new token.
    let fresh = cache_new(cache.as_ref(), pending.tokens.clone(), skew);
    match land(ctx, stored, &journal, &pending, reporter).await {
        Ok(()) => {}
        // The store down or rate-limiting: the new tokens wait in the journal, and the caller
        // who wants a token has one.
        Err(e) if want == Want::Valid && outage_within(&e) => {
            reporter.event(Event::Warning(&format!(
                "{store} could not take the new tokens ({}); they are kept on this machine and go to {store} on the next run; using the new token",
                e.with_causes(),
                store = ctx.store.kind()
            )));
        }
        Err(e) => return Err(e),
    }
    drop(lock);
    Ok(fresh)
}

/// Says once per command when this machine's clock and the store's differ by more than a
/// minute: leases and expiries are judged on the store's clock, but people read this one.
fn warn_on_skew(stored: &Stored, reporter: &dyn Reporter) {
    let skew = stored.clock().skew();
    if skew.abs() > SKEW_WARNING {
        let (how, secs) = if skew > 0 {
            ("behind", skew)
        } else {
            ("ahead of", -skew)
        };
        reporter.event(Event::Warning(&format!(
            "this machine's clock is {secs} s {how} {store}'s; oauth-pkce judges leases and expiry by {store}'s clock, but fix this one (timedatectl set-ntp true)",
            store = stored.store_kind()
        )));
    }
}

/// Pushes a journal left by an earlier run, if there is one (a local check; no request
/// otherwise). Every command that reads tokens calls this first.
pub async fn push_pending(ctx: &Context, reporter: &dyn Reporter) -> Result<()> {
    replay(ctx, &ctx.journal(), reporter).await
}

/// The stored token, if it satisfies `want` without a refresh.
fn usable(
    ctx: &Context,
    stored: &Stored,
    want: Want,
    rejected: Option<&SecretString>,
    first_seen: Option<&SecretString>,
) -> Option<Fresh> {
    let access = stored.access_token()?;
    if rejected.is_some_and(|r| r.expose_secret() == access.expose_secret()) {
        return None;
    }
    let expires_at = stored.expires_at();
    let now = stored.clock().now();
    // Someone else refreshed since we first looked.
    let refreshed_meanwhile = match (first_seen, stored.refresh_token()) {
        (Some(a), Some(b)) => a.expose_secret() != b.expose_secret(),
        _ => false,
    };
    let ok = match want {
        // Their token is as fresh as ours would be, even when the provider's tokens live
        // shorter than the buffer: use it while it is valid at all.
        Want::Valid | Want::Due => {
            !due_at(expires_at, ctx.refresh_buffer, now)
                || (refreshed_meanwhile && !due_at(expires_at, 0, now))
        }
        // That is the refresh asked for.
        Want::Refresh => refreshed_meanwhile,
    } || (rejected.is_some() && !due_at(expires_at, 0, now));
    ok.then(|| Fresh {
        access_token: access.clone(),
        expires_at: expires_at.map(|e| e - stored.clock().skew()),
        refreshed: false,
    })
}

#[cfg(test)]
mod tests;
