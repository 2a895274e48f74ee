//! Networks (peers' theme G): an extra CA (`--ca-file`, `OAUTH_PKCE_CA_FILE`,
//! `SSL_CERT_FILE`) for TLS endpoints whose CA is in no trust store, and an HTTPS proxy
//! (`CONNECT`) on every call, the refresh path included; loopback never goes through a proxy,
//! `NO_PROXY` is honoured.
//!
//! The fakes speak plain HTTP on 127.0.0.1; [`TlsFront`] puts TLS with the test certificate
//! (`tests/data/tls`) in front of them, and [`Proxy`] tunnels `CONNECT doppler.example:443`
//! and `CONNECT auth.example:443` to those fronts, so no DNS is involved.

use std::net::SocketAddr;

use crate::support::fake_as::AsConfig;
use crate::support::tls::{ca_file, Proxy, TlsFront};
use crate::support::{Harness, Run, Running};

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// One run with `env`, this machine's token cache off: every run must reach Doppler.
fn run_with(h: &Harness, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = h.cmd();
    cmd.env("OAUTH_PKCE_CACHE", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running::spawn(cmd.args(args)).finish()
}

#[test]
fn an_https_doppler_with_a_private_ca_works_only_when_that_ca_is_given() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let front = TlsFront::start(addr(&h.doppler.url()));
    let host = format!("https://localhost:{}", front.port());
    let ca = ca_file();
    let ca = ca.to_str().unwrap();
    let token = ["token", "--provider", "acme"];

    // Without the CA: a certificate error, exit 6, and the hint names the ways to add one.
    let run = run_with(&h, &[("DOPPLER_API_HOST", &host)], &token);
    run.assert_error(6, "could not be reached");
    assert!(
        run.stderr.to_ascii_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--ca-file"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(h.doppler.requests().len(), 0, "nothing got through TLS");

    // With it, from each of the three places.
    let flag = run_with(
        &h,
        &[("DOPPLER_API_HOST", &host)],
        &[&token[..], &["--ca-file", ca]].concat(),
    );
    let own = run_with(
        &h,
        &[("DOPPLER_API_HOST", &host), ("OAUTH_PKCE_CA_FILE", ca)],
        &token,
    );
    let openssl = run_with(
        &h,
        &[("DOPPLER_API_HOST", &host), ("SSL_CERT_FILE", ca)],
        &token,
    );
    for run in [flag, own, openssl] {
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{at}\n"));
    }
    assert_eq!(h.doppler.reads(), 3);

    // A CA file that is not one: a configuration error naming it, before any request.
    let junk = h.home.path().join("junk.pem");
    std::fs::write(&junk, "junk\n").unwrap();
    let run = run_with(
        &h,
        &[
            ("DOPPLER_API_HOST", &host),
            ("OAUTH_PKCE_CA_FILE", junk.to_str().unwrap()),
        ],
        &token,
    );
    run.assert_error(3, "holds no PEM certificate");
    assert!(run.stderr.contains("junk.pem"), "{}", run.stderr);
    assert_eq!(h.doppler.reads(), 3);
}

/// Doppler at `https://doppler.example`, the token endpoint at `https://auth.example/token`,
/// both reached only through the proxy.
struct Proxied {
    h: Harness,
    _fronts: (TlsFront, TlsFront),
    proxy: Proxy,
}

fn proxied() -> Proxied {
    let h = Harness::new(AsConfig::jobber());
    let doppler = TlsFront::start(addr(&h.doppler.url()));
    let auth = TlsFront::start(addr(&h.auth.url()));
    let proxy = Proxy::start(&[
        ("doppler.example:443", doppler.addr),
        ("auth.example:443", auth.addr),
    ]);
    h.write_provider(
        "acme",
        "authorization_url = \"https://auth.example/authorize\"\ntoken_url = \"https://auth.example/token\"\n",
    );
    Proxied {
        h,
        _fronts: (doppler, auth),
        proxy,
    }
}

#[test]
fn https_proxy_carries_every_call_of_a_refresh_and_tls_is_still_checked_through_it() {
    let p = proxied();
    let h = &p.h;
    let (old_at, _) = h.store_grant(60);
    let ca = ca_file();
    let proxy = p.proxy.url();
    let env = [
        ("DOPPLER_API_HOST", "https://doppler.example"),
        ("HTTPS_PROXY", proxy.as_str()),
    ];

    // Through the proxy without the CA: the tunnel opens, TLS refuses the certificate.
    let run = run_with(h, &env, &["token", "--provider", "acme"]);
    run.assert_code(6);
    assert!(
        run.stderr.to_ascii_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
    // (A failed handshake counts as a connection failure, so it was retried.)
    let mut seen = p.proxy.requests();
    seen.dedup();
    assert_eq!(seen, ["CONNECT doppler.example:443 HTTP/1.1"]);
    let failed_attempts = p.proxy.requests().len();

    // With it: read, lease, refresh at the token endpoint, store — all through the proxy.
    let run = run_with(
        h,
        &env,
        &[
            "token",
            "--provider",
            "acme",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
    );
    run.assert_code(0);
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_ne!(new_at, old_at);
    assert_eq!(run.stdout, format!("{new_at}\n"));
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!((h.doppler.reads(), h.doppler.writes()), (1, 2));
    let mut targets = p.proxy.requests().split_off(failed_attempts);
    targets.sort();
    targets.dedup();
    assert_eq!(
        targets,
        [
            "CONNECT auth.example:443 HTTP/1.1",
            "CONNECT doppler.example:443 HTTP/1.1"
        ],
        "only CONNECT tunnels, to both hosts"
    );

    // ALL_PROXY (and the lower-case name) do the same.
    h.store_grant(60);
    let before = p.proxy.requests().len();
    let run = run_with(
        h,
        &[
            ("DOPPLER_API_HOST", "https://doppler.example"),
            ("all_proxy", proxy.as_str()),
            ("OAUTH_PKCE_CA_FILE", ca.to_str().unwrap()),
        ],
        &["refresh", "--provider", "acme"],
    );
    run.assert_code(0);
    assert!(p.proxy.requests().len() > before);
}

#[test]
fn no_proxy_and_loopback_hosts_bypass_the_proxy() {
    let p = proxied();
    let h = &p.h;
    h.store_grant(3600);
    let ca = ca_file();

    // NO_PROXY names doppler.example: no tunnel is asked for; the direct connection then
    // fails (the name does not resolve), which shows the proxy was not used.
    let run = run_with(
        h,
        &[
            ("DOPPLER_API_HOST", "https://doppler.example"),
            ("HTTPS_PROXY", p.proxy.url().as_str()),
            ("NO_PROXY", "corp.example, .doppler.example"),
            ("OAUTH_PKCE_CA_FILE", ca.to_str().unwrap()),
        ],
        &["token", "--provider", "acme"],
    );
    run.assert_error(6, "could not be reached");
    assert!(p.proxy.requests().is_empty(), "{:?}", p.proxy.requests());

    // Loopback endpoints (the harness's plain http Doppler) never go through a proxy, even
    // when every proxy variable is set and NO_PROXY is not.
    let proxy = p.proxy.url();
    let run = run_with(
        h,
        &[
            ("HTTP_PROXY", proxy.as_str()),
            ("HTTPS_PROXY", proxy.as_str()),
            ("ALL_PROXY", proxy.as_str()),
        ],
        &["token", "--provider", "acme"],
    );
    run.assert_code(0);
    assert!(p.proxy.requests().is_empty(), "{:?}", p.proxy.requests());
}

#[test]
fn a_proxy_that_is_not_a_url_is_a_configuration_error_without_its_password() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let run = run_with(
        &h,
        &[(
            "HTTPS_PROXY",
            "http://user:PROXY-PASSWORD-SENTINEL@[not-an-ip",
        )],
        &["token", "--provider", "acme"],
    );
    run.assert_error(3, "HTTPS_PROXY");
    run.assert_no_leak(&["PROXY-PASSWORD-SENTINEL"]);
    assert!(h.doppler.requests().is_empty());
}

#[test]
fn a_run_builds_one_http_client_and_reads_each_ca_file_once() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let ca = ca_file();
    let ca = ca.to_str().unwrap();
    // `status` over every provider, and `exec`, once built a client per use (each reading the
    // CA file again); a run now resolves its settings, and its one client, once.
    for args in [
        &["status", "--check", "-v", "--ca-file", ca][..],
        &[
            "exec",
            "-p",
            "acme",
            "-p",
            "acme",
            "-v",
            "--ca-file",
            ca,
            "--",
            "true",
        ],
    ] {
        let run = h.run(args);
        run.assert_code(0);
        assert_eq!(
            run.stderr
                .matches("HTTP client: trusting extra CA certificates")
                .count(),
            1,
            "{}: {}",
            args.join(" "),
            run.stderr
        );
    }
}
