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
use crate::text::html_escape;
use crate::{Event, Reporter};

mod peer;
mod validate;

use validate::{judge, judge_pasted, Outcome, Verdict};
pub(crate) use validate::{Expected, Issuer};

/// After this many refused callbacks (wrong `state`, bad parameters) the flow gives up.
const MAX_REFUSED: u32 = 20;
/// Connections served at once; more are refused until one closes.
const MAX_CONNECTIONS: usize = 8;
/// Request line + headers cap (hyper's smallest read buffer).
const MAX_HEADER_BYTES: usize = 8192;
/// A client must send its headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the browser's page waits for the exchange and the store to finish.
const RESULT_WAIT: Duration = Duration::from_secs(25);
/// After a failed `accept()` (too many open files): wait, rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
    /// arrives or `timeout` passes, then closes the port and returns the authorization code,
    /// with the [`Reply`] that tells the waiting browser page how the sign-in ended. Dropping
    /// the returned future (Ctrl-C) closes the port too.
    pub(crate) async fn wait_for_code(
        self,
        expected: &Expected,
        timeout: Duration,
        paste: Option<&PastedLines>,
        reporter: &dyn Reporter,
    ) -> Result<(SecretString, Reply)> {
        let (tx, mut rx) = oneshot::channel();
        let (notice_tx, mut notices) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut told = HashSet::new();
        let shared = Arc::new(Shared {
            expected: Expected {
                state: expected.state.clone(),
                issuer: expected.issuer.clone(),
                provider: expected.provider.clone(),
            },
            path: self.path.clone(),
            hosts: allowed_hosts(&self.host, self.port),
            outcome: Mutex::new(Some(tx)),
            refused: AtomicU32::new(0),
            notices: notice_tx,
            result: tokio::sync::watch::channel(None).0,
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
                        shared.notices.clone(),
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
                Some(notice) = notices.recv() => {
                    // Each kind of refusal is said once.
                    if told.insert(notice.clone()) {
                        reporter.event(Event::Warning(&notice));
                    }
                }
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
        // Close the port at once. With a code, the browser's connection stays open for the
        // page that says how the sign-in ended (the Reply); otherwise let the last page flush
        // (no keep-alive, `Connection: close`), then cut whatever connection is left.
        serving.stop_accepting();
        if let Some(Outcome::Code(code)) = outcome {
            let reply = Reply {
                shared: Arc::clone(&shared),
                serving: Some(serving),
            };
            return Ok((code, reply));
        }
        let mut set = std::mem::take(&mut *connections.lock().expect("connections lock"));
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while set.join_next().await.is_some() {}
        })
        .await;
        set.abort_all();
        drop(serving);

        let provider = expected.provider.clone();
        match outcome {
            None if deadline.is_elapsed() => Err(Error::CallbackTimeout {
                provider,
                seconds: timeout.as_secs(),
            }),
            None => Err(Error::Authorization {
                provider,
                message: "the callback server stopped".into(),
            }),
            Some(Outcome::Code(_)) => unreachable!("a code returned above"),
            Some(Outcome::Refused { error, description }) => Err(Error::AuthorizationDenied {
                provider,
                error,
                description,
            }),
            Some(Outcome::Unusable) => Err(Error::AuthorizationDenied {
                provider,
                error: "invalid_request".into(),
                description: Some("the callback had no usable authorization code".into()),
            }),
            Some(Outcome::TooManyRefused) => Err(Error::Authorization {
                provider,
                message: format!(
                    "{MAX_REFUSED} callbacks with a wrong state or bad parameters arrived; something other than your browser is calling the callback port"
                ),
            }),
        }
    }
}

/// How the sign-in ended, for the browser page still waiting (title, text).
type Ending = Option<(String, String)>;

/// The browser's page, held open after the code arrived until [`Reply::send`] says how the
/// sign-in ended (the exchange and the store done, or what failed), in the terminal's words.
pub(crate) struct Reply {
    shared: Arc<Shared>,
    serving: Option<Serving>,
}

impl Reply {
    /// Shows `title` and `text` on the waiting page, lets it flush, and closes the server.
    pub(crate) async fn send(mut self, title: String, text: String) {
        self.shared.result.send_replace(Some((title, text)));
        if let Some(serving) = self.serving.take() {
            let mut set =
                std::mem::take(&mut *serving.connections.lock().expect("connections lock"));
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while set.join_next().await.is_some() {}
            })
            .await;
            set.abort_all();
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
    notices: tokio::sync::mpsc::UnboundedSender<String>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Too many open files and the like: let connections close before retrying.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            continue; // dropped: only this machine may call back
        }
        // Another local user's connection is refused before it can take a permit.
        if let Ok(local) = stream.local_addr() {
            if let Err(uid) = peer::allowed(peer, local) {
                let _ = notices.send(format!(
                    "refused a connection to the callback from another local user (uid {uid})"
                ));
                continue;
            }
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            let _ = notices.send(format!(
                "refusing connections to the callback: {MAX_CONNECTIONS} are open already"
            ));
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

struct Shared {
    expected: Expected,
    path: String,
    hosts: HashSet<String>,
    outcome: Mutex<Option<oneshot::Sender<Outcome>>>,
    refused: AtomicU32,
    /// What the terminal should hear about refused connections and callbacks.
    notices: tokio::sync::mpsc::UnboundedSender<String>,
    /// How the sign-in ended, once it has (see [`Reply`]).
    result: tokio::sync::watch::Sender<Ending>,
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
            let _ = shared.notices.send(format!(
                "refused a callback: {}",
                crate::text::terminal_safe(&message, 200)
            ));
            page(StatusCode::BAD_REQUEST, title, &message)
        }
        Verdict::Final(Outcome::Code(code)) => {
            let mut ended = shared.result.subscribe();
            if !shared.finish(Outcome::Code(code)) {
                return already_done();
            }
            // The page answers once the exchange and the store are done, saying how it went.
            let waited = tokio::time::timeout(RESULT_WAIT, ended.wait_for(Option::is_some)).await;
            match waited.ok().and_then(|r| r.ok().map(|e| e.clone())).flatten() {
                Some((title, text)) => page(StatusCode::OK, &title, &text),
                None => page(
                    StatusCode::OK,
                    "Still working",
                    "oauth-pkce received the authorization and is still storing the tokens. The terminal says how it ends.",
                ),
            }
        }
        Verdict::Final(outcome) => {
            let (status, title, message) = match &outcome {
                Outcome::Code(_) => unreachable!("handled above"),
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
                    "The callback had no usable authorization code. Return to the terminal."
                        .to_string(),
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

fn already_done() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Already done",
        "This sign-in has already finished.",
    )
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
    fn hosts_follow_the_redirect_host() {
        assert_eq!(
            allowed_hosts("127.0.0.1", 5),
            HashSet::from(["127.0.0.1:5".to_string()])
        );
        assert!(allowed_hosts("localhost", 5).contains("[::1]:5"));
    }
}
