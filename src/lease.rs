//! The refresh lease (`{PREFIX}_REFRESH_LEASE`): how machines sharing one store take turns to
//! spend the refresh token. Its value says who holds it and until when; it is taken with one
//! write that compares both the lease and the refresh token against the snapshot
//! ([`Write::LeaseTaken`]), so a stale read cannot win. A held, unexpired lease means another
//! machine is refreshing: wait and re-read until what the caller wants appears or the lease
//! expires. A read-only store token fails here, before anything is sent to a provider.

use std::time::{Duration, Instant};

use rand::Rng as _;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::error::{DopplerFailure, Error, Holder, Result};
use crate::store::{Stored, Write, REFRESH_LEASE};
use crate::token::now;
use crate::Context;

/// How long a lease lasts. The token request and the store write are each bounded by the
/// retry budget of [`crate::http`] (about 40 s at worst), so both fit inside with room to spare.
pub(crate) const LEASE_SECONDS: i64 = 120;
/// How often a waiting process re-reads the store.
const POLL: Duration = Duration::from_millis(500);

/// The lease value: who holds it and until when.
#[derive(Serialize, Deserialize)]
struct Lease {
    owner: String,
    until: i64,
}

impl Lease {
    fn parse(value: &str) -> Option<Lease> {
        serde_json::from_str(value).ok()
    }
}

/// The outcome of [`take`].
pub(crate) enum Leased<T> {
    /// The lease is ours (its value), taken against the refresh token in this snapshot.
    Ours(Stored, String),
    /// `done` found what the caller wanted in a fresh read while waiting.
    Done(T),
}

/// Takes the lease; waits while another machine holds it; returns early when `done` finds
/// what the caller wanted in a fresh read (another machine's refresh).
pub(crate) async fn take<T>(
    ctx: &Context,
    mut stored: Stored,
    done: impl Fn(&Stored) -> Option<T>,
) -> Result<Leased<T>> {
    let provider = &ctx.provider.name;
    let started = Instant::now();
    let max_wait = Duration::from_secs(LEASE_SECONDS as u64 + 15);
    loop {
        if let Some(found) = done(&stored) {
            return Ok(Leased::Done(found));
        }
        let refresh_token = stored.require_refresh_token(provider)?;
        let held = stored
            .get(REFRESH_LEASE)
            .and_then(|v| Lease::parse(v.expose_secret()))
            .is_some_and(|l| l.until > now());
        if !stored.exists(REFRESH_LEASE) {
            // Something other than `authorize` stored the tokens: create the lease (empty)
            // so that taking it has a value to compare against.
            ctx.store
                .write(&stored, Write::LeaseCreated)
                .await
                .map_err(|e| read_only(e, provider))?;
        } else if !held {
            let lease = serde_json::to_string(&Lease {
                owner: owner_id(),
                until: now() + LEASE_SECONDS,
            })
            .expect("a lease serializes");
            let write = Write::LeaseTaken {
                lease: &lease,
                refresh_token: &refresh_token,
            };
            match ctx.store.write(&stored, write).await {
                Ok(()) => return Ok(Leased::Ours(stored, lease)),
                // A conflict (or any other refusal of a compare-and-swap): someone moved first.
                Err(Error::Doppler { status, kind, .. })
                    if (400..500).contains(&status)
                        && !matches!(
                            kind,
                            DopplerFailure::Unauthorized
                                | DopplerFailure::ReadOnly
                                | DopplerFailure::Forbidden
                        ) =>
                {
                    tracing::debug!(status, "lease compare-and-swap lost; re-reading");
                }
                Err(e) => return Err(read_only(e, provider)),
            }
        } else {
            tracing::debug!("refresh lease held by another process; waiting");
            let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..200));
            tokio::time::sleep(POLL + jitter).await;
        }
        if started.elapsed() > max_wait {
            return Err(Error::RefreshBusy {
                provider: provider.clone(),
                seconds: max_wait.as_secs(),
                holder: Holder::AnotherMachine,
            });
        }
        stored = ctx.store.load(&ctx.provider).await?;
    }
}

/// A store that refuses the write because the token cannot write: the refresh cannot happen.
fn read_only(e: Error, provider: &str) -> Error {
    match e {
        Error::Doppler {
            kind: DopplerFailure::ReadOnly | DopplerFailure::Forbidden,
            ..
        } => Error::ReadOnlyCannotRefresh {
            provider: provider.to_string(),
        },
        e => e,
    }
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

    #[test]
    fn lease_round_trips_and_garbage_is_not_a_lease() {
        let l = Lease::parse(
            &serde_json::to_string(&Lease {
                owner: "h:1:ab".into(),
                until: 5,
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!((l.owner.as_str(), l.until), ("h:1:ab", 5));
        assert!(Lease::parse("").is_none());
        assert!(Lease::parse("someone").is_none());
    }
}
