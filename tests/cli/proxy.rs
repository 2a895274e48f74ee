//! `oauth-pkce proxy` against the fake AS's `/userinfo` as the provider's API: the key is
//! required, the caller's credentials are dropped, the token is injected, a 401 gets one
//! forced refresh and one retry, only the proxy's own paths are forwarded, SIGTERM stops it.

use std::time::Duration;

use crate::support::fake_as::AsConfig;
use crate::support::{http, Harness, Running};

/// The proxy key these tests use (a fake, made up for them).
const KEY: &str = "proxy-key-FAKE-0123456789abcdef";

struct Proxy {
    running: Running,
    url: String,
}

fn start(h: &Harness) -> Proxy {
    start_with(h, h.cmd(), h.home.path(), &[])
}

/// The proxy run by `cmd` (a machine's), its files in `dir`, with `extra` arguments, in front
/// of the fake AS's `/userinfo`.
fn start_with(
    h: &Harness,
    cmd: std::process::Command,
    dir: &std::path::Path,
    extra: &[&str],
) -> Proxy {
    start_for(h, cmd, dir, extra, &h.auth.url())
}

/// The proxy in front of the API at `base`.
fn start_for(
    h: &Harness,
    mut cmd: std::process::Command,
    dir: &std::path::Path,
    extra: &[&str],
    base: &str,
) -> Proxy {
    h.write_provider("acme", &format!("api_base_url = \"{base}\"\n"));
    let key_file = dir.join("proxy.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let ready = dir.join("proxy.ready");
    let _ = std::fs::remove_file(&ready);
    let running = Running::spawn(cmd.args(extra).args([
        "proxy",
        "--provider",
        "acme",
        "--listen",
        "127.0.0.1:0",
        "--key-file",
        key_file.to_str().unwrap(),
        "--ready-file",
        ready.to_str().unwrap(),
    ]));
    let started = std::time::Instant::now();
    let url = loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            if !text.trim().is_empty() {
                break text.trim().to_string();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the proxy never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Proxy { running, url }
}

#[test]
fn the_proxy_injects_the_token_needs_its_key_and_retries_once_after_a_401() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let p = start(&h);
    let api = format!("{}/userinfo", p.url);

    // No key, a wrong key: 401 from the proxy itself, nothing forwarded.
    for headers in [&[][..], &[("X-OAuth-Pkce-Key", "wrong-key-0123456789")][..]] {
        let r = http::get(&api, headers);
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("proxy key"), "{}", r.body);
    }
    assert_eq!(h.auth.userinfo_requests(), 0);

    // The key in its header; the caller's own Authorization is dropped, the token injected.
    let r = http::get(
        &api,
        &[
            ("X-OAuth-Pkce-Key", KEY),
            ("Authorization", "Bearer theirs"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("user-1"), "{}", r.body);
    // The key as the first path segment.
    let r = http::get(&format!("{}/{KEY}/userinfo", p.url), &[]);
    assert_eq!(r.status, 200, "{}", r.body);

    // The API refuses the stored token (revoked there, still unexpired here): one forced
    // refresh, one retry, and the caller sees only the success.
    let before = h.auth.refreshes();
    h.set_secret("ACME_ACCESS_TOKEN", "AT-not-known-to-the-api");
    let p2 = start(&h); // a fresh proxy: its in-memory token is the refused one
    let r = http::get(
        &format!("{}/userinfo", p2.url),
        &[("X-OAuth-Pkce-Key", KEY)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.auth.refreshes(), before + 1);

    // Headers past 16 KiB: 431 from the proxy, nothing forwarded.
    let seen = h.auth.userinfo_requests();
    let big = "x".repeat(17 * 1024);
    let r = http::get(&api, &[("X-OAuth-Pkce-Key", KEY), ("X-Big", &big)]);
    assert_eq!(r.status, 431, "{}", r.body);
    assert!(r.body.contains("16 KiB"), "{}", r.body);
    assert_eq!(h.auth.userinfo_requests(), seen);

    // Only its own paths: an absolute-form request is refused, not forwarded anywhere.
    let addr = p.url.trim_start_matches("http://");
    let raw = http::raw(
        addr,
        format!(
            "GET http://example.invalid/userinfo HTTP/1.1\r\nHost: example.invalid\r\nX-OAuth-Pkce-Key: {KEY}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");

    // SIGTERM: a clean stop, exit 0.
    for proxy in [p, p2] {
        let pid = proxy.running.id() as i32;
        // SAFETY: kill(2) on the child process we spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        proxy.running.finish().assert_code(0);
    }
}

#[test]
fn the_proxy_refuses_a_non_loopback_address_and_a_provider_without_an_api() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let run = h.run(&["proxy", "--provider", "acme", "--listen", "127.0.0.1:0"]);
    run.assert_error(3, "has no `api_base_url`");
    h.write_provider("acme", &format!("api_base_url = \"{}\"\n", h.auth.url()));
    h.run(&["proxy", "--provider", "acme", "--listen", "0.0.0.0:8400"])
        .assert_error(2, "loopback only");
}

/// Two proxies on two machines, the token due: requests through both at once make one
/// refresh at the authorization server (the lease), and both succeed. At -vv nothing a proxy
/// prints, and no answer it gives, holds a token or the key.
#[test]
fn two_proxies_on_two_machines_refresh_once_and_print_no_secret() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(10);
    let other = h.other_machine();
    let a = start_with(&h, h.cmd(), h.home.path(), &["-vv"]);
    let b = start_with(&h, other.cmd(), other.home.path(), &["-vv"]);
    let answers: Vec<http::Response> = std::thread::scope(|s| {
        let calls: Vec<_> = [&a.url, &b.url]
            .into_iter()
            .map(|url| {
                s.spawn(move || http::get(&format!("{url}/userinfo"), &[("X-OAuth-Pkce-Key", KEY)]))
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(h.auth.refreshes(), 1, "one refresh for both machines");
    let mut secrets: Vec<String> = h.auth.minted();
    secrets.push(KEY.to_string());
    secrets.push(crate::support::fake_as::CLIENT_SECRET.to_string());
    for proxy in [a, b] {
        let pid = proxy.running.id() as i32;
        // SAFETY: kill(2) on the child process we spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let run = proxy.running.finish();
        run.assert_code(0);
        assert!(
            run.stderr.contains("DEBUG") || run.stderr.contains("TRACE"),
            "-vv logged"
        );
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(
                !run.stderr.contains(s.as_str()),
                "a secret on stderr: {}",
                run.stderr
            );
        }
    }
    for r in &answers {
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(!r.body.contains(s.as_str()), "{}", r.body);
            assert!(r.headers.iter().all(|(_, v)| !v.contains(s.as_str())));
        }
    }
}

/// A bulk-transfer API (plain HTTP/1.1 on 127.0.0.1:0, one request per connection):
/// `POST /upload` counts the body (chunked or sized) and answers the count, `GET /download`
/// answers [`BULK`] bytes. Each request's `Authorization` is recorded.
struct BulkApi {
    addr: std::net::SocketAddr,
    auths: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// 50 MB: far more than the proxy may hold in memory.
const BULK: usize = 50 * 1024 * 1024;
/// Seconds (and lines) of `/events`.
const EVENTS: usize = 17;

impl BulkApi {
    fn start() -> BulkApi {
        use std::io::{BufRead as _, Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let auths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = auths.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let request = line.clone();
                    let (mut length, mut chunked) = (0usize, false);
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        let header = line.trim_end().to_ascii_lowercase();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(v) = header.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if header.starts_with("transfer-encoding:") && header.contains("chunked") {
                            chunked = true;
                        }
                        if header.starts_with("authorization:") {
                            seen.lock()
                                .unwrap()
                                .push(line.trim_end()[14..].trim().to_string());
                        }
                    }
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut count = 0usize;
                    let mut drain = |n: usize, reader: &mut std::io::BufReader<_>| {
                        let mut left = n;
                        while left > 0 {
                            let got = reader.read(&mut buf[..left.min(64 * 1024)]).unwrap();
                            assert!(got > 0, "the body ended early");
                            left -= got;
                        }
                        n
                    };
                    if chunked {
                        loop {
                            line.clear();
                            reader.read_line(&mut line).unwrap();
                            let size = usize::from_str_radix(line.trim(), 16).unwrap();
                            if size == 0 {
                                line.clear();
                                reader.read_line(&mut line).unwrap();
                                break;
                            }
                            count += drain(size, &mut reader);
                            line.clear();
                            reader.read_line(&mut line).unwrap();
                        }
                    } else {
                        count += drain(length, &mut reader);
                    }
                    let mut out = stream;
                    if request.starts_with("GET /events") {
                        // A slow stream: one line a second, for longer than any one request
                        // of oauth-pkce's own may take (15 s).
                        let line = b"data: tick\n";
                        write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            line.len() * EVENTS
                        )
                        .unwrap();
                        for _ in 0..EVENTS {
                            if out.write_all(line).and_then(|()| out.flush()).is_err() {
                                return;
                            }
                            std::thread::sleep(std::time::Duration::from_secs(1));
                        }
                    } else if request.starts_with("GET /download") {
                        write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BULK}\r\nConnection: close\r\n\r\n"
                        )
                        .unwrap();
                        let block = vec![b'd'; 64 * 1024];
                        for _ in 0..BULK / block.len() {
                            if out.write_all(&block).is_err() {
                                return;
                            }
                        }
                    } else {
                        let body = count.to_string();
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                });
            }
        });
        BulkApi { addr, auths }
    }
}

/// The peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn the_proxy_streams_50_mb_each_way_to_a_tls_api_without_holding_it() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let api = BulkApi::start();
    // The API behind TLS whose CA only --ca-file knows, as a company's API gateway might be.
    let front = crate::support::tls::TlsFront::start(api.addr);
    let ca = crate::support::tls::ca_file();
    let base = format!("https://localhost:{}", front.port());
    let p = start_for(
        &h,
        h.cmd(),
        h.home.path(),
        &["-vv", "--ca-file", ca.to_str().unwrap()],
        &base,
    );
    let before = peak_rss_kb(p.running.id());

    let upload = vec![b'u'; BULK];
    let r = http::request(
        "POST",
        &format!("{}/upload", p.url),
        &[
            ("X-OAuth-Pkce-Key", KEY),
            ("Content-Type", "application/octet-stream"),
        ],
        &upload,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, BULK.to_string(), "every byte arrived");
    drop(upload);
    let r = http::get(&format!("{}/download", p.url), &[("X-OAuth-Pkce-Key", KEY)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BULK, "every byte came back");

    // Streamed both ways: the proxy never held a body (50 MB would show in its peak).
    let peak = peak_rss_kb(p.running.id());
    assert!(
        peak < before + 20 * 1024,
        "peak RSS {peak} kB (was {before} kB before 100 MB went through)"
    );
    // The bearer the API saw is the stored token, on each request.
    assert_eq!(*api.auths.lock().unwrap(), vec![format!("Bearer {at}"); 2]);
    for (_, v) in &r.headers {
        assert!(!v.contains(&at));
    }
    let pid = p.running.id() as i32;
    // SAFETY: kill(2) on the child process we spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let run = p.running.finish();
    run.assert_code(0);
    run.assert_no_leak(&[&at, KEY]);
}

#[test]
fn a_stream_slower_than_any_one_request_of_oauth_pkce_is_not_cut_off() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let api = BulkApi::start();
    let base = format!("http://{}", api.addr);
    let p = start_for(&h, h.cmd(), h.home.path(), &[], &base);
    let r = http::get(&format!("{}/events", p.url), &[("X-OAuth-Pkce-Key", KEY)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("data: tick").count(), EVENTS, "{}", r.body);
    let pid = p.running.id() as i32;
    // SAFETY: kill(2) on the child process we spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    p.running.finish().assert_code(0);
}

#[test]
fn the_proxy_holds_at_most_256_connections_and_takes_the_next_when_one_closes() {
    use std::io::{Read as _, Write as _};
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let p = start(&h);
    let addr = p.url.trim_start_matches("http://").to_string();
    // 256 connections that send nothing, as a careless or hostile local client might keep.
    let mut idle: Vec<std::net::TcpStream> = (0..256)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut next = std::net::TcpStream::connect(&addr).unwrap(); // waits in the backlog
    write!(
        next,
        "GET /userinfo HTTP/1.1\r\nHost: {addr}\r\nX-OAuth-Pkce-Key: {KEY}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    next.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut first = [0u8; 1];
    assert!(
        next.read(&mut first).is_err(),
        "the 257th connection was served while 256 were open"
    );
    idle.pop(); // one closes: the waiting one is taken
    next.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    next.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(idle);
    let pid = p.running.id() as i32;
    // SAFETY: kill(2) on the child process we spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    p.running.finish().assert_code(0);
}
