//! Network fakes: a TLS front for a plain fake server, with the test certificate of
//! `tests/data/tls` (a CA that is in no trust store, and a leaf for `localhost`, `127.0.0.1`,
//! `doppler.example` and `auth.example`), and a recording HTTP proxy that tunnels `CONNECT`
//! to fixed backends (no DNS: `doppler.example:443` → a local port).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::server::Background;

/// `tests/data/tls/NAME`.
pub fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// The CA that signed the fakes' certificate.
pub fn ca_file() -> PathBuf {
    tls_file("ca.pem")
}

/// TLS on `127.0.0.1:0`, forwarding the plain bytes to `backend`.
pub struct TlsFront {
    pub addr: SocketAddr,
    _bg: Background,
}

impl TlsFront {
    pub fn start(backend: SocketAddr) -> TlsFront {
        let certs = CertificateDer::pem_file_iter(tls_file("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bg = Background::start(
            "tls-front",
            listener,
            Box::new(move |listener| {
                Box::pin(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // A client that refuses the certificate ends the handshake: nothing more.
                            let Ok(mut tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            if let Ok(mut plain) = TcpStream::connect(backend).await {
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                            }
                        });
                    }
                })
            }),
        );
        TlsFront { addr, _bg: bg }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// An HTTP proxy on `127.0.0.1:0` that records each request's first line. `CONNECT host:port`
/// is tunnelled to the backend routed for `host:port` (502 when there is none); any other
/// request (an absolute-form `GET http://…`) gets 502.
pub struct Proxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    _bg: Background,
}

impl Proxy {
    pub fn start(routes: &[(&str, SocketAddr)]) -> Proxy {
        let routes: HashMap<String, SocketAddr> =
            routes.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let routes = Arc::new(routes);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::clone(&seen);
        let bg = Background::start(
            "proxy",
            listener,
            Box::new(move |listener| {
                Box::pin(async move {
                    loop {
                        let Ok((mut client, _)) = listener.accept().await else {
                            continue;
                        };
                        let routes = Arc::clone(&routes);
                        let recorded = Arc::clone(&recorded);
                        tokio::spawn(async move {
                            let Some(head) = read_head(&mut client).await else {
                                return;
                            };
                            let first = head.lines().next().unwrap_or_default().to_string();
                            recorded.lock().unwrap().push(first.clone());
                            let mut words = first.split_whitespace();
                            let (method, target) = (words.next(), words.next());
                            let backend = match (method, target) {
                                (Some("CONNECT"), Some(t)) => routes.get(t).copied(),
                                _ => None,
                            };
                            let Some(backend) = backend else {
                                let _ = client
                                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                                return;
                            };
                            let Ok(mut upstream) = TcpStream::connect(backend).await else {
                                return;
                            };
                            if client
                                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                                .await
                                .is_ok()
                            {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            }
                        });
                    }
                })
            }),
        );
        Proxy {
            addr,
            seen,
            _bg: bg,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The first line of every request received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The request head, up to the blank line (at most 16 KiB).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}
