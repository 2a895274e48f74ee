//! The one HTTP client: redirects off, connect and total timeouts, a user agent, capped bodies,
//! and the retry policy of SPEC.md (429, any 5xx and connection failures; a few attempts with
//! backoff inside about 30 s, honouring `Retry-After` within that bound). Doppler and the token
//! endpoint both go through [`Http::send`].

use std::time::{Duration, Instant};

use rand::Rng as _;
use reqwest::{RequestBuilder, Response, StatusCode};

/// Connect timeout for every request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Total timeout of one attempt.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// All attempts of one logical request end within this budget.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Attempts per logical request.
pub const MAX_ATTEMPTS: u32 = 4;

/// A cloneable client with the project's policy built in.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    base_delay: Duration,
}

impl Http {
    /// The client used everywhere: no redirects, timeouts, rustls.
    pub fn new() -> Result<Http, reqwest::Error> {
        Http::build(reqwest::Client::builder())
    }

    /// The same client ignoring `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, for a loopback-only
    /// run (`oauth-pkce demo`): reqwest would otherwise send loopback requests to a proxy too.
    pub fn without_proxy() -> Result<Http, reqwest::Error> {
        Http::build(reqwest::Client::builder().no_proxy())
    }

    fn build(builder: reqwest::ClientBuilder) -> Result<Http, reqwest::Error> {
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("oauth-pkce/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Http {
            client,
            base_delay: Duration::from_millis(400),
        })
    }

    /// The underlying reqwest client, for building requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request built by `build`, retrying on 429, 5xx and connection failures.
    /// Returns the last response (which may still be an error status) or the last transport
    /// error. `build` is called once per attempt.
    pub async fn send(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, reqwest::Error> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let outcome = build().send().await;
            let retry_after = match &outcome {
                Ok(resp) if is_retryable_status(resp.status()) => Some(parse_retry_after(resp)),
                Ok(_) => None,
                Err(e) if e.is_connect() || e.is_timeout() => Some(None),
                Err(_) => None,
            };
            let Some(retry_after) = retry_after else {
                return outcome;
            };
            let delay = self.backoff(attempt, retry_after);
            // Retry only while a whole further attempt (up to REQUEST_TIMEOUT) still ends
            // within the budget.
            if attempt >= MAX_ATTEMPTS || started.elapsed() + delay + REQUEST_TIMEOUT > RETRY_BUDGET
            {
                return outcome;
            }
            tracing::debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying after {}",
                match &outcome {
                    Ok(r) => r.status().to_string(),
                    Err(_) => "a connection failure".to_string(),
                }
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base_delay * 2u32.pow(attempt - 1);
        let jitter = rand::thread_rng().gen_range(0..=exp.as_millis() as u64 / 2);
        let computed = exp + Duration::from_millis(jitter);
        match retry_after {
            Some(ra) => ra.min(RETRY_BUDGET),
            None => computed,
        }
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` as delta-seconds (Doppler and most OAuth servers send seconds).
fn parse_retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads at most `limit` bytes of a body; a longer body is an error (never a silent truncation).
pub async fn read_capped(mut resp: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Failure to read a response body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body was larger than {0} bytes")]
    TooLarge(usize),
    #[error("the response body could not be read")]
    Read(#[source] reqwest::Error),
}

/// Whether `url` points at a loopback host (`localhost`, 127.0.0.0/8, ::1).
pub fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A transport error described without its URL (a query could carry a secret).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response could not be read"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// A `reqwest::Error` stripped of its URL, usable as an error source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl From<reqwest::Error> for TransportError {
    fn from(e: reqwest::Error) -> Self {
        TransportError(describe(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (u, yes) in [
            ("http://localhost:3000/x", true),
            ("http://127.0.0.1/x", true),
            ("http://127.9.9.9/x", true),
            ("http://[::1]:8/x", true),
            ("http://localhost.evil.example/x", false),
            ("http://10.0.0.1/x", false),
            ("https://example.com/x", false),
        ] {
            assert_eq!(is_loopback_url(&url::Url::parse(u).unwrap()), yes, "{u}");
        }
    }

    #[test]
    fn backoff_grows_and_honours_retry_after_within_budget() {
        let http = Http::new().unwrap();
        let d1 = http.backoff(1, None);
        let d3 = http.backoff(3, None);
        assert!(d1 >= Duration::from_millis(400) && d1 <= Duration::from_millis(600));
        assert!(d3 >= Duration::from_millis(1600) && d3 <= Duration::from_millis(2400));
        assert_eq!(
            http.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            http.backoff(1, Some(Duration::from_secs(999))),
            RETRY_BUDGET
        );
    }
}
