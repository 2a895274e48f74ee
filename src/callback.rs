//! The loopback callback server: the one module of the real flow that listens on a socket (the
//! others are the demo's servers, `src/cli/demo_server.rs`, only while `oauth-pkce demo` runs).
//!
//! It binds the first free port of the range on the loopback interface only (127.0.0.1, and
//! also `[::1]` when the redirect host is `localhost`), answers exactly `GET {redirect_path}` on
//! the expected `Host`, and hands the first callback whose `state` matches to the waiting flow.
//! Anything else (a favicon, a probe, a wrong or missing `state`) gets an error page and changes
//! nothing, up to a cap. Every page is static text with request text HTML-escaped, and every
//! response carries a locked-down set of headers and `Connection: close`.
//!
//! When the browser runs on another machine (SSH, a container), the user can paste the final
//! redirect URL instead ([`PastedLines`]): it goes through the same validator (`judge`) as a
//! callback request — the same `state`, `iss` and code checks, the same refusal cap — and the
//! first valid answer from either path ends the wait.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::provider::PortRange;
use crate::text::{html_escape, terminal_safe};
use crate::{Event, Reporter};

/// After this many refused callbacks (wrong `state`, bad parameters) the flow gives up.
const MAX_REFUSED: u32 = 20;
/// Longest authorization code accepted.
const MAX_CODE_LEN: usize = 2048;
/// Connections served at once; more are refused until one closes.
const MAX_CONNECTIONS: usize = 8;
/// Request line + headers cap (hyper's smallest read buffer).
const MAX_HEADER_BYTES: usize = 8192;
/// A client must send its headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound, not yet serving, callback listener.
pub(crate) struct Callback {
    listeners: Vec<TcpListener>,
    /// The port that was bound.
    pub port: u16,
    /// `http://{host}:{port}{path}`, sent byte-identical in the authorization and token requests.
    pub redirect_uri: String,
    host: String,
    path: String,
}

/// How a flow ended at the callback.
enum Outcome {
    Code(SecretString),
    /// The provider's error response (`error=…` with the right `state`).
    Refused {
        error: String,
        description: Option<String>,
    },
    /// The right `state` but no usable code.
    Unusable,
    TooManyRefused,
}

/// What an authorization response must carry to belong to this flow.
#[derive(Debug)]
pub(crate) struct Expected {
    pub state: SecretString,
    pub issuer: Issuer,
}

/// Redirect URLs the user pasted, one per line (the CLI feeds its stdin here). The sender
/// side closing just ends this source; the callback keeps waiting.
#[derive(Clone)]
pub struct PastedLines(Arc<tokio::sync::Mutex<mpsc::Receiver<SecretString>>>);

impl PastedLines {
    /// A sender to feed lines into, and the source to pass to [`Callback::wait_for_code`].
    pub fn channel() -> (mpsc::Sender<SecretString>, PastedLines) {
        let (tx, rx) = mpsc::channel(4);
        (tx, PastedLines(Arc::new(tokio::sync::Mutex::new(rx))))
    }

    async fn next(&self) -> Option<SecretString> {
        self.0.lock().await.recv().await
    }
}

impl std::fmt::Debug for PastedLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PastedLines")
    }
}

/// The loopback addresses a redirect host needs.
fn loopback_addrs(host: &str) -> &'static [IpAddr] {
    match host {
        "localhost" => &[
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        _ => &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
    }
}

/// Which of `ports` `authorize` could bind now (bound as `bind` does, then closed at once),
/// at most `limit` of them, in order: `(port, free)`.
pub async fn probe_ports(host: &str, ports: &PortRange, limit: usize) -> Vec<(u16, bool)> {
    let mut out = Vec::new();
    for port in ports.iter().take(limit) {
        let free = bind_all(loopback_addrs(host), port).await.is_ok();
        out.push((port, free));
    }
    out
}

impl Callback {
    /// Binds the first port of `ports` that is free on every loopback address the redirect
    /// host needs. Nothing else listens: not `0.0.0.0`, not `::`.
    pub(crate) async fn bind(host: &str, path: &str, ports: &PortRange) -> Result<Callback> {
        let addrs = loopback_addrs(host);
        for port in ports.iter() {
            match bind_all(addrs, port).await {
                Ok(listeners) => {
                    return Ok(Callback {
                        listeners,
                        port,
                        redirect_uri: format!("http://{host}:{port}{path}"),
                        host: host.to_string(),
                        path: path.to_string(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::debug!(port, "callback port busy");
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => continue,
                Err(e) => return Err(Error::CallbackServer(e)),
            }
        }
        Err(Error::NoFreePort {
            range: ports.to_string(),
            host: host.to_string(),
        })
    }

    /// Serves until a callback (or, with `paste`, a pasted redirect URL) with the right `state`
    /// arrives or `timeout` passes, then closes the port and returns the authorization code.
    /// Dropping the returned future (Ctrl-C) closes the port too.
    pub(crate) async fn wait_for_code(
        self,
        expected: &Expected,
        timeout: Duration,
        paste: Option<&PastedLines>,
        reporter: &dyn Reporter,
    ) -> Result<SecretString> {
        let (tx, mut rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            expected: Expected {
                state: expected.state.clone(),
                issuer: expected.issuer.clone(),
            },
            path: self.path.clone(),
            hosts: allowed_hosts(&self.host, self.port),
            outcome: Mutex::new(Some(tx)),
            refused: AtomicU32::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let connections = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let serving = Serving {
            acceptors: self
                .listeners
                .into_iter()
                .map(|l| {
                    tokio::spawn(accept(
                        l,
                        app.clone(),
                        Arc::clone(&connections),
                        Arc::clone(&permits),
                    ))
                })
                .collect(),
            connections: Arc::clone(&connections),
        };

        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut paste = paste;
        let outcome = loop {
            tokio::select! {
                _ = &mut deadline => break None,
                outcome = &mut rx => break outcome.ok(),
                line = next_pasted(paste) => match line {
                    // The input ended (stdin closed): wait for the browser alone.
                    None => paste = None,
                    Some(text) => match judge_pasted(text.expose_secret(), &shared.path, &shared.expected) {
                        None => {}
                        Some(Verdict::Final(Outcome::Unusable)) => {
                            shared.refuse();
                            reporter.event(Event::PasteRefused(
                                "the pasted address has no usable authorization code (was it cut short?)",
                            ));
                        }
                        Some(Verdict::Final(outcome)) => {
                            reporter.event(Event::PasteAccepted);
                            // Through the same one-shot as the callback: a later browser
                            // request finds the flow done.
                            shared.finish(outcome);
                        }
                        Some(Verdict::Refused { message, .. }) => {
                            shared.refuse();
                            reporter.event(Event::PasteRefused(&message));
                        }
                    },
                },
            }
        };
        // Close the port at once, let the last page flush (no keep-alive, `Connection: close`),
        // then cut whatever connection is left so nothing can delay the exit.
        serving.stop_accepting();
        let mut set = std::mem::take(&mut *connections.lock().expect("connections lock"));
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while set.join_next().await.is_some() {}
        })
        .await;
        set.abort_all();
        drop(serving);

        match outcome {
            None if deadline.is_elapsed() => Err(Error::CallbackTimeout {
                seconds: timeout.as_secs(),
            }),
            None => Err(Error::Authorization("the callback server stopped".into())),
            Some(Outcome::Code(code)) => Ok(code),
            Some(Outcome::Refused { error, description }) => {
                Err(Error::AuthorizationDenied { error, description })
            }
            Some(Outcome::Unusable) => Err(Error::AuthorizationDenied {
                error: "invalid_request".into(),
                description: Some("the callback had no usable authorization code".into()),
            }),
            Some(Outcome::TooManyRefused) => Err(Error::Authorization(format!(
                "{MAX_REFUSED} callbacks with a wrong state or bad parameters arrived; something other than your browser is calling the callback port"
            ))),
        }
    }
}

/// The next pasted line; never, without a paste source.
async fn next_pasted(paste: Option<&PastedLines>) -> Option<SecretString> {
    match paste {
        Some(p) => p.next().await,
        None => std::future::pending().await,
    }
}

/// The acceptor tasks (which own the listening sockets) and the open connections. Dropping it
/// closes the port: on every path out of the wait, a cancelled (Ctrl-C) one included.
struct Serving {
    acceptors: Vec<tokio::task::JoinHandle<()>>,
    connections: Arc<Mutex<tokio::task::JoinSet<()>>>,
}

impl Serving {
    fn stop_accepting(&self) {
        for a in &self.acceptors {
            a.abort();
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop_accepting();
        if let Ok(mut set) = self.connections.lock() {
            set.abort_all();
        }
    }
}

/// Accepts loopback peers only, at most [`MAX_CONNECTIONS`] at a time, each served by hyper with
/// a header size cap, a header read timeout and no keep-alive.
async fn accept(
    listener: TcpListener,
    app: axum::Router,
    connections: Arc<Mutex<tokio::task::JoinSet<()>>>,
    permits: Arc<tokio::sync::Semaphore>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        if !peer.ip().is_loopback() {
            continue; // dropped: only this machine may call back
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            continue; // too many open connections: refuse this one
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        connections
            .lock()
            .expect("connections lock")
            .spawn(async move {
                let _permit = permit;
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEADER_BYTES)
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            });
    }
}

/// Binds `port` on every address, never with `SO_REUSEPORT`, so no other socket can share the
/// port (RFC 8252 Appendix B.5). On Unix `SO_REUSEADDR` is on, as std and tokio set it: it
/// shares nothing with a listener, it only lets us bind while the previous run's connections
/// sit in TIME_WAIT, so an `authorize` retried at once gets the same (registered) redirect
/// URI. On Windows it would allow sharing, so it stays off there.
async fn bind_all(addrs: &[IpAddr], port: u16) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for ip in addrs {
        let bound = (|| {
            let socket = match ip {
                IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(cfg!(unix))?;
            socket.bind(SocketAddr::new(*ip, port))?;
            socket.listen(64)
        })();
        match bound {
            Ok(l) => listeners.push(l),
            // A machine without IPv6 still serves the IPv4 loopback.
            // A machine without IPv6 (not configured, or disabled in the kernel) still serves
            // the IPv4 loopback; a busy IPv6 port is busy all the same.
            Err(e) if ip.is_ipv6() && e.kind() != std::io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    }
    Ok(listeners)
}

fn allowed_hosts(host: &str, port: u16) -> HashSet<String> {
    let mut hosts = HashSet::from([format!("127.0.0.1:{port}")]);
    if host == "localhost" {
        hosts.insert(format!("localhost:{port}"));
        hosts.insert(format!("[::1]:{port}"));
    }
    hosts
}

/// What the callback's `iss` parameter (RFC 9207) must be.
#[derive(Clone, Debug, Default)]
pub(crate) struct Issuer {
    /// The provider's issuer identifier; `None`: an `iss` is ignored.
    pub expected: Option<String>,
    /// A callback without `iss` is refused.
    pub required: bool,
}

impl Issuer {
    /// Whether the callback's `iss` (if any) is acceptable: simple string comparison.
    fn accepts(&self, iss: Option<&str>) -> bool {
        match (&self.expected, iss) {
            (Some(expected), Some(iss)) => iss == expected,
            (Some(_), None) => !self.required,
            (None, _) => true,
        }
    }
}

struct Shared {
    expected: Expected,
    path: String,
    hosts: HashSet<String>,
    outcome: Mutex<Option<oneshot::Sender<Outcome>>>,
    refused: AtomicU32,
}

impl Shared {
    fn finish(&self, outcome: Outcome) -> bool {
        match self.outcome.lock().expect("callback lock").take() {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Counts a refused callback; past the cap the flow ends.
    fn refuse(&self) {
        if self.refused.fetch_add(1, Ordering::SeqCst) + 1 >= MAX_REFUSED {
            self.finish(Outcome::TooManyRefused);
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // DNS rebinding: only the loopback names of this port.
    let hosts: Vec<_> = headers.get_all(header::HOST).iter().collect();
    let host_ok = hosts.len() == 1
        && hosts[0]
            .to_str()
            .is_ok_and(|h| shared.hosts.contains(&h.to_ascii_lowercase()));
    if !host_ok {
        return page(
            StatusCode::MISDIRECTED_REQUEST,
            "Wrong host",
            "This server only answers on its loopback address.",
        );
    }
    if uri.path() != shared.path {
        return page(StatusCode::NOT_FOUND, "Not found", "Nothing here.");
    }
    // Only a top-level navigation may deliver the callback: not an <img>, a fetch() or a
    // cross-origin script on some other page.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let navigation = header("sec-fetch-dest").is_none_or(|d| d == "document")
        && header("sec-fetch-mode").is_none_or(|m| m == "navigate")
        && headers.get(header::ORIGIN).is_none();
    if !navigation {
        return page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The callback must be opened as a page by the browser.",
        );
    }
    if method != Method::GET {
        let mut resp = page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Only GET is accepted here.",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }

    match judge(uri.query().unwrap_or(""), &shared.expected) {
        Verdict::Refused { title, message } => {
            shared.refuse();
            page(StatusCode::BAD_REQUEST, title, &message)
        }
        Verdict::Final(outcome) => {
            let (status, title, message) = match &outcome {
                Outcome::Code(_) => (StatusCode::OK, "Authorization received", "oauth-pkce received the authorization. You can close this tab and return to the terminal.".to_string()),
                Outcome::Refused { error, description } => (
                    StatusCode::OK,
                    "Authorization failed",
                    format!(
                        "The provider answered: {}{}. Return to the terminal.",
                        error,
                        description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    "Authorization failed",
                    "The callback had no usable authorization code. Return to the terminal.".to_string(),
                ),
            };
            if shared.finish(outcome) {
                page(status, title, &message)
            } else {
                already_done()
            }
        }
    }
}

/// What one authorization response means for the flow.
enum Verdict {
    /// Not this flow's answer (wrong or missing `state`, another issuer, bad parameters): it is
    /// refused and counted, and the flow keeps waiting.
    Refused {
        title: &'static str,
        message: String,
    },
    /// The flow's answer: a code, the provider's error, or no usable code.
    Final(Outcome),
}

/// The one validator of authorization responses, for a callback request's query and for a
/// pasted redirect URL alike: parameters decoded once (no duplicates), `state` compared in
/// constant time, `iss` checked (RFC 9207), tokens refused, the code checked (VSCHAR, length).
fn judge(query: &str, expected: &Expected) -> Verdict {
    let refused = |title, message: &str| Verdict::Refused {
        title,
        message: message.to_string(),
    };
    let params = match Params::parse(query) {
        Ok(p) => p,
        Err(message) => return refused("Bad request", &message),
    };
    let state_ok = params
        .get("state")
        .is_some_and(|s| constant_time_eq(s.as_bytes(), expected.state.expose_secret().as_bytes()));
    if !state_ok {
        return refused(
            "Not this sign-in",
            "This response does not belong to the sign-in in progress (the state parameter is missing or wrong). It was ignored.",
        );
    }
    // Mix-up defence (RFC 9207): a response from another authorization server is refused, an
    // error response included, and the flow keeps waiting.
    if !expected.issuer.accepts(params.get("iss")) {
        return refused(
            "Wrong issuer",
            "This response names a different authorization server (iss) than the one the sign-in was sent to. It was ignored.",
        );
    }
    if let Some(error) = params.get("error") {
        return Verdict::Final(Outcome::Refused {
            error: terminal_safe(error, 64),
            description: params
                .get("error_description")
                .map(|d| terminal_safe(d, 256)),
        });
    }
    if ["access_token", "id_token", "token_type"]
        .iter()
        .any(|k| params.get(k).is_some())
    {
        return refused(
            "Bad request",
            "Tokens are never accepted on the callback; only an authorization code is.",
        );
    }
    let code = params.get("code").unwrap_or("");
    let code_ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if !code_ok {
        return Verdict::Final(Outcome::Unusable);
    }
    Verdict::Final(Outcome::Code(SecretString::from(code.to_string())))
}

/// A pasted line: the redirect URL from the browser's address bar (its path must be the
/// redirect path; the host and port are not checked, so a tunnelled or rewritten address
/// works), or just its query (`code=…&state=…`). A bare code is refused: without `state` it
/// cannot be tied to this sign-in. `None` for an empty line. Messages never repeat the text.
fn judge_pasted(text: &str, path: &str, expected: &Expected) -> Option<Verdict> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let refused = |message: String| {
        Some(Verdict::Refused {
            title: "Not this sign-in",
            message,
        })
    };
    let query = match url::Url::parse(text) {
        Ok(url) if url.has_host() => {
            if url.path() != path {
                return refused(format!(
                    "that is not the redirect to {path}: after approving, copy the address of the page the browser was sent to"
                ));
            }
            url.query().unwrap_or("").to_string()
        }
        _ if text.starts_with('?') => text[1..].to_string(),
        _ if text.contains('=') => text.to_string(),
        _ => {
            return refused(format!(
                "a bare code cannot be tied to this sign-in: paste the whole address (the one with {path}?code=…&state=…)"
            ))
        }
    };
    Some(match judge(&query, expected) {
        Verdict::Refused { title, message } => Verdict::Refused {
            title,
            message: match title {
                "Not this sign-in" => "its state does not match this sign-in (an address from an earlier attempt, or one cut short)".into(),
                "Wrong issuer" => "it names another authorization server (iss) than this sign-in's".into(),
                _ => format!("it has bad parameters: {message}"),
            },
        },
        final_verdict => final_verdict,
    })
}

fn already_done() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Already done",
        "This sign-in has already finished.",
    )
}

/// Query parameters, decoded once; a repeated parameter is an error (RFC 6749 §3.1), and an
/// empty value counts as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> std::result::Result<Params, String> {
        let mut seen = HashSet::new();
        let mut pairs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(k.to_string()) {
                return Err(format!(
                    "The parameter `{}` appears more than once.",
                    html_escape(&terminal_safe(&k, 40))
                ));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A static page: the title and message are HTML-escaped; no script, no external resource.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p>{m}</p>\
         <p><small>oauth-pkce</small></p></body></html>",
        t = html_escape(title),
        m = html_escape(message)
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_duplicates_and_treat_empty_as_absent() {
        assert!(Params::parse("code=a&code=b&state=s").is_err());
        let p = Params::parse("code=&state=s%20x&foo=bar").unwrap();
        assert_eq!(p.get("code"), None);
        assert_eq!(p.get("state"), Some("s x"));
    }

    #[test]
    fn iss_is_compared_exactly_and_required_only_when_configured() {
        let honest = Issuer {
            expected: Some("https://honest.as.example".into()),
            required: false,
        };
        assert!(honest.accepts(Some("https://honest.as.example")));
        for bad in [
            "https://honest.as.example/",
            "HTTPS://honest.as.example",
            "https://evil.example",
        ] {
            assert!(!honest.accepts(Some(bad)), "{bad}");
        }
        assert!(honest.accepts(None));
        assert!(!Issuer {
            required: true,
            ..honest.clone()
        }
        .accepts(None));
        assert!(Issuer::default().accepts(Some("https://anything.example")));
    }

    fn expected() -> Expected {
        Expected {
            state: SecretString::from("S".repeat(43)),
            issuer: Issuer::default(),
        }
    }

    fn code_of(v: Option<Verdict>) -> Option<String> {
        match v {
            Some(Verdict::Final(Outcome::Code(c))) => Some(c.expose_secret().to_string()),
            _ => None,
        }
    }

    fn refusal_of(v: Option<Verdict>) -> String {
        match v {
            Some(Verdict::Refused { message, .. }) => message,
            _ => panic!("not refused"),
        }
    }

    #[test]
    fn one_validator_judges_callbacks_and_pasted_addresses_alike() {
        let e = expected();
        let state = "S".repeat(43);
        let url = format!("http://localhost:3000/callback?code=abc&state={state}");
        assert_eq!(
            code_of(Some(judge(&format!("code=abc&state={state}"), &e))).as_deref(),
            Some("abc")
        );
        assert_eq!(
            code_of(judge_pasted(&format!("  {url}\n"), "/callback", &e)).as_deref(),
            Some("abc")
        );
        // A tunnelled or rewritten host and port are fine; the query alone too.
        let other = format!("http://127.0.0.1:9999/callback?state={state}&code=abc");
        assert_eq!(
            code_of(judge_pasted(&other, "/callback", &e)).as_deref(),
            Some("abc")
        );
        assert_eq!(
            code_of(judge_pasted(
                &format!("?code=abc&state={state}"),
                "/callback",
                &e
            ))
            .as_deref(),
            Some("abc")
        );
        assert!(judge_pasted("   ", "/callback", &e).is_none());
    }

    #[test]
    fn pasted_addresses_without_the_right_state_or_path_are_refused_without_echoing_them() {
        let e = expected();
        let state = "S".repeat(43);
        for (text, needle) in [
            (
                "http://localhost:3000/callback?code=SECRETCODE&state=WRONG".to_string(),
                "state does not match",
            ),
            (
                "http://localhost:3000/callback?code=SECRETCODE".to_string(),
                "state does not match",
            ),
            ("SECRETCODE".to_string(), "bare code"),
            // The authorization URL itself carries our state: refused by its path.
            (
                format!("https://as.example/authorize?state={state}&client_id=x"),
                "not the redirect",
            ),
            (
                format!("http://localhost:3000/callback?code=SECRETCODE&code=x&state={state}"),
                "more than once",
            ),
            (
                format!("http://localhost:3000/callback?access_token=SECRETCODE&state={state}"),
                "Tokens are never accepted",
            ),
        ] {
            let message = refusal_of(judge_pasted(&text, "/callback", &e));
            assert!(message.contains(needle), "{text}: {message}");
            assert!(!message.contains("SECRETCODE"), "{message}");
        }
        // The right state without a code is unusable (the paste path refuses and waits on).
        assert!(matches!(
            judge_pasted(
                &format!("http://localhost:3000/callback?state={state}"),
                "/callback",
                &e
            ),
            Some(Verdict::Final(Outcome::Unusable))
        ));
        // The provider's error with the right state is final.
        assert!(matches!(
            judge_pasted(
                &format!("http://localhost:3000/callback?error=access_denied&state={state}"),
                "/callback",
                &e
            ),
            Some(Verdict::Final(Outcome::Refused { .. }))
        ));
    }

    #[test]
    fn constant_time_eq_needs_exact_match() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcx"));
        assert!(!constant_time_eq(b"abc", b"ABC"));
    }

    #[test]
    fn hosts_follow_the_redirect_host() {
        assert_eq!(
            allowed_hosts("127.0.0.1", 5),
            HashSet::from(["127.0.0.1:5".to_string()])
        );
        assert!(allowed_hosts("localhost", 5).contains("[::1]:5"));
    }
}
