//! `oauth-pkce proxy` against the fake AS's `/userinfo` as the provider's API: the key is
//! required, the caller's credentials are dropped, the token is injected, a 401 gets one
//! forced refresh and one retry, only the proxy's own paths are forwarded, SIGTERM stops it.

use std::time::Duration;

use crate::support::fake_as::AsConfig;
use crate::support::{http, Harness, Running};

const KEY: &str = "proxy-key-FAKE-0123456789abcdef";

struct Proxy {
    running: Running,
    url: String,
}

fn start(h: &Harness) -> Proxy {
    h.write_provider("acme", &format!("api_base_url = \"{}\"\n", h.auth.url()));
    let key_file = h.home.path().join("proxy.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let ready = h.home.path().join("proxy.ready");
    let _ = std::fs::remove_file(&ready);
    let running = Running::spawn(h.cmd().args([
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
