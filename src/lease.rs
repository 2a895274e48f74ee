//! The refresh lease (`{PREFIX}_REFRESH_LEASE`): how machines sharing one store take turns to
//! spend the refresh token.
//!
//! Its value is JSON: `{"owner":"host:pid:nonce","until":T}` while someone refreshes, with `T`
//! in the store's time (Doppler's `Date`), and `{"free":"nonce"}` otherwise — never empty once
//! oauth-pkce has written it, and a fresh nonce at every release, so a compare-and-swap against
//! a value read earlier fails if anything happened since. Safety rests on that one secret's
//! precondition on a non-empty value; nothing depends on how Doppler treats
//! `originalValue: ""` or whether it applies a batch all-or-nothing.
//!
//! Taking it: one write, lease as read → ours (and the refresh token compared with itself, as
//! a second guard where batches are atomic). What the write echoes decides, not its status: a
//! change that did not take (a 409, or a 200 with the change skipped) is a lost race — re-read
//! and carry on. After a lost answer the re-read decides: our own owner id means we hold it.
//! A refusal that leaves the lease unchanged is not a race: three of them end the wait with
//! that error instead of a read–write loop.
//!
//! Waiting: another machine's lease has run out when the store's clock says so (never this
//! machine's clock), or when this process has watched the same value unchanged for longer than
//! a lease lasts. Re-reads back off from 1 s to 5 s (a waiter makes about 30 reads per lease;
//! Doppler's Developer plan allows 120 secret reads a minute per token), and a 429 is waited out.
//!
//! Bounds: a lease is handed to its taker only with [`MIN_LEFT`] of its 120 s still to run (a
//! slow or lost answer to the lease write can eat into it: the taker then lets it go and takes
//! it again); the refresh then waits for the token answer only as long as leaves the store
//! write ([`crate::http`]'s 30 s retry budget) and a margin before the lease ends
//! (`refresh::grant_limit`). So no refresh is in flight, or unstored, when another machine may
//! take over. A waiter gives up after the lease plus 15 s ([`Error::RefreshBusy`]).

use std::time::{Duration, Instant};

use rand::Rng as _;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::error::{DopplerFailure, Error, Holder, Result};
use crate::store::{Stored, Write, REFRESH_LEASE, REFRESH_TOKEN};
use crate::Context;

/// How long a lease lasts, in the store's seconds.
pub(crate) const LEASE_SECONDS: i64 = 120;
/// The least of a lease a taker starts a refresh with: the store write's budget, a margin
/// for the machines' view of the store's clock, and 10 s for the token answer.
pub(crate) const MIN_LEFT: i64 =
    crate::http::RETRY_BUDGET.as_secs() as i64 + STORE_CLOCK_MARGIN + 10;
/// How far two machines' readings of the store's clock may differ (its `Date` has 1 s
/// resolution; each machine's skew is measured against it).
pub(crate) const STORE_CLOCK_MARGIN: i64 = 5;
/// A waiter gives up after this.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(LEASE_SECONDS as u64 + 15);
/// First and longest pause between re-reads of a held lease.
const POLL_FIRST: Duration = Duration::from_millis(1000);
const POLL_MAX: Duration = Duration::from_millis(5000);
/// Refusals of a lease write that leave the lease unchanged before the error is believed.
const MAX_REFUSALS: u32 = 3;

/// The lease value, as this module writes it.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Value {
    Held { owner: String, until: i64 },
    Free { free: String },
}

/// What the lease secret says.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Absent, empty, or not a value of ours: to be made free first.
    Unset,
    Free,
    Held {
        owner: String,
        until: i64,
    },
}

fn state(stored: &Stored) -> State {
    if !stored.exists(REFRESH_LEASE) {
        return State::Unset;
    }
    match stored
        .get(REFRESH_LEASE)
        .and_then(|v| serde_json::from_str::<Value>(v.expose_secret()).ok())
    {
        Some(Value::Free { .. }) => State::Free,
        Some(Value::Held { owner, until }) => State::Held { owner, until },
        None => State::Unset,
    }
}

fn raw(stored: &Stored) -> String {
    stored
        .get(REFRESH_LEASE)
        .map(|v| v.expose_secret().to_string())
        .unwrap_or_default()
}

/// How much of `lease` (a value this process wrote) is left, in seconds of the store's clock
/// as `stored` reads it; 0 for a value that is not a held lease.
pub(crate) fn seconds_left(stored: &Stored, lease: &str) -> i64 {
    match serde_json::from_str::<Value>(lease) {
        Ok(Value::Held { until, .. }) => until.saturating_sub(stored.clock().now()),
        _ => 0,
    }
}

/// A free lease value, with a fresh nonce.
pub(crate) fn free() -> String {
    let nonce: u64 = rand::thread_rng().gen();
    serde_json::to_string(&Value::Free {
        free: format!("{nonce:016x}"),
    })
    .expect("a lease serializes")
}

/// The outcome of [`take`].
pub(crate) enum Leased<T> {
    /// The lease is ours (its value), taken against the refresh token in this snapshot.
    Ours(Box<Stored>, String),
    /// `done` found what the caller wanted in a fresh read while waiting.
    Done(T),
}

/// Takes the lease; waits while another machine holds it (at most `patience`, then
/// [`Error::RefreshBusy`]); returns early when `done` finds what the caller wanted in a fresh
/// read (another machine's refresh).
pub(crate) async fn take<T>(
    ctx: &Context,
    mut stored: Stored,
    done: impl Fn(&Stored) -> Option<T>,
    patience: Duration,
) -> Result<Leased<T>> {
    let provider = &ctx.provider.name;
    let owner = owner_id();
    let started = Instant::now();
    let mut pause = POLL_FIRST;
    let mut refusals = 0;
    // The held value being watched and since when (monotonic).
    let mut watched: Option<(String, Instant)> = None;
    loop {
        let lease = state(&stored);
        if matches!(&lease, State::Held { owner: o, .. } if *o == owner) {
            // Ours: a write whose answer was lost, or one that took the lease but found the
            // refresh token moved. The fresh read decides what to do with it.
            let value = raw(&stored);
            if let Some(found) = done(&stored) {
                release(ctx, &stored, &value).await;
                return Ok(Leased::Done(found));
            }
            if seconds_left(&stored, &value) >= MIN_LEFT {
                return Ok(Leased::Ours(Box::new(stored), value));
            }
            // Too little of it left to refresh and store in: let it go and take a new one.
            tracing::debug!("our lease has too little time left; taking a new one");
            release(ctx, &stored, &value).await;
            if started.elapsed() > patience {
                return Err(Error::RefreshBusy {
                    provider: provider.clone(),
                    seconds: started.elapsed().as_secs(),
                    holder: Holder::AnotherMachine,
                });
            }
            stored = reload(ctx).await?;
            continue;
        }
        if let Some(found) = done(&stored) {
            return Ok(Leased::Done(found));
        }
        let refresh_token = stored.require_refresh_token(provider)?;
        let before = raw(&stored);
        let mut wait = Duration::ZERO;
        let expired = match &lease {
            State::Held { until, .. } => {
                let since = match &watched {
                    Some((value, since)) if *value == before => *since,
                    _ => {
                        watched = Some((before.clone(), Instant::now()));
                        Instant::now()
                    }
                };
                let by_store = stored.clock().is_shared() && *until <= stored.clock().now();
                by_store || since.elapsed() >= Duration::from_secs(LEASE_SECONDS as u64)
            }
            _ => true,
        };
        let written = match lease {
            State::Unset => {
                // Converting an empty lease compares with "", which Doppler may not enforce:
                // let any concurrent conversion land before reading what to take.
                wait = POLL_FIRST;
                Some(
                    ctx.store
                        .write(&stored, Write::LeaseFreed)
                        .await
                        .map(|_| true),
                )
            }
            State::Held { .. } if !expired => {
                tracing::debug!("refresh lease held by another process; waiting");
                wait = pause;
                pause = (pause * 3 / 2).min(POLL_MAX);
                None
            }
            State::Free | State::Held { .. } => {
                let value = serde_json::to_string(&Value::Held {
                    owner: owner.clone(),
                    until: stored.clock().now() + LEASE_SECONDS,
                })
                .expect("a lease serializes");
                let write = Write::LeaseTaken {
                    lease: &value,
                    refresh_token: &refresh_token,
                };
                match ctx.store.write(&stored, write).await {
                    Ok(echo) if echo.holds(REFRESH_LEASE, &value) => {
                        let ours = stored.after(&echo);
                        if seconds_left(&ours, &value) < MIN_LEFT {
                            // Too little left to refresh in: let it go at once, then take
                            // a new one (the wait may end first: nothing is left held).
                            release(ctx, &ours, &value).await;
                            Some(Ok(true))
                        } else if echo.holds(REFRESH_TOKEN, refresh_token.expose_secret()) {
                            return Ok(Leased::Ours(Box::new(ours), value));
                        } else {
                            // Ours, but the refresh token moved meanwhile: the re-read decides.
                            Some(Ok(true))
                        }
                    }
                    Ok(_) => {
                        tracing::debug!("lease compare-and-swap lost (the change did not take)");
                        Some(Ok(true))
                    }
                    Err(e) => Some(Err(e)),
                }
            }
        };
        match written {
            None | Some(Ok(_)) => {}
            Some(Err(e)) if is_read_only(&e) => {
                return Err(Error::ReadOnlyCannotRefresh {
                    provider: provider.clone(),
                    store: ctx.store.kind(),
                })
            }
            Some(Err(Error::StoreAnswerLost { .. })) => {
                tracing::debug!("the answer to a lease write was lost; re-reading");
            }
            Some(Err(e)) if is_refusal(&e) => {
                // A lost race, or a refusal the re-read will show for what it is.
                let now = reload(ctx).await?;
                if raw(&now) == before {
                    refusals += 1;
                    if refusals >= MAX_REFUSALS {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                }
                stored = now;
                continue;
            }
            Some(Err(e)) => return Err(e),
        }
        if started.elapsed() > patience {
            return Err(Error::RefreshBusy {
                provider: provider.clone(),
                seconds: started.elapsed().as_secs(),
                holder: Holder::AnotherMachine,
            });
        }
        if !wait.is_zero() {
            let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..250));
            tokio::time::sleep(wait + jitter).await;
        }
        stored = reload(ctx).await?;
    }
}

/// A re-read while waiting: a rate limit is waited out (the HTTP layer already honoured
/// `Retry-After` within its budget) rather than ending the wait.
async fn reload(ctx: &Context) -> Result<Stored> {
    let mut limited = 0;
    loop {
        match ctx.store.load(&ctx.provider).await {
            Err(e)
                if limited < 3
                    && matches!(e.store_refusal(), Some((_, DopplerFailure::RateLimited))) =>
            {
                limited += 1;
                tokio::time::sleep(POLL_MAX).await;
            }
            other => return other,
        }
    }
}

fn is_read_only(e: &Error) -> bool {
    matches!(
        e.store_refusal(),
        Some((_, DopplerFailure::ReadOnly | DopplerFailure::Forbidden))
    )
}

/// A 4xx on a compare-and-swap write: a failed precondition (409, or whatever status Doppler
/// uses) or some other refusal; only a re-read tells them apart.
pub(crate) fn is_refusal(e: &Error) -> bool {
    matches!(e.store_refusal(), Some((status, kind))
        if (400..500).contains(&status)
            && !matches!(kind, DopplerFailure::Unauthorized | DopplerFailure::RateLimited))
}

/// Best effort: gives the lease back after a failed refresh, so others need not wait it out.
pub(crate) async fn release(ctx: &Context, stored: &Stored, lease: &str) {
    if let Err(e) = ctx.store.write(stored, Write::LeaseReleased(lease)).await {
        tracing::debug!("could not release the refresh lease: {e}");
    }
}

/// This process, for the lease: host, pid and a random part.
fn owner_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::thread_rng().gen::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn with_lease(value: Option<&str>) -> Stored {
        let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
        let secrets = value
            .map(|v| ("JOBBER_REFRESH_LEASE".to_string(), SecretString::from(v)))
            .into_iter()
            .collect();
        Stored::new(&provider, secrets)
    }

    #[test]
    fn lease_values_round_trip_and_anything_else_is_unset() {
        let held = r#"{"owner":"h:1:ab","until":5}"#;
        assert_eq!(
            state(&with_lease(Some(held))),
            State::Held {
                owner: "h:1:ab".into(),
                until: 5
            }
        );
        let a = free();
        let b = free();
        assert_ne!(a, b, "every release writes a fresh nonce");
        assert_eq!(state(&with_lease(Some(&a))), State::Free);
        for unset in [None, Some(""), Some("someone"), Some("{}")] {
            assert_eq!(state(&with_lease(unset)), State::Unset, "{unset:?}");
        }
    }
}
