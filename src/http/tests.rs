//! The client's policy: retries, backoff, `Retry-After`, CA files and proxies, the lazy build.
use super::*;

fn response(headers: &[(&str, &str)]) -> Response {
    let mut builder = axum::http::Response::builder().status(429);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    Response::from(builder.body(Vec::<u8>::new()).unwrap())
}

#[test]
fn the_wait_a_server_asks_for_is_read_on_its_own_clock() {
    let date = "Thu, 03 Dec 2026 09:00:00 GMT";
    assert_eq!(
        server_time(&response(&[("date", date)])),
        Some(1_796_288_400)
    );
    // Retry-After first.
    let r = response(&[("retry-after", "7"), ("x-ratelimit-remaining", "0")]);
    assert_eq!(parse_retry_after(&r), Some(Duration::from_secs(7)));
    // Else X-RateLimit-Reset, against the server's Date, not this machine's clock.
    let r = response(&[
        ("date", date),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1796288412"),
    ]);
    assert_eq!(parse_retry_after(&r), Some(Duration::from_secs(12)));
    // Requests left, or no Date to measure against: no hint.
    let r = response(&[
        ("date", date),
        ("x-ratelimit-remaining", "3"),
        ("x-ratelimit-reset", "1796288412"),
    ]);
    assert_eq!(parse_retry_after(&r), None);
    let r = response(&[
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "1796288412"),
    ]);
    assert_eq!(parse_retry_after(&r), None);
}

#[test]
fn loopback_hosts() {
    for (u, yes) in [
        ("http://localhost:3000/x", true),
        ("http://127.0.0.1/x", true),
        ("http://127.9.9.9/x", true),
        ("http://[::1]:8/x", true),
        ("http://localhost.evil.example/x", false),
        ("http://10.0.0.1/x", false),
        ("https://example.com/x", false),
    ] {
        assert_eq!(is_loopback_url(&url::Url::parse(u).unwrap()), yes, "{u}");
    }
}

#[test]
fn network_settings_from_the_environment() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let net = NetworkSettings::from_vars(vars(&[
        ("https_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://user:SECRETPW@proxy.example:3128"),
        ("http_proxy", "http://plain:2"),
        ("NO_PROXY", ""),
        ("no_proxy", "corp.example"),
        ("SSL_CERT_FILE", "/etc/ca.pem"),
        ("OAUTH_PKCE_CA_FILE", "/x/extra.pem"),
    ]));
    assert_eq!(
        net.https_proxy.as_deref(),
        Some("http://user:SECRETPW@proxy.example:3128")
    );
    assert_eq!(net.http_proxy.as_deref(), Some("http://plain:2"));
    assert_eq!(
        net.no_proxy.as_deref(),
        Some("corp.example"),
        "empty = unset"
    );
    assert_eq!(
        net.ca_files,
        [PathBuf::from("/etc/ca.pem"), PathBuf::from("/x/extra.pem")]
    );
    // Shown without credentials, in Debug too.
    assert_eq!(
        net.proxy_for(true).as_deref(),
        Some("http://proxy.example:3128/")
    );
    assert!(!format!("{net:?}").contains("SECRETPW"));
    assert_eq!(without_credentials("u:p@host:8080"), "http://host:8080/");
    // Under CGI, a lower-case http_proxy may come from a `Proxy:` request header.
    let cgi = NetworkSettings::from_vars(vars(&[
        ("REQUEST_METHOD", "GET"),
        ("http_proxy", "http://evil:1"),
    ]));
    assert_eq!(cgi.http_proxy, None);
    let without_files = NetworkSettings {
        ca_files: Vec::new(),
        ..net
    };
    assert!(Http::with_network(&without_files).is_ok());
}

#[test]
fn unusable_ca_files_and_proxies_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for (net, needle) in [
        (
            NetworkSettings {
                ca_files: vec![missing],
                ..Default::default()
            },
            "cannot read the CA file",
        ),
        (
            NetworkSettings {
                ca_files: vec![junk],
                ..Default::default()
            },
            "holds no PEM certificate",
        ),
        (
            NetworkSettings {
                https_proxy: Some("http://u:SECRETPW@[bad".into()),
                ..Default::default()
            },
            "HTTPS_PROXY",
        ),
    ] {
        let e = Http::with_network(&net).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(!e.to_string().contains("SECRETPW"), "{e}");
    }
}

#[test]
fn the_tls_client_is_built_at_the_first_request_and_a_bad_bundle_is_said_then() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let http = Http::with_network(&NetworkSettings {
        ca_files: vec![broken],
        ..Default::default()
    })
    .expect("looks like a bundle: checked when it is used");
    assert!(
        http.client.get().is_none(),
        "nothing built before a request"
    );
    let e = http.client().unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    let good = Http::with_network(&NetworkSettings::default()).unwrap();
    let first: *const reqwest::Client = good.client().unwrap();
    let clone = good.clone();
    assert!(
        std::ptr::eq(first, clone.client().unwrap()),
        "built once, shared by clones"
    );
}

#[test]
fn backoff_grows_and_honours_retry_after_within_budget() {
    let http = Http::with_network(&NetworkSettings::default()).unwrap();
    let d1 = http.backoff(1, None);
    let d3 = http.backoff(3, None);
    assert!(d1 >= Duration::from_millis(400) && d1 <= Duration::from_millis(600));
    assert!(d3 >= Duration::from_millis(1600) && d3 <= Duration::from_millis(2400));
    assert_eq!(
        http.backoff(1, Some(Duration::from_secs(2))),
        Duration::from_secs(2)
    );
    assert_eq!(
        http.backoff(1, Some(Duration::from_secs(999))),
        RETRY_BUDGET
    );
}
