//! `authorize --device`: the device authorization grant (RFC 8628), for machines whose browser
//! cannot reach a loopback port at all. No socket is opened: the provider shows a page where the
//! user enters a short code, and the CLI polls the token endpoint until the user approves.
//!
//! Polling follows RFC 8628 §3.5: wait `interval` (default 5 s) before each request; on
//! `slow_down` add 5 s for this and every later request; `authorization_pending` means ask
//! again; `access_denied` and `expired_token` end the flow (exit 4), as does the code's own
//! `expires_in` (capped by `--timeout` when given). The tokens are stored exactly as
//! `authorize` stores them: one store write.
//!
//! The requests: the device authorization request goes through the `oauth2` crate, and each
//! poll of the token endpoint is one request of our own (the crate's polling loop cannot
//! report progress, gives up on GitHub's `HTTP 200` errors and retries a dead endpoint
//! silently until the code expires), sent through the same provider-quirks adapter as every
//! token request and read by the one OAuth error reader.

use std::future::Future;
use std::time::Duration;

use oauth2::{DeviceAuthorizationUrl, StandardDeviceAuthorizationResponse};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use crate::authorize::{keep_new_grant, AuthorizeOptions};
use crate::browser;
use crate::error::{Error, Result};
use crate::oauth::{parse_error, send, Adapter, OAuthError};
use crate::text::terminal_safe;
use crate::token::{token_set, ProviderTokenResponse, TokenEndpoint, TokenSet};
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
    let stored = crate::authorize::preflight(ctx, stored).await?;
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
        &provider.name,
        reporter,
    )
    .await?;
    keep_new_grant(ctx, &stored, &tokens, reporter).await?;
    Ok(tokens)
}

/// The polling schedule of RFC 8628 §3.5 around `poll`: wait `interval`, ask; until tokens
/// come, the user refuses, the code expires, or `deadline` passes.
async fn poll_until_done<F, Fut>(
    mut poll: F,
    mut interval: Duration,
    deadline: Instant,
    provider: &str,
    reporter: &dyn Reporter,
) -> Result<TokenSet>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<DevicePoll>>,
{
    let started = Instant::now();
    let expired = || Error::DeviceCodeExpired {
        provider: provider.to_string(),
        seconds: started.elapsed().as_secs(),
    };
    loop {
        let next = match Instant::now().checked_add(interval) {
            Some(next) if next <= deadline => next,
            _ => return Err(expired()),
        };
        tokio::time::sleep_until(next).await;
        match poll().await? {
            DevicePoll::Tokens(tokens) => return Ok(tokens),
            DevicePoll::Pending => {}
            DevicePoll::SlowDown => {
                interval = interval.saturating_add(SLOW_DOWN_STEP);
                reporter.event(Event::SlowDown {
                    interval: interval.as_secs(),
                });
            }
            DevicePoll::Denied { error, description } => {
                return Err(Error::AuthorizationDenied {
                    provider: provider.to_string(),
                    error,
                    description,
                })
            }
            DevicePoll::Expired => return Err(expired()),
        }
    }
}

impl TokenEndpoint<'_> {
    /// The device authorization request (RFC 8628 §3.1): client id, scopes (in the provider's
    /// parameter and separator), client authentication as for the token endpoint.
    pub(crate) async fn device_authorization(
        &self,
        scopes: &[String],
    ) -> Result<DeviceAuthorization> {
        let Some(url) = self.provider.device_authorization_url.clone() else {
            return Err(Error::NoDeviceFlow {
                provider: self.provider.name.clone(),
            });
        };
        let client = self
            .client(None)?
            .set_device_authorization_url(DeviceAuthorizationUrl::from_url(url.clone()));
        let mut request = client.exchange_device_code();
        if !scopes.is_empty() {
            request = request.add_extra_param(
                self.provider.scope_parameter.clone(),
                scopes.join(&self.provider.scope_separator),
            );
        }
        let send = Adapter::new(self.http, self.provider);
        let details: StandardDeviceAuthorizationResponse = request
            .request_async(&send)
            .await
            .map_err(|e| match self.map_error(e, false) {
                Error::TokenEndpoint {
                    error, description, ..
                } => Error::DeviceAuthorization { error, description },
                Error::ProviderUnreachable { source, .. } => Error::ProviderUnreachable {
                    url: url.to_string(),
                    source,
                },
                Error::ProviderResponse(m) => {
                    Error::ProviderResponse(format!("{m} (in the device authorization response)"))
                }
                other => other,
            })?;
        DeviceAuthorization::checked(&details)
    }

    /// One poll of the token endpoint with the device code (RFC 8628 §3.4, §3.5). An error
    /// is read from the body whatever the HTTP status (GitHub answers `authorization_pending`
    /// with 200).
    pub(crate) async fn poll_device(&self, device_code: &SecretString) -> Result<DevicePoll> {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_string(),
            ),
            ("device_code", device_code.expose_secret().to_string()),
        ];
        let mut request = oauth2::HttpRequest::new(Vec::new());
        *request.method_mut() = reqwest::Method::POST;
        *request.uri_mut() = self
            .provider
            .token_url
            .as_str()
            .parse()
            .expect("a parsed URL is a valid URI");
        let headers = request.headers_mut();
        use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        // Client authentication exactly as the oauth2 crate does it for the other requests.
        let auth = crate::oauth::client_authentication(self.provider.client_auth, self.credentials);
        if let Some(basic) = auth.header {
            let mut value = HeaderValue::from_str(basic.expose_secret())
                .expect("base64 is a valid header value");
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in auth.form {
            form.push((name, value.expose_secret().to_string()));
        }
        *request.body_mut() = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&form)
            .finish()
            .into_bytes();
        let response = send(self.http, self.provider, request, None)
            .await
            .map_err(|e| Error::ProviderUnreachable {
                url: self.provider.token_url.to_string(),
                source: Box::new(e),
            })?;
        let body = response.body();
        #[derive(Deserialize)]
        struct Answer {
            access_token: Option<serde_json::Value>,
        }
        let answer: Answer = serde_json::from_slice(body).map_err(|_| {
            Error::ProviderResponse(format!(
                "HTTP {} without a JSON body to a device-code poll",
                response.status().as_u16()
            ))
        })?;
        if answer.access_token.is_some() && response.status().is_success() {
            let parsed: ProviderTokenResponse = serde_json::from_slice(body).map_err(|e| {
                Error::ProviderResponse(
                    format!("not a token response: {e}")
                        .chars()
                        .take(200)
                        .collect(),
                )
            })?;
            return token_set(parsed)
                .map(|t| t.with_lifetime_of(self.provider, false))
                .map(DevicePoll::Tokens);
        }
        let Some(OAuthError { error, description }) = parse_error(body) else {
            return Err(Error::ProviderResponse(format!(
                "HTTP {} with neither a token nor an error to a device-code poll",
                response.status().as_u16()
            )));
        };
        Ok(match error.as_str() {
            "authorization_pending" => DevicePoll::Pending,
            "slow_down" => DevicePoll::SlowDown,
            "access_denied" | "authorization_declined" => DevicePoll::Denied { error, description },
            "expired_token" => DevicePoll::Expired,
            _ => {
                return Err(Error::TokenEndpoint {
                    provider: self.provider.name.clone(),
                    error,
                    description,
                })
            }
        })
    }
}

/// What the device authorization endpoint answered, checked for display (RFC 8628 §3.2, §5.4).
pub(crate) struct DeviceAuthorization {
    pub device_code: SecretString,
    /// Printable ASCII only, at most 64 characters.
    pub user_code: String,
    /// https (or http on a loopback host).
    pub verification_uri: url::Url,
    /// Only when it is https on the same host as `verification_uri`.
    pub verification_uri_complete: Option<url::Url>,
    /// Lifetime of the codes, 1 s to 1 h.
    pub expires_in: std::time::Duration,
    /// The polling interval: the provider's, else 5 s; at least 1 s.
    pub interval: std::time::Duration,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[redacted]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

impl DeviceAuthorization {
    fn checked(details: &StandardDeviceAuthorizationResponse) -> Result<DeviceAuthorization> {
        use std::time::Duration;
        let safe = |url: &url::Url| {
            url.scheme() == "https" || (url.scheme() == "http" && crate::http::is_loopback_url(url))
        };
        let verification_uri = url::Url::parse(details.verification_uri().as_str())
            .ok()
            .filter(|u| safe(u) && u.username().is_empty() && u.password().is_none())
            .ok_or_else(|| {
                Error::ProviderResponse(
                    "the device authorization response's verification_uri is not an https URL; it is neither shown nor opened".into(),
                )
            })?;
        let verification_uri_complete = details
            .verification_uri_complete()
            .and_then(|c| url::Url::parse(c.secret()).ok())
            .filter(|u| safe(u) && u.host_str() == verification_uri.host_str());
        let user_code = terminal_safe(details.user_code().secret(), 64);
        let device_code = details.device_code().secret();
        if user_code.trim().is_empty() || device_code.is_empty() {
            return Err(Error::ProviderResponse(
                "the device authorization response has no user_code or device_code".into(),
            ));
        }
        Ok(DeviceAuthorization {
            device_code: {
                crate::text::conceal(device_code);
                SecretString::from(device_code.to_string())
            },
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in: details
                .expires_in()
                .clamp(Duration::from_secs(1), Duration::from_secs(3600)),
            // Clamped like every duration a server sends: 2^63 s would overflow an Instant.
            interval: details
                .interval()
                .clamp(Duration::from_secs(1), Duration::from_secs(3600)),
        })
    }
}

/// One answer to a device-code poll.
#[derive(Debug)]
pub(crate) enum DevicePoll {
    Tokens(TokenSet),
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask again, 5 s less often from now on.
    SlowDown,
    /// `access_denied` (Microsoft: `authorization_declined`).
    Denied {
        error: String,
        description: Option<String>,
    },
    /// `expired_token`.
    Expired,
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
            refresh_expires_at: None,
            warning: None,
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
            "acme",
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
