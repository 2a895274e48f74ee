//! The callback server under attack (RFC 8252 / RFC 9700 items of reference/security.md): each
//! test sends what an attacker on this machine or in the browser could, checks the answer, and
//! then proves the flow was not consumed by finishing it with the genuine callback.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::support::fake_as::AsConfig;
use crate::support::{browser, http, query_param, Harness, Run, Running};

/// A flow waiting for its callback, with the genuine callback URL in hand.
struct Pending {
    running: Running,
    location: String,
    state: String,
    port: u16,
}

fn start(h: &Harness) -> Pending {
    let mut running = Running::spawn(h.cmd().args([
        "authorize",
        "--provider",
        "acme",
        "--no-browser",
        "--timeout",
        "30",
        "-vv",
    ]));
    let url = running.wait_for_url(&h.auth.authorize_url());
    let location = browser::location_of(&url);
    let state = query_param(&location, "state").unwrap();
    let port = url::Url::parse(&location).unwrap().port().unwrap();
    Pending {
        running,
        location,
        state,
        port,
    }
}

impl Pending {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }
    /// The Host the genuine callback carries.
    fn host(&self) -> String {
        let u = url::Url::parse(&self.location).unwrap();
        format!("{}:{}", u.host_str().unwrap(), self.port)
    }
    fn finish(self) -> Run {
        let page = browser::deliver(&self.location);
        assert_eq!(page.status, 200, "{}", page.body);
        let run = self.running.finish();
        run.assert_code(0);
        run
    }
}

fn raw_get(port: u16, target: &str, host: &str) -> String {
    http::raw(
        &format!("127.0.0.1:{port}"),
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn status_of(raw: &str) -> u16 {
    raw.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn c5_wrong_host_headers_are_refused_before_the_state_is_looked_at() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let target = p
        .location
        .trim_start_matches(&format!("http://127.0.0.1:{}", p.port))
        .to_string();
    for host in [
        format!("evil.example:{}", p.port),
        "127.0.0.1".to_string(),
        format!("127.0.0.2:{}", p.port),
        format!("localhost:{}", p.port),
    ] {
        let resp = raw_get(p.port, &target, &host);
        assert_eq!(status_of(&resp), 421, "Host {host}: {resp}");
    }
    let two_hosts = http::raw(
        &format!("127.0.0.1:{}", p.port),
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\nHost: 127.0.0.1:{0}\r\nConnection: close\r\n\r\n", p.port).as_bytes(),
    );
    assert!(matches!(status_of(&two_hosts), 400 | 421), "{two_hosts}");
    assert_eq!(h.auth.code_exchanges(), 0);
    p.finish();
}

#[test]
fn c6_subresource_and_cross_origin_requests_cannot_deliver_or_abort_the_flow() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let img = http::get(
        &p.location,
        &[("Sec-Fetch-Dest", "image"), ("Sec-Fetch-Mode", "no-cors")],
    );
    assert_eq!(img.status, 403);
    let fetch = http::get(
        &format!("{}?error=access_denied&state={}", p.base(), p.state),
        &[
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Mode", "cors"),
            ("Sec-Fetch-Dest", "empty"),
        ],
    );
    assert_eq!(fetch.status, 403);
    assert!(fetch.header("access-control-allow-origin").is_none());
    assert_eq!(h.auth.code_exchanges(), 0);
    p.finish();
}

#[test]
fn c7_only_get_on_the_exact_path() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    for path in [
        "/",
        "/callback/",
        "/CALLBACK",
        "/callback%2F",
        "//callback",
        "/favicon.ico",
    ] {
        let resp = raw_get(
            p.port,
            &format!("{path}?code=x&state={}", p.state),
            &format!("127.0.0.1:{}", p.port),
        );
        assert_eq!(status_of(&resp), 404, "{path}: {resp}");
        assert!(!resp.to_ascii_lowercase().contains("\r\nlocation:"));
    }
    for method in ["POST", "PUT", "DELETE"] {
        let resp = http::request(
            method,
            &format!("{}?code=x&state={}", p.base(), p.state),
            &[],
            "",
        );
        assert_eq!(resp.status, 405, "{method}");
        assert_eq!(resp.header("allow"), Some("GET"));
    }
    assert_eq!(h.auth.code_exchanges(), 0);
    p.finish();
}

#[test]
fn c8_idle_and_oversized_connections_do_not_block_the_real_callback() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let idle: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap())
        .collect();
    let mut big = std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    let _ = big.write_all(
        format!(
            "GET /callback HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Big: {}\r\n\r\n",
            p.port,
            "a".repeat(64 * 1024)
        )
        .as_bytes(),
    );
    let started = Instant::now();
    p.finish();
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
}

#[test]
fn c10_a_kept_alive_connection_does_not_delay_the_exit_and_the_port_closes() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let port = p.port;
    // A browser pre-connect that never sends anything.
    let _lingering = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    p.finish();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        started.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open"
    );
}

#[test]
fn c4_the_callback_port_cannot_be_shared_even_with_so_reuseport() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    // An attacker socket asking for port sharing: Linux allows it only if the listener also
    // set SO_REUSEPORT, which would let the attacker receive the redirect.
    let attacker = tokio::net::TcpSocket::new_v4().unwrap();
    attacker.set_reuseaddr(true).unwrap();
    attacker.set_reuseport(true).unwrap();
    let err = attacker.bind(([127, 0, 0, 1], p.port).into()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    p.finish();
}

#[test]
fn d2_d6_d7_bad_callbacks_are_refused_without_consuming_the_flow() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let code = query_param(&p.location, "code").unwrap();
    let base = p.base();
    for bad in [
        format!("{base}?code={code}&code=other&state={}", p.state),
        format!("{base}?code={code}&state={0}&state={0}", p.state),
        format!("{base}?access_token=AT&token_type=bearer&state={}", p.state),
        format!("{base}?code={code}&state={}%00", p.state),
        format!("{base}?code={code}&state={}", p.state.to_uppercase()),
        format!("{base}?code={code}&state="),
    ] {
        assert_eq!(browser::deliver(&bad).status, 400, "{bad}");
    }
    assert_eq!(h.auth.code_exchanges(), 0);
    let run = p.finish();
    assert_eq!(h.auth.code_exchanges(), 1);
    // D10: the callback's code and state never reach the logs, even at -vv.
    assert!(!run.stderr.contains(&code), "{}", run.stderr);
}

#[test]
fn d2_too_many_wrong_callbacks_end_the_flow_with_exit_4() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    for i in 0..20 {
        browser::deliver(&format!("{}?code=x&state=wrong{i}", p.base()));
    }
    let run = p.running.finish();
    run.assert_error(4, "wrong state");
    assert_eq!(h.auth.code_exchanges(), 0);
    assert_eq!(h.doppler.token_writes(), 0);
}

#[test]
fn d5_a_valid_state_without_a_usable_code_fails_without_a_token_request() {
    for query in ["", "&code=", "&code=%0D%0Aevil"] {
        let h = Harness::new(AsConfig::jobber());
        let p = start(&h);
        let resp = browser::deliver(&format!("{}?state={}{query}", p.base(), p.state));
        assert_eq!(resp.status, 400, "{query}");
        p.running.finish().assert_code(4);
        assert_eq!(h.auth.code_exchanges(), 0);
    }
}

#[test]
fn d4_every_page_carries_the_locked_down_headers_and_reflects_nothing() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let probe = "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E";
    let pages = [
        http::get(&format!("{}?state=wrong&foo={probe}", p.base()), &[]),
        http::get(&format!("http://127.0.0.1:{}/{probe}", p.port), &[]),
        http::request("POST", &p.base(), &[], ""),
        http::get(&p.base(), &[("Host", "evil.example")]),
    ];
    for page in &pages {
        for header in [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
            "cache-control",
        ] {
            assert!(
                page.header(header).is_some(),
                "{header} missing on {}",
                page.status
            );
        }
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert!(
            !page.body.contains("<img") && !page.body.contains("onerror"),
            "{}",
            page.body
        );
        assert!(!page.body.contains(&p.state));
    }
    p.finish();
}

#[test]
fn c11_authorize_again_right_away_gets_the_same_port() {
    // At exit the callback server cuts the connections a browser keeps open (pre-connects,
    // keep-alive), so its port is left with connections in TIME_WAIT for a minute. A second
    // `authorize` right away (a retry after a denial, say) must still bind that port:
    // providers that match redirect URIs exactly accept no other (found by the real_as tests,
    // where Chromium keeps connections open).
    let h = Harness::new(AsConfig::jobber());
    for round in 1..=2 {
        let p = start(&h);
        assert_eq!(p.port, h.port, "round {round}");
        let _lingering = std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        let run = p.finish();
        assert!(
            !run.stderr.contains("busy"),
            "round {round}: {}",
            run.stderr
        );
    }
}

#[test]
fn d8_an_iss_naming_another_server_is_refused_and_a_required_iss_must_be_there() {
    let h = Harness::new(AsConfig::jobber());
    let issuer = "https://honest.as.example";
    h.write_provider(
        "acme",
        &format!("issuer = \"{issuer}\"\nrequire_iss = true\n"),
    );
    let p = start(&h);
    let with_iss = |iss: &str| format!("{}&iss={}", p.location, iss);
    for bad in [
        "https%3A%2F%2Fevil.example",
        "https%3A%2F%2Fhonest.as.example%2F",
    ] {
        assert_eq!(browser::deliver(&with_iss(bad)).status, 400, "{bad}");
    }
    // Without iss (the fake does not send one) a required iss is missing.
    assert_eq!(browser::deliver(&p.location).status, 400);
    // An error "from" another server does not end the flow either.
    let forged = format!(
        "{}?error=access_denied&state={}&iss=https%3A%2F%2Fevil.example",
        p.base(),
        p.state
    );
    assert_eq!(browser::deliver(&forged).status, 400);
    assert_eq!(h.auth.code_exchanges(), 0);
    let page = browser::deliver(&with_iss("https%3A%2F%2Fhonest.as.example"));
    assert_eq!(page.status, 200, "{}", page.body);
    p.running.finish().assert_code(0);
    assert_eq!(h.auth.code_exchanges(), 1);
}

#[test]
fn b3_d1_two_genuine_callbacks_at_once_make_exactly_one_exchange() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    // Either may win; the loser is refused or finds the server gone (status 0), so neither
    // thread may panic on a refused connection.
    let send = |url: String| {
        std::thread::spawn(move || {
            http::try_request("GET", &url, &[], "")
                .map(|r| r.status)
                .unwrap_or(0)
        })
    };
    let (ta, tb) = (send(p.location.clone()), send(p.location.clone()));
    let statuses = [ta.join().unwrap(), tb.join().unwrap()];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "exactly one callback is accepted: {statuses:?}"
    );
    p.running.finish().assert_code(0);
    assert_eq!(h.auth.code_exchanges(), 1, "{statuses:?}");
    // Replaying the callback afterwards finds the port closed.
    assert!(std::net::TcpStream::connect(("127.0.0.1", p.port)).is_err());
}

/// Starts `script` in bash as another local user (nobody, uid 65534), its stdout piped; `None`
/// (and a line saying so) where this process cannot switch users (it is not root).
fn as_other_user(script: &str) -> Option<std::process::Child> {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root {
        eprintln!("SKIPPED (needs root to run a second uid with setpriv): another user's callback");
        return None;
    }
    let child = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-c",
            script,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("setpriv runs (util-linux)");
    Some(child)
}

/// Red team R4 and R5: another local user who read the `state` (from the browser opener's
/// argv) delivers their own code: the connection is refused before anything is read, the
/// terminal says so, and the genuine callback still gets through — also while that user
/// holds 8 idle connections to the port.
#[test]
fn r4_r5_another_local_user_s_connections_are_refused_and_the_genuine_callback_gets_through() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let host = p.host();
    let forged = format!("/callback?code=ATTACKER-CODE&state={}", p.state);
    let deliver = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {forged} HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n' >&3 && cat <&3",
        port = p.port
    );
    let Some(attacker) = as_other_user(&deliver) else {
        p.finish();
        return;
    };
    let answer = attacker.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&answer.stdout);
    assert!(
        !answer.contains("HTTP/1.1"),
        "another user got an answer: {answer}"
    );

    let hold = format!(
        "for i in 1 2 3 4 5 6 7 8; do exec {{fd}}<>/dev/tcp/127.0.0.1/{}; done; sleep 20",
        p.port
    );
    let mut holder = as_other_user(&hold).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let run = p.finish();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        run.stderr
            .contains("refused a connection to the callback from another local user (uid 65534)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        h.auth.code_exchanges(),
        1,
        "only the genuine code was exchanged"
    );
    assert!(!h.secret("ACME_ACCESS_TOKEN").unwrap_or_default().is_empty());
}

/// A callback refused for its `state` is said on the terminal, and the flow goes on.
#[test]
fn a_refused_callback_is_said_on_the_terminal() {
    let h = Harness::new(AsConfig::jobber());
    let p = start(&h);
    let raw = raw_get(p.port, "/callback?code=x&state=not-the-state", &p.host());
    assert_eq!(status_of(&raw), 400, "{raw}");
    let run = p.finish();
    assert!(
        run.stderr.contains("refused a callback: "),
        "{}",
        run.stderr
    );
}
