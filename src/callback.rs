//! The loopback callback server: the only module that listens on a socket.
//!
//! It binds the first free port of the range on the loopback interface only (127.0.0.1, and
//! also [::1] when the redirect host is `localhost`), answers exactly `GET {redirect_path}` on
//! the expected `Host`, and hands the first callback whose `state` matches to the waiting flow.
//! Anything else (a favicon, a probe, a wrong or missing `state`) gets an error page and changes
//! nothing, up to a cap. Every page is static text with request text HTML-escaped, and every
//! response carries a locked-down set of headers and `Connection: close`.

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
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::provider::PortRange;
use crate::text::{html_escape, terminal_safe};

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
pub struct Callback {
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
    Refused {
        error: String,
        description: Option<String>,
    },
    TooManyRefused,
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
    pub async fn bind(host: &str, path: &str, ports: &PortRange) -> Result<Callback> {
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

    /// Serves until a callback with the right `state` arrives or `timeout` passes, then closes
    /// the port and returns the authorization code.
    pub async fn wait_for_code(
        self,
        state: &SecretString,
        issuer: &Issuer,
        timeout: Duration,
    ) -> Result<SecretString> {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: state.clone(),
            issuer: issuer.clone(),
            path: self.path.clone(),
            hosts: allowed_hosts(&self.host, self.port),
            outcome: Mutex::new(Some(tx)),
            refused: AtomicU32::new(0),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let connections = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let acceptors: Vec<_> = self
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
            .collect();

        let outcome = tokio::time::timeout(timeout, rx).await;
        // Close the port at once, let the last page flush (no keep-alive, `Connection: close`),
        // then cut whatever connection is left so nothing can delay the exit.
        for a in &acceptors {
            a.abort();
        }
        let mut set = std::mem::take(&mut *connections.lock().expect("connections lock"));
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while set.join_next().await.is_some() {}
        })
        .await;
        set.abort_all();

        match outcome {
            Err(_) => Err(Error::CallbackTimeout {
                seconds: timeout.as_secs(),
            }),
            Ok(Err(_)) => Err(Error::Authorization("the callback server stopped".into())),
            Ok(Ok(Outcome::Code(code))) => Ok(code),
            Ok(Ok(Outcome::Refused { error, description })) => {
                Err(Error::AuthorizationDenied { error, description })
            }
            Ok(Ok(Outcome::TooManyRefused)) => Err(Error::Authorization(format!(
                "{MAX_REFUSED} callbacks with a wrong state or bad parameters arrived; something other than your browser is calling the callback port"
            ))),
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
pub struct Issuer {
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
    state: SecretString,
    issuer: Issuer,
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

    let params = match Params::parse(uri.query().unwrap_or("")) {
        Ok(p) => p,
        Err(message) => {
            shared.refuse();
            return page(StatusCode::BAD_REQUEST, "Bad request", &message);
        }
    };
    let state_ok = params
        .get("state")
        .is_some_and(|s| constant_time_eq(s.as_bytes(), shared.state.expose_secret().as_bytes()));
    if !state_ok {
        shared.refuse();
        return page(
            StatusCode::BAD_REQUEST,
            "Not this sign-in",
            "This response does not belong to the sign-in in progress (the state parameter is missing or wrong). It was ignored.",
        );
    }

    // Mix-up defence (RFC 9207): a response from another authorization server is refused, an
    // error response included, and the flow keeps waiting.
    if !shared.issuer.accepts(params.get("iss")) {
        shared.refuse();
        return page(
            StatusCode::BAD_REQUEST,
            "Wrong issuer",
            "This response names a different authorization server (iss) than the one the sign-in was sent to. It was ignored.",
        );
    }

    if let Some(error) = params.get("error") {
        let error = terminal_safe(error, 64);
        let description = params
            .get("error_description")
            .map(|d| terminal_safe(d, 256));
        let body = format!(
            "The provider answered: {}{}. Return to the terminal.",
            error,
            description
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        if shared.finish(Outcome::Refused { error, description }) {
            return page(StatusCode::OK, "Authorization failed", &body);
        }
        return already_done();
    }
    if ["access_token", "id_token", "token_type"]
        .iter()
        .any(|k| params.get(k).is_some())
    {
        shared.refuse();
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Tokens are never accepted on the callback; only an authorization code is.",
        );
    }
    let code = params.get("code").unwrap_or("");
    let code_ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if !code_ok {
        let outcome = Outcome::Refused {
            error: "invalid_request".into(),
            description: Some("the callback had no usable authorization code".into()),
        };
        if shared.finish(outcome) {
            return page(
                StatusCode::BAD_REQUEST,
                "Authorization failed",
                "The callback had no usable authorization code. Return to the terminal.",
            );
        }
        return already_done();
    }
    if shared.finish(Outcome::Code(SecretString::from(code.to_string()))) {
        page(StatusCode::OK, "Authorization received", "oauth-pkce received the authorization. You can close this tab and return to the terminal.")
    } else {
        already_done()
    }
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
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
