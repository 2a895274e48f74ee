//! `authorize --device`: the device authorization grant (RFC 8628), for machines whose browser
//! cannot reach a loopback port at all. No socket is opened: the provider shows a page where the
//! user enters a short code, and the CLI polls the token endpoint until the user approves.
//!
//! Polling follows RFC 8628 §3.5: wait `interval` (default 5 s) before each request; on
//! `slow_down` add 5 s for this and every later request; `authorization_pending` means ask
//! again; `access_denied` and `expired_token` end the flow (exit 4), as does the code's own
//! `expires_in` (capped by `--timeout` when given). The tokens are stored exactly as
//! `authorize` stores them: one Doppler write.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::authorize::{store_new_grant, AuthorizeOptions};
use crate::browser;
use crate::error::{Error, Result};
use crate::token::{DevicePoll, TokenEndpoint, TokenSet};
use crate::{Context, Event, Reporter};

/// What RFC 8628 §3.5 adds to the interval on each `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Runs the device flow and stores the tokens in Doppler. `opts.scopes`, `opts.no_browser`
/// and `opts.browser_var` apply as for [`crate::authorize::authorize`]; `opts.timeout` caps
/// the wait below the code's own lifetime. `opts.ports` and `opts.paste` play no part.
pub async fn authorize_device(
    ctx: &Context,
    opts: &AuthorizeOptions,
    reporter: &dyn Reporter,
) -> Result<TokenSet> {
    let provider = &ctx.provider;
    if provider.device_authorization_url.is_none() {
        return Err(Error::NoDeviceFlow {
            provider: provider.name.clone(),
        });
    }
    let _sign_in = ctx.sign_in_lock()?;
    let stored = ctx.store.load(provider).await?;
    let credentials = stored.credentials(provider, &ctx.env_credentials)?;
    let endpoint = TokenEndpoint::new(provider, &credentials, &ctx.http);

    let scopes = if opts.scopes.is_empty() {
        &provider.scopes
    } else {
        &opts.scopes
    };
    let device = endpoint.device_authorization(scopes).await?;
    let wait = device.expires_in.min(opts.timeout);
    reporter.event(Event::DeviceCode {
        user_code: &device.user_code,
        verification_uri: &device.verification_uri,
        verification_uri_complete: device.verification_uri_complete.as_ref(),
        seconds: wait.as_secs(),
    });
    if !opts.no_browser {
        let page = device
            .verification_uri_complete
            .as_ref()
            .unwrap_or(&device.verification_uri);
        match browser::open(page, opts.browser_var.as_deref()) {
            Ok(_) => reporter.event(Event::BrowserOpened),
            Err(e) => reporter.event(Event::BrowserFailed(&e.to_string())),
        }
    }
    reporter.event(Event::DeviceWaiting {
        seconds: wait.as_secs(),
    });

    let tokens = poll_until_done(
        || endpoint.poll_device(&device.device_code),
        device.interval,
        Instant::now() + wait,
        reporter,
    )
    .await?;
    store_new_grant(ctx, &stored, &tokens, reporter).await?;
    Ok(tokens)
}

/// The polling schedule of RFC 8628 §3.5 around `poll`: wait `interval`, ask; until tokens
/// come, the user refuses, the code expires, or `deadline` passes.
async fn poll_until_done<F, Fut>(
    mut poll: F,
    mut interval: Duration,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<TokenSet>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<DevicePoll>>,
{
    let started = Instant::now();
    let expired = || Error::DeviceCodeExpired {
        seconds: started.elapsed().as_secs(),
    };
    loop {
        let next = Instant::now() + interval;
        if next > deadline {
            return Err(expired());
        }
        tokio::time::sleep_until(next).await;
        match poll().await? {
            DevicePoll::Tokens(tokens) => return Ok(tokens),
            DevicePoll::Pending => {}
            DevicePoll::SlowDown => {
                interval += SLOW_DOWN_STEP;
                reporter.event(Event::SlowDown {
                    interval: interval.as_secs(),
                });
            }
            DevicePoll::Denied { error, description } => {
                return Err(Error::AuthorizationDenied { error, description })
            }
            DevicePoll::Expired => return Err(expired()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: secrecy::SecretString::from("at"),
            refresh_token: None,
            expires_at: None,
            expiry_source: crate::token::ExpirySource::Unknown,
        }
    }

    /// Polls answering `script` in order (then tokens), recording when each was asked.
    async fn run(
        script: Vec<DevicePoll>,
        interval: u64,
        lifetime: u64,
    ) -> (Result<TokenSet>, Vec<u64>) {
        let start = Instant::now();
        let times = Mutex::new(Vec::new());
        let script = Mutex::new(script.into_iter());
        let result = poll_until_done(
            || {
                times
                    .lock()
                    .unwrap()
                    .push((Instant::now() - start).as_secs());
                let next = script.lock().unwrap().next();
                async move { Ok(next.unwrap_or_else(|| DevicePoll::Tokens(tokens()))) }
            },
            Duration::from_secs(interval),
            start + Duration::from_secs(lifetime),
            &crate::Quiet,
        )
        .await;
        (result, times.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn l1_interval_then_five_seconds_more_per_slow_down() {
        let (result, times) = run(
            vec![
                DevicePoll::Pending,
                DevicePoll::SlowDown,
                DevicePoll::Pending,
            ],
            5,
            600,
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(times, [5, 10, 20, 30]);
        let (_, times) = run(vec![DevicePoll::SlowDown, DevicePoll::SlowDown], 5, 600).await;
        assert_eq!(times, [5, 15, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn l1_denied_and_expired_stop_the_polling() {
        let denied = DevicePoll::Denied {
            error: "access_denied".into(),
            description: None,
        };
        let (result, times) = run(vec![DevicePoll::Pending, denied], 5, 600).await;
        let e = result.unwrap_err();
        assert_eq!((e.exit_code(), times.len()), (4, 2), "{e}");
        let (result, times) = run(vec![DevicePoll::Expired], 5, 600).await;
        assert!(matches!(result, Err(Error::DeviceCodeExpired { .. })));
        assert_eq!(times, [5]);
        // The code's lifetime ends the wait even while the provider says pending.
        let pending = (0..100).map(|_| DevicePoll::Pending).collect();
        let (result, times) = run(pending, 5, 17).await;
        assert_eq!(result.unwrap_err().exit_code(), 4);
        assert_eq!(times, [5, 10, 15]);
    }
}
