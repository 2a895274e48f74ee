//! Landing the journal's tokens in the store: the compare-and-swap write, settled by what the
//! store echoes or a re-read (landed, not landed, superseded), and the replay of a journal that
//! an earlier run left.

use secrecy::ExposeSecret as _;

use super::LOCK_WAIT;
use crate::error::{Error, Result};
use crate::journal::{Journal, Pending};
use crate::lease;
use crate::store::{Stored, Write, ACCESS_TOKEN, REFRESH_LEASE, REFRESH_TOKEN};
use crate::{Context, Event, Reporter};

pub(super) fn store_failed(ctx: &Context, journal: &Journal, e: Error) -> Error {
    Error::StoreFailed {
        provider: ctx.provider.name.clone(),
        store: ctx.store.kind(),
        journal: journal.path.clone(),
        source: Box::new(e),
    }
}

/// Where a write of the journal's tokens stands, judged by a re-read.
enum Settled {
    /// The store holds our new tokens.
    Landed,
    /// The store still holds the spent refresh token: our write did not take.
    NotLanded,
    /// The store holds other tokens, newer than ours.
    Superseded,
}

fn settled(now: &Stored, pending: &Pending) -> Settled {
    let rt = now.refresh_token().map(|t| t.expose_secret());
    let at = now.access_token().map(|t| t.expose_secret());
    let ours = pending
        .tokens
        .refresh_token
        .as_ref()
        .unwrap_or(&pending.spent)
        .expose_secret();
    if rt == Some(ours) && at == Some(pending.tokens.access_token.expose_secret()) {
        Settled::Landed
    } else if rt == Some(pending.spent.expose_secret()) {
        Settled::NotLanded
    } else {
        Settled::Superseded
    }
}

/// Lands the journal's tokens in the store (compare-and-swap on the spent refresh token, the
/// lease released in the same write), then removes the journal. What the write echoes, or a
/// re-read after an ambiguous answer, decides: landed (also when the answer was lost), not
/// landed (sent again, at most three times, without the lease if it moved on), or superseded
/// by newer tokens (kept). On failure the journal stays.
pub(super) async fn land(
    ctx: &Context,
    snapshot: Stored,
    journal: &Journal,
    pending: &Pending,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut snapshot = snapshot;
    let mut lease = pending.lease.clone();
    let mut last = None;
    for _ in 0..3 {
        let write = Write::Rotation {
            tokens: &pending.tokens,
            spent: &pending.spent,
            lease: lease.as_deref(),
        };
        match ctx.store.write(&snapshot, write).await {
            Ok(echo) => {
                let at = pending.tokens.access_token.expose_secret();
                let rt = pending
                    .tokens
                    .refresh_token
                    .as_ref()
                    .unwrap_or(&pending.spent)
                    .expose_secret();
                if echo.holds(ACCESS_TOKEN, at) && echo.holds(REFRESH_TOKEN, rt) {
                    journal.remove();
                    return Ok(());
                }
                tracing::debug!("the store write did not take (answered 200); re-reading");
            }
            Err(e @ Error::StoreAnswerLost { .. }) => {
                tracing::debug!("the answer to the store write was lost; re-reading");
                last = Some(e);
            }
            Err(e) if lease::is_refusal(&e) => last = Some(e),
            Err(e) => return Err(store_failed(ctx, journal, e)),
        }
        let now = ctx
            .store
            .load(&ctx.provider)
            .await
            .map_err(|e| store_failed(ctx, journal, e))?;
        match settled(&now, pending) {
            Settled::Landed => {
                journal.remove();
                return Ok(());
            }
            Settled::Superseded => {
                reporter.event(Event::Warning(&format!(
                    "{store} already holds newer tokens than the ones this machine saved; keeping {store}'s",
                    store = ctx.store.kind()
                )));
                journal.remove();
                return Ok(());
            }
            Settled::NotLanded => {
                // Release the lease only while it is still ours.
                let held = now
                    .get(REFRESH_LEASE)
                    .map(|v| v.expose_secret().to_string());
                if held != lease {
                    lease = None;
                }
                snapshot = now;
            }
        }
    }
    let e = last.unwrap_or_else(|| {
        Error::store_response(
            &ctx.store.kind(),
            "the write was answered but the tokens did not take".into(),
        )
    });
    Err(store_failed(ctx, journal, e))
}

/// Pushes tokens left in the journal by an earlier run to the store.
pub(super) async fn replay(
    ctx: &Context,
    journal: &Journal,
    reporter: &dyn Reporter,
) -> Result<()> {
    if !journal.exists() {
        return Ok(());
    }
    let _lock = ctx.refresh_lock(LOCK_WAIT).await?;
    replay_locked(ctx, journal, reporter).await
}

/// [`replay`], under this machine's refresh lock: a journal that a live holder was writing
/// has been landed and removed by the time the lock is ours, so only a dead run's remains.
pub(super) async fn replay_locked(
    ctx: &Context,
    journal: &Journal,
    reporter: &dyn Reporter,
) -> Result<()> {
    let Some(pending) = journal.load()? else {
        return Ok(());
    };
    reporter.event(Event::Warning(&format!(
        "pushing tokens that an earlier run saved on this machine to {}",
        ctx.store.kind()
    )));
    if pending.new_grant {
        // A sign-in's tokens: they land only while Doppler holds what it held before it.
        let now = ctx.store.load(&ctx.provider).await?;
        let at = pending.tokens.access_token.expose_secret();
        let held = now.refresh_token().map_or("", |t| t.expose_secret());
        if now.access_token().map(|t| t.expose_secret()) == Some(at) {
            journal.remove();
        } else if held == pending.spent.expose_secret() {
            crate::authorize::store_new_grant(ctx, &now, &pending.tokens, reporter)
                .await
                .map_err(|e| store_failed(ctx, journal, e))?;
            journal.remove();
        } else {
            reporter.event(Event::Warning(&format!(
                "{store} already holds newer tokens than the ones this machine saved; keeping {store}'s",
                store = ctx.store.kind()
            )));
            journal.remove();
        }
        return Ok(());
    }
    // Every secret existed when the journal was written; a read tells nothing more.
    land(
        ctx,
        Stored::unread(&ctx.provider),
        journal,
        &pending,
        reporter,
    )
    .await
}
