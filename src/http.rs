//! The one HTTP client: redirects off, connect and total timeouts, a user agent, capped bodies,
//! and the retry policy of docs/usage.md's "Retries" (429, any 5xx and connection failures; a few attempts with
//! backoff inside about 30 s, honouring `Retry-After` and `X-RateLimit-Reset` within that
//! bound). Reads, device polls, revocation and `[check]` requests go through [`Http::send`];
//! a store write, a code exchange and a refresh go through [`Http::send_write`], which resends
//! only what provably did not arrive (a refused connection, a 429) — a write whose answer was
//! lost may have landed, and only a re-read can tell.
//!
//! Networks ([`NetworkSettings`]): proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` with
//! `NO_PROXY` (curl's rules), never for loopback hosts; extra CA certificates from
//! `SSL_CERT_FILE`, `OAUTH_PKCE_CA_FILE` and `--ca-file`, trusted in addition to the built-in
//! (webpki) roots.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand::Rng as _;
use reqwest::{RequestBuilder, Response, StatusCode};

/// Connect timeout for every request.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Total timeout of one attempt.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Total timeout of a code exchange or refresh, sent once: a slow authorization server is
/// waited for (well inside the 120 s lease) rather than given up on while it rotates.
pub(crate) const GRANT_TIMEOUT: Duration = Duration::from_secs(60);
/// All attempts of one logical request end within this budget.
pub(crate) const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Attempts per logical request.
pub(crate) const MAX_ATTEMPTS: u32 = 4;
/// The least time a resend of a request with a deadline starts with.
pub(crate) const MIN_RESEND: Duration = Duration::from_secs(5);

/// Hosts that are never reached through a proxy, whatever `NO_PROXY` says.
const LOOPBACK_NO_PROXY: &str = "localhost,127.0.0.0/8,::1";

/// Proxies and extra trusted CA certificates, resolved from the environment (and `--ca-file`).
#[derive(Clone, Default)]
pub struct NetworkSettings {
    /// PEM files of CA certificates trusted in addition to the built-in roots.
    pub ca_files: Vec<PathBuf>,
    /// Proxy for https URLs.
    pub https_proxy: Option<String>,
    /// Proxy for http URLs.
    pub http_proxy: Option<String>,
    /// Proxy for both, after the scheme's own.
    pub all_proxy: Option<String>,
    /// `NO_PROXY` as given (loopback hosts are added).
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for NetworkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |p: &Option<String>| p.as_deref().map(without_credentials);
        f.debug_struct("NetworkSettings")
            .field("ca_files", &self.ca_files)
            .field("https_proxy", &shown(&self.https_proxy))
            .field("http_proxy", &shown(&self.http_proxy))
            .field("all_proxy", &shown(&self.all_proxy))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl NetworkSettings {
    /// From this process's environment.
    pub fn from_process() -> NetworkSettings {
        NetworkSettings::from_vars(|name| std::env::var(name).ok())
    }

    /// From an environment given as a lookup (tests pass a map). Upper-case names win over
    /// lower-case ones; empty values count as unset; under CGI (`REQUEST_METHOD` set)
    /// `HTTP_PROXY` is ignored, since a request header could have set it ("httpoxy").
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> NetworkSettings {
        use crate::env;
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let get = |name: &str| set(name).or_else(|| set(&name.to_ascii_lowercase()));
        let cgi = var(env::REQUEST_METHOD).is_some();
        let ca_files = [env::SSL_CERT_FILE, env::OAUTH_PKCE_CA_FILE]
            .iter()
            .filter_map(|name| set(name))
            .map(PathBuf::from)
            .collect();
        NetworkSettings {
            ca_files,
            https_proxy: get(env::HTTPS_PROXY),
            http_proxy: if cgi {
                set(env::HTTP_PROXY)
            } else {
                get(env::HTTP_PROXY)
            },
            all_proxy: get(env::ALL_PROXY),
            no_proxy: get(env::NO_PROXY),
        }
    }

    /// The proxy an `https` (or `http`) URL would go through, for display: credentials removed.
    pub fn proxy_for(&self, https: bool) -> Option<String> {
        let own = if https {
            &self.https_proxy
        } else {
            &self.http_proxy
        };
        own.as_ref()
            .or(self.all_proxy.as_ref())
            .map(|p| without_credentials(p))
    }
}

/// Whether `url` carries a user name or password (`https://user:pw@host/`).
pub(crate) fn has_userinfo(url: &url::Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// A URL without its user name and password (they are credentials), for display.
pub(crate) fn without_credentials(proxy: &str) -> String {
    let with_scheme = if proxy.contains("://") {
        proxy.to_string()
    } else {
        format!("http://{proxy}")
    };
    match url::Url::parse(&with_scheme) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// A cloneable client with the project's policy built in. The TLS client itself (with the
/// extra CA certificates, whose decoding is most of a short command's work) is built at the
/// first request, so a command that sends none — a token served from this machine's cache —
/// never pays for it; the settings are checked when the `Http` is made.
#[derive(Clone, Debug)]
pub struct Http {
    client: Arc<OnceLock<reqwest::Client>>,
    network: Arc<NetworkSettings>,
    base_delay: Duration,
}

impl Http {
    /// The client used everywhere: no redirects, timeouts, rustls, with the proxies and extra
    /// CA certificates of this process's environment.
    pub fn new() -> crate::Result<Http> {
        Http::with_network(&NetworkSettings::from_process())
    }

    /// The client with these proxies and extra CA certificates. A CA file that cannot be read
    /// or holds no certificate, and a proxy that is not a URL, are configuration errors.
    pub fn with_network(net: &NetworkSettings) -> crate::Result<Http> {
        for path in &net.ca_files {
            let pem = std::fs::read(path).map_err(|e| {
                network_error(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            if !pem
                .windows(PEM_CERTIFICATE.len())
                .any(|w| w == PEM_CERTIFICATE)
            {
                return Err(no_certificate(path));
            }
        }
        proxies(net)?;
        Ok(Http {
            client: Arc::default(),
            network: Arc::new(net.clone()),
            base_delay: Duration::from_millis(400),
        })
    }

    /// The underlying reqwest client, for building requests: built at the first call.
    pub fn client(&self) -> crate::Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = build(&self.network, Limit::Total)?;
        Ok(self.client.get_or_init(|| client))
    }

    /// A client for streams (the proxy's): the same policy and trust, but no limit on a whole
    /// request, only on a pause with no bytes moving (15 s); a 50 MB download
    /// or a long event stream is not cut off.
    pub fn streaming_client(&self) -> crate::Result<reqwest::Client> {
        build(&self.network, Limit::Idle)
    }

    /// Sends the request built by `build`, retrying on 429, 5xx and connection failures.
    /// Returns the last response (which may still be an error status) or the last transport
    /// error. `build` is called once per attempt.
    pub async fn send(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, reqwest::Error> {
        self.send_with(build, Resend::Idempotent, None).await
    }

    /// Sends a write, resending it only when it provably did not arrive: a connection that
    /// was never made, or a 429 (refused before it was applied). A 5xx, a timeout or a reset
    /// comes back to the caller, who must re-read to learn whether it landed.
    pub async fn send_write(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, reqwest::Error> {
        self.send_with(build, Resend::OnlyUnsent, None).await
    }

    /// [`Self::send_write`] for a request that must be over by `deadline` (a refresh inside
    /// its lease): no resend starts unless it has [`MIN_RESEND`] of it left after the pause,
    /// so what comes back is the unsent outcome, never a last attempt cut short mid-flight.
    pub(crate) async fn send_write_by(
        &self,
        build: impl Fn() -> RequestBuilder,
        deadline: Instant,
    ) -> Result<Response, reqwest::Error> {
        self.send_with(build, Resend::OnlyUnsent, Some(deadline))
            .await
    }

    async fn send_with(
        &self,
        build: impl Fn() -> RequestBuilder,
        resend: Resend,
        deadline: Option<Instant>,
    ) -> Result<Response, reqwest::Error> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let outcome = build().send().await;
            let retry_after = match (&outcome, resend) {
                (Ok(resp), _) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    Some(parse_retry_after(resp))
                }
                (Ok(resp), Resend::Idempotent) if resp.status().is_server_error() => {
                    Some(parse_retry_after(resp))
                }
                (Ok(_), _) => None,
                (Err(e), _) if e.is_connect() => Some(None),
                (Err(e), Resend::Idempotent) if e.is_timeout() => Some(None),
                (Err(_), _) => None,
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
            if deadline.is_some_and(|d| Instant::now() + delay + MIN_RESEND > d) {
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

/// What may be sent again.
#[derive(Clone, Copy)]
enum Resend {
    /// Reads and other requests that may be repeated: 429, 5xx, connection failures, timeouts.
    Idempotent,
    /// Writes: only what did not arrive (a connection never made, a 429).
    OnlyUnsent,
}

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

fn network_error(message: String) -> crate::Error {
    crate::Error::Network(message)
}

fn no_certificate(path: &std::path::Path) -> crate::Error {
    network_error(format!(
        "the CA file {} holds no PEM certificate",
        path.display()
    ))
}

/// The proxies of `net`, each limited by `NO_PROXY` and loopback, scheme-specific ones first
/// (reqwest uses the first one that applies).
fn proxies(net: &NetworkSettings) -> crate::Result<Vec<reqwest::Proxy>> {
    let no_proxy = reqwest::NoProxy::from_string(&match &net.no_proxy {
        Some(list) => format!("{list},{LOOPBACK_NO_PROXY}"),
        None => LOOPBACK_NO_PROXY.to_string(),
    });
    type MakeProxy = fn(&str) -> reqwest::Result<reqwest::Proxy>;
    let kinds: [(&Option<String>, &str, MakeProxy); 3] = [
        (&net.https_proxy, "HTTPS_PROXY", |p| {
            reqwest::Proxy::https(p)
        }),
        (&net.http_proxy, "HTTP_PROXY", |p| reqwest::Proxy::http(p)),
        (&net.all_proxy, "ALL_PROXY", |p| reqwest::Proxy::all(p)),
    ];
    let mut out = Vec::new();
    for (value, name, make) in kinds {
        if let Some(p) = value {
            let proxy = make(p).map_err(|_| {
                network_error(format!(
                    "{name} `{}` is not a proxy URL",
                    without_credentials(p)
                ))
            })?;
            out.push(proxy.no_proxy(no_proxy.clone()));
        }
    }
    Ok(out)
}

/// How long a request may take: all of it (the API calls oauth-pkce makes), or as long as
/// bytes keep coming (the proxy's streams, which may be large or long-lived).
#[derive(Clone, Copy)]
enum Limit {
    Total,
    Idle,
}

/// The TLS client: no redirects, timeouts, only our proxies, the extra CA certificates.
fn build(net: &NetworkSettings, limit: Limit) -> crate::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT);
    let mut builder = match limit {
        Limit::Total => builder.timeout(REQUEST_TIMEOUT),
        Limit::Idle => builder.read_timeout(REQUEST_TIMEOUT),
    }
    .user_agent(concat!("oauth-pkce/", env!("CARGO_PKG_VERSION")))
    // Only the proxies below: reqwest's own reading of the environment would send
    // loopback hosts through a proxy too.
    .no_proxy();
    for path in &net.ca_files {
        let pem = std::fs::read(path).map_err(|e| {
            network_error(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| no_certificate(path))?;
        tracing::debug!(
            file = %path.display(),
            certificates = certs.len(),
            "HTTP client: trusting extra CA certificates"
        );
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    for proxy in proxies(net)? {
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| network_error(format!("cannot set up HTTPS: {}", describe(&e))))
}

fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name)?.to_str().ok().map(str::trim)
}

/// How long the server asked to wait: `Retry-After` as delta-seconds (Doppler and most OAuth
/// servers send seconds), else, with no request left (`X-RateLimit-Remaining: 0`), until
/// `X-RateLimit-Reset` (Unix seconds) — measured on the server's own clock (`Date`), never
/// this machine's.
fn parse_retry_after(resp: &Response) -> Option<Duration> {
    if let Some(seconds) = header(resp, "retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header(resp, "x-ratelimit-remaining") != Some("0") {
        return None;
    }
    let reset = header(resp, "x-ratelimit-reset")?.parse::<i64>().ok()?;
    let now = server_time(resp)?;
    Some(Duration::from_secs(
        reset.saturating_sub(now).clamp(0, 60) as u64
    ))
}

/// Why a write's request failed, when it may have arrived: `None` for a connection that was
/// never made (nothing was sent), else what to tell the user about the lost answer.
pub(crate) fn lost_answer(e: &reqwest::Error) -> Option<&'static str> {
    if e.is_connect() {
        None
    } else if e.is_timeout() {
        Some("no answer in time")
    } else {
        Some("the connection broke")
    }
}

/// The server's clock: its `Date` header as Unix seconds.
pub(crate) fn server_time(resp: &Response) -> Option<i64> {
    let date = header(resp, "date")?;
    chrono::DateTime::parse_from_rfc2822(date)
        .ok()
        .map(|d| d.timestamp())
}

/// Reads at most `limit` bytes of a body; a longer body is an error (never a silent truncation).
pub(crate) async fn read_capped(mut resp: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
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
pub(crate) enum BodyError {
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
pub(crate) fn describe(e: &reqwest::Error) -> String {
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

/// A `reqwest::Error` stripped of its URL, usable as an error source; `sent` when the
/// request may have reached the server (anything but a connection never made).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct TransportError {
    pub(crate) message: String,
    pub(crate) sent: bool,
}

impl TransportError {
    /// A failure after the request was sent (its answer unreadable or a 5xx).
    pub(crate) fn after_sending(message: String) -> TransportError {
        TransportError {
            message,
            sent: true,
        }
    }
}

impl From<reqwest::Error> for TransportError {
    fn from(e: reqwest::Error) -> Self {
        TransportError {
            message: describe(&e),
            sent: !(e.is_connect() || e.is_builder()),
        }
    }
}

#[cfg(test)]
mod tests;
