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

/// The proxy run by `cmd` (a machine's), its files in `dir`, with `extra` arguments.
fn start_with(
    h: &Harness,
    mut cmd: std::process::Command,
    dir: &std::path::Path,
    extra: &[&str],
) -> Proxy {
    h.write_provider("acme", &format!("api_base_url = \"{}\"\n", h.auth.url()));
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
