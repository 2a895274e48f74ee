//! Headless and remote sign-in (issue #8): the redirect URL pasted on stdin goes through the
//! callback's own validator while the callback keeps listening, the hints name the SSH port
//! forward, stdin is left alone unless it is a terminal or `--paste` says so, and Ctrl-C
//! stops cleanly with the port freed and nothing written.

use std::process::Stdio;
use std::time::Duration;

use crate::support::fake_as::AsConfig;
use crate::support::{browser, query_param, Harness, Running};

fn start(h: &Harness, extra: &[&str]) -> (Running, String) {
    let mut cmd = h.cmd();
    cmd.stdin(Stdio::piped())
        .args([
            "authorize",
            "--provider",
            "acme",
            "--no-browser",
            "--timeout",
            "30",
        ])
        .args(extra);
    let mut running = Running::spawn(&mut cmd);
    let url = running.wait_for_url(&h.auth.authorize_url());
    (running, url)
}

#[test]
fn a_pasted_redirect_url_completes_the_sign_in_and_the_hints_name_the_ssh_forward() {
    let h = Harness::new(AsConfig::jobber());
    let (mut running, url) = start(&h, &["--paste"]);
    // The browser on "another machine": it follows the authorization server's redirect but
    // cannot reach the callback port, so the user copies the address it ends on.
    let location = browser::location_of(&url);
    running.wait_for_line("Waiting up to");
    running.type_line(&location);
    let run = running.finish();
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Got the authorization from the pasted address"),
        "{}",
        run.stderr
    );
    let forward = format!("ssh -L {0}:127.0.0.1:{0} ", h.port);
    assert!(run.stderr.contains(&forward), "{}", run.stderr);
    assert!(
        run.stderr.contains("paste here the address it lands on"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.code_exchanges(), 1);
    assert_eq!(h.doppler.token_writes(), 1);
    assert!(h
        .auth
        .is_live_access_token(&h.secret("ACME_ACCESS_TOKEN").unwrap()));
    let code = query_param(&location, "code").unwrap();
    run.assert_no_leak(&[&code]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", h.port)).is_err(),
        "port still open"
    );
}

#[test]
fn a_wrong_pasted_address_is_refused_and_the_wait_goes_on_until_the_right_one() {
    let h = Harness::new(AsConfig::jobber());
    let (mut running, url) = start(&h, &["--paste"]);
    let location = browser::location_of(&url);
    let state = query_param(&location, "state").unwrap();
    let code = query_param(&location, "code").unwrap();
    let base = location.split('?').next().unwrap().to_string();

    running.type_line(&format!("{base}?code={code}&state=WRONG"));
    running.wait_for_line("state does not match this sign-in");
    running.type_line(&code);
    running.wait_for_line("a bare code cannot be tied to this sign-in");
    running.type_line(&url); // the authorization URL carries our state, but is not the redirect
    running.wait_for_line("not the redirect to /callback");
    assert_eq!(h.auth.code_exchanges(), 0);
    // The callback port still answers meanwhile (the paste does not replace it).
    let probe =
        crate::support::http::get(&format!("{base}?code={code}"), browser::NAVIGATION_HEADERS);
    assert_eq!(probe.status, 400);

    running.type_line(&format!("{base}?state={state}&code={code}"));
    let run = running.finish();
    run.assert_code(0);
    assert_eq!(h.auth.code_exchanges(), 1);
    run.assert_no_leak(&[&code]);
}

#[test]
fn pasted_refusals_count_against_the_cap() {
    let h = Harness::new(AsConfig::jobber());
    let (mut running, url) = start(&h, &["--paste"]);
    let location = browser::location_of(&url);
    let base = location.split('?').next().unwrap().to_string();
    for _ in 0..20 {
        running.type_line(&format!("{base}?code=x&state=WRONG"));
    }
    let run = running.finish();
    run.assert_error(4, "20 callbacks with a wrong state");
    assert_eq!(h.auth.code_exchanges(), 0);
    assert_eq!(h.doppler.token_writes(), 0);
}

#[test]
fn stdin_is_not_read_without_paste_when_it_is_not_a_terminal() {
    let h = Harness::new(AsConfig::jobber());
    let (mut running, url) = start(&h, &[]);
    let location = browser::location_of(&url);
    running.type_line(&location);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(h.auth.code_exchanges(), 0, "stdin was read without --paste");
    let page = browser::deliver(&location);
    assert_eq!(page.status, 200);
    let run = running.finish();
    run.assert_code(0);
    assert!(!run.stderr.contains("pasted address"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--paste"),
        "the hint names --paste:\n{}",
        run.stderr
    );
}

#[test]
fn ctrl_c_while_waiting_exits_130_frees_the_port_and_writes_nothing() {
    let h = Harness::new(AsConfig::jobber());
    let (mut running, _url) = start(&h, &["--paste"]);
    running.wait_for_line("Waiting up to");
    assert!(std::net::TcpStream::connect(("127.0.0.1", h.port)).is_ok());
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(running.pid() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let run = running.finish();
    run.assert_code(130);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", h.port)).is_err(),
        "port still open"
    );
    assert_eq!(h.doppler.token_writes(), 0);
    assert_eq!(h.auth.code_exchanges(), 0);
    // The port can be bound again at once.
    std::net::TcpListener::bind(("127.0.0.1", h.port)).unwrap();
}

#[test]
fn e3_token_never_opens_a_browser_or_starts_a_sign_in_of_any_kind() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider(
        "acme",
        &format!("device_authorization_url = \"{}\"\n", h.auth.device_url()),
    );
    let opened = h.home.path().join("opened");
    let browser = crate::support::script(
        h.home.path(),
        "b.sh",
        &format!("touch '{}'", opened.display()),
    );
    let mut cmd = h.cmd();
    cmd.env("BROWSER", browser.display().to_string())
        .args(["token", "--provider", "acme"]);
    let started = std::time::Instant::now();
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.assert_error(1, "no tokens are stored");
    assert!(started.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!opened.exists(), "a browser was started");
    assert!(h.auth.authorize_requests().is_empty() && h.auth.device_requests().is_empty());
    assert!(!run.stderr.contains("Waiting"), "{}", run.stderr);
}

#[test]
fn e3_a_second_authorize_while_one_waits_exits_4_without_a_browser_or_a_port() {
    let h = Harness::new(AsConfig::jobber());
    let (first, url) = h.start_authorize(20);
    let second = h.run(&[
        "authorize",
        "--provider",
        "acme",
        "--no-browser",
        "--timeout",
        "5",
    ]);
    second.assert_error(4, "already waiting");
    assert!(
        !second.stderr.contains("Open this URL"),
        "{}",
        second.stderr
    );
    assert_eq!(h.auth.authorize_requests().len(), 0);
    // The first one is untouched and still completes.
    let page = crate::support::browser::follow_authorization(&url);
    assert_eq!(page.status, 200);
    first.finish().assert_code(0);
    // Once it has finished, the next sign-in may start.
    h.authorized();
}
