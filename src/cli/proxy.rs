//! `oauth-pkce proxy`: a local API gateway, so a program (an AI agent, a script) calls the
//! provider's API without ever holding the token. Every request must carry the proxy's key
//! (`X-OAuth-Pkce-Key`, or as the first path segment); it is forwarded to the provider's
//! `api_base_url` only (no absolute-form, no CONNECT, no Host routing, no redirect followed),
//! with `Authorization: Bearer` from the usual token path (cache, refresh, lease). After a
//! 401 from the API, a request whose body was buffered gets one forced refresh and one retry.
//! Answers stream back; the proxy's own errors are JSON. Loopback only.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};

use oauth_pkce::{Error, Result, TokenSource};

/// Bodies up to this size are buffered (and can be replayed after a 401); larger ones, and
/// bodies of unknown length, stream through once.
const REPLAYABLE: u64 = 1024 * 1024;
/// Requests served at once; more wait for a slot.
const MAX_IN_FLIGHT: usize = 64;
/// Connections open at once; the next is accepted when one closes (idle keep-alive
/// connections count: a client cannot exhaust the proxy's file descriptors).
const MAX_CONNECTIONS: usize = 256;
/// The request line and headers a request may carry (as much as common servers allow); more
/// is refused with 431 before anything is forwarded.
const MAX_HEAD: usize = 16 * 1024;
/// The default ports, first free wins.
const PORTS: std::ops::RangeInclusive<u16> = 8400..=8410;
/// Headers that belong to one hop, never forwarded either way.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];
const KEY_HEADER: &str = "x-oauth-pkce-key";

/// What the proxy needs, resolved before it listens.
pub(crate) struct Options {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) key: Option<SecretString>,
    pub(crate) ready_file: Option<std::path::PathBuf>,
}

struct Shared {
    source: TokenSource,
    base: url::Url,
    key: SecretString,
    client: reqwest::Client,
    slots: tokio::sync::Semaphore,
}

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub(crate) async fn run(source: TokenSource, options: Options) -> Result<i32> {
    let base = api_base(&source)?;
    let listener = bind(options.listen).await?;
    let addr = local_addr(&listener)?;
    let generated = options.key.is_none();
    let key = options.key.unwrap_or_else(oauth_pkce::bin::random_token);
    super::output::proxy_listening(addr, &base, generated.then_some(&key));
    if let Some(path) = &options.ready_file {
        std::fs::write(path, format!("http://{addr}\n")).map_err(|e| {
            Error::Usage(format!(
                "cannot write the ready file {}: {e}",
                path.display()
            ))
        })?;
    }
    serve(listener, source, base, key, shutdown()).await?;
    Ok(0)
}

/// `exec --proxy`: a proxy for `source` on a free loopback port, with a fresh key, serving in
/// the background until the process ends. Returns its base URL with the key as the first path
/// segment (`http://127.0.0.1:PORT/KEY`): all a command needs, and no token.
pub(crate) async fn start_for_exec(source: TokenSource) -> Result<SecretString> {
    let base = api_base(&source)?;
    let listener = bind(Some(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
    let addr = local_addr(&listener)?;
    let key = oauth_pkce::bin::random_token();
    let url = SecretString::from(format!("http://{addr}/{}", key.expose_secret()));
    let never = std::future::pending::<()>();
    tokio::spawn(async move {
        if let Err(e) = serve(listener, source, base, key, never).await {
            tracing::debug!("exec's proxy stopped: {e}");
        }
    });
    Ok(url)
}

fn api_base(source: &TokenSource) -> Result<url::Url> {
    let provider = &source.context().provider;
    provider.api_base_url.clone().ok_or_else(|| {
        Error::Config(format!(
            "provider `{}` has no `api_base_url` to forward to: add one to its provider file \
             (--provider-file), e.g. api_base_url = \"https://api.example.com\"",
            provider.name
        ))
    })
}

fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot listen: {e}")))
}

async fn serve(
    listener: tokio::net::TcpListener,
    source: TokenSource,
    base: url::Url,
    key: SecretString,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let client = source.context().http.streaming_client()?;
    let shared = Arc::new(Shared {
        source,
        base,
        key,
        client,
        slots: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
    });
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let listener = Limited {
        listener,
        open: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| Error::Usage(format!("the proxy stopped: {e}")))
}

/// A listener that accepts a connection only while fewer than [`MAX_CONNECTIONS`] are open.
struct Limited {
    listener: tokio::net::TcpListener,
    open: Arc<tokio::sync::Semaphore>,
}

/// An accepted connection, holding its place until it is dropped.
struct Counted {
    io: tokio::net::TcpStream,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl axum::serve::Listener for Limited {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        let place = self
            .open
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (io, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (Counted { io, _place: place }, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// `--listen` (loopback only), else the first free port of 8400–8410 on 127.0.0.1.
async fn bind(listen: Option<SocketAddr>) -> Result<tokio::net::TcpListener> {
    let candidates: Vec<SocketAddr> = match listen {
        Some(addr) if !addr.ip().is_loopback() => {
            return Err(Error::Usage(format!(
                "--listen {addr}: the proxy listens on loopback only (127.0.0.1 or [::1])"
            )))
        }
        Some(addr) => vec![addr],
        None => PORTS
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect(),
    };
    for addr in &candidates {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return Ok(l);
        }
    }
    Err(Error::Usage(format!(
        "no free address to listen on ({}); pass --listen 127.0.0.1:PORT",
        candidates
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The proxy's own answer: JSON with what went wrong.
fn refuse(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a JSON answer")
}

/// Constant-time comparison of the key presented with the proxy's.
fn same_key(given: &[u8], key: &SecretString) -> bool {
    let key = key.expose_secret().as_bytes();
    given.len() == key.len() && given.iter().zip(key).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let head: usize = parts.uri.to_string().len()
        + parts
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > MAX_HEAD {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request's headers are larger than 16 KiB; nothing was forwarded",
        );
    }
    if parts.method == Method::CONNECT || parts.uri.scheme().is_some() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "only requests for this proxy's own paths are forwarded (no absolute-form, no CONNECT)",
        );
    }
    // The key: in its header, or as the first path segment (then taken off the path).
    let mut path = parts.uri.path().to_string();
    let by_header = parts
        .headers
        .get(KEY_HEADER)
        .is_some_and(|v| same_key(v.as_bytes(), &shared.key));
    if !by_header {
        let rest = path.trim_start_matches('/');
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !same_key(first.as_bytes(), &shared.key) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing or wrong proxy key: send it as X-OAuth-Pkce-Key, or as the first path segment",
            );
        }
        path = format!("/{tail}");
    }
    let Ok(_slot) = shared.slots.acquire().await else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the proxy is stopping");
    };
    let mut url = shared.base.clone();
    let joined = format!("{}{}", shared.base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(parts.uri.query());

    let headers = forwarded(&parts.headers);
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let replayable = match length {
        Some(n) => n <= REPLAYABLE,
        None => parts.method == Method::GET || parts.method == Method::HEAD,
    };
    let send = |token: &SecretString, body: reqwest::Body| {
        shared
            .client
            .request(parts.method.clone(), url.clone())
            .headers(headers.clone())
            .bearer_auth(token.expose_secret())
            .body(body)
            .send()
    };
    let token = match shared.source.access_token().await {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, &format!("no token: {e}")),
    };
    let answer = if replayable {
        let bytes = match axum::body::to_bytes(body, REPLAYABLE as usize).await {
            Ok(b) => b,
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
            }
        };
        let first = send(&token, reqwest::Body::from(bytes.clone())).await;
        match first {
            // One forced refresh and one retry after the API refused the token.
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                match shared.source.refresh_after_unauthorized(&token).await {
                    Ok(fresh) => send(&fresh, reqwest::Body::from(bytes)).await,
                    Err(_) => Ok(r),
                }
            }
            other => other,
        }
    } else {
        send(&token, reqwest::Body::wrap_stream(body.into_data_stream())).await
    };
    match answer {
        Ok(upstream) => {
            let mut response = Response::builder().status(upstream.status());
            for (name, value) in upstream.headers() {
                if !HOP_BY_HOP.contains(&name.as_str()) {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(upstream.bytes_stream()))
                .unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "a bad answer from the API"))
        }
        Err(e) => {
            tracing::debug!("proxy: upstream error: {e}");
            refuse(
                StatusCode::BAD_GATEWAY,
                &format!("the API could not be reached ({})", shared.base),
            )
        }
    }
}

/// The request's headers as forwarded: no hop-by-hop headers, no credentials of the caller's
/// (`Authorization`, `Cookie`), not the proxy's key.
fn forwarded(incoming: &HeaderMap) -> HeaderMap {
    let dropped = |name: &HeaderName| {
        HOP_BY_HOP.contains(&name.as_str())
            || name == header::AUTHORIZATION
            || name == header::COOKIE
            || name.as_str() == KEY_HEADER
    };
    incoming
        .iter()
        .filter(|(name, _)| !dropped(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_in_full_and_caller_credentials_are_dropped() {
        let key = SecretString::from("k3y-0123456789");
        assert!(same_key(b"k3y-0123456789", &key));
        assert!(!same_key(b"k3y-012345678", &key));
        assert!(!same_key(b"k3y-0123456780", &key));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer theirs".parse().unwrap());
        h.insert(header::COOKIE, "a=b".parse().unwrap());
        h.insert(KEY_HEADER, "k".parse().unwrap());
        h.insert(header::CONNECTION, "close".parse().unwrap());
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        let out = forwarded(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key(header::ACCEPT));
    }
}
