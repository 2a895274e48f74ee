//! `doctor`: every check with its outcome and next step, against the fakes; nothing opened,
//! nothing changed, no secret shown.

use std::process::Command;

use serde_json::Value;

use crate::support::fake_as::{AsConfig, CLIENT_SECRET};
use crate::support::{script, Harness, Run, Running, RO_TOKEN};

/// `doctor --json` with `cmd`'s environment; returns the run and its checks.
fn doctor(mut cmd: Command, extra: &[&str]) -> (Run, Vec<Value>) {
    let run = Running::spawn(cmd.args(["doctor", "--json"]).args(extra)).finish();
    let checks: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr));
    (run, checks.as_array().unwrap().clone())
}

/// The check named `name` (for `provider`, when given).
fn check<'a>(checks: &'a [Value], name: &str, provider: Option<&str>) -> &'a Value {
    checks
        .iter()
        .find(|c| {
            c["check"] == name && c["provider"].as_str() == provider.or(c["provider"].as_str())
        })
        .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))
}

fn status<'a>(checks: &'a [Value], name: &str) -> &'a str {
    check(checks, name, None)["status"].as_str().unwrap()
}

/// A `$BROWSER` that would leave a mark if it were ever run.
fn browser(h: &Harness) -> (String, std::path::PathBuf) {
    let marker = h.home.path().join("browser-ran");
    let path = script(
        h.home.path(),
        "fake-browser",
        &format!("touch {}", marker.display()),
    );
    (path.display().to_string(), marker)
}

#[test]
fn a_healthy_setup_passes_every_check_with_one_read_and_one_no_op_write() {
    let h = Harness::new(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);
    let lease_before = h.secret("ACME_REFRESH_LEASE");
    let (browser, marker) = browser(&h);
    let mut cmd = h.cmd();
    cmd.env("BROWSER", &browser);
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    run.assert_code(0);
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "network",
            "doppler token",
            "doppler read",
            "clock",
            "doppler write",
            "browser",
            "state dir",
            "client credentials",
            "callback ports",
            "redirect URI",
            "stored token"
        ]
    );
    for c in &checks {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    let token = &check(&checks, "doppler token", None)["detail"];
    assert!(
        token
            .as_str()
            .unwrap()
            .contains("from DOPPLER_TOKEN: a service token"),
        "{token}"
    );
    let redirect = check(&checks, "redirect URI", Some("acme"))["detail"]
        .as_str()
        .unwrap();
    assert!(
        redirect.contains(&format!("http://127.0.0.1:{}/callback", h.port)),
        "{redirect}"
    );
    assert!(run.stderr.contains("All checks passed."), "{}", run.stderr);
    // One read, one write that changes nothing, nothing else anywhere.
    assert_eq!((h.doppler.reads(), h.doppler.writes()), (1, 1));
    assert_eq!(h.secret("ACME_REFRESH_LEASE"), lease_before);
    assert!(h.auth.token_requests().is_empty() && h.auth.revoke_requests().is_empty());
    assert!(!marker.exists(), "no browser was started");
    run.assert_no_leak(&[&at, &rt, CLIENT_SECRET, &h.token]);

    // The text form: one line per check, what was found wrapped under it, within 80
    // columns; words, not marks, when stdout is not a terminal.
    let mut cmd = h.cmd();
    cmd.env("BROWSER", &browser).env("COLUMNS", "80");
    let run = Running::spawn(cmd.args(["doctor", "-p", "acme"])).finish();
    run.assert_code(0);
    assert!(
        run.stdout.lines().any(|l| l == "ok    acme: doppler write"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('✓'), "{}", run.stdout);
    assert!(
        run.stdout.contains("acme: callback ports"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_clock_far_from_doppler_s_is_a_warning_with_the_fix() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let mut cmd = h.cmd();
    cmd.env("OAUTH_PKCE_TEST_CLOCK_OFFSET", "-300");
    let (_, checks) = doctor(cmd, &["--provider", "acme"]);
    let clock = check(&checks, "clock", None);
    assert_eq!(clock["status"], "warn", "{clock:#}");
    let detail = clock["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("300 s behind Doppler's")
            || detail.starts_with("301 s behind Doppler's"),
        "{detail}"
    );
    assert!(clock["next"]
        .as_str()
        .unwrap()
        .contains("timedatectl set-ntp true"));
}

#[test]
fn a_cached_token_readable_by_other_users_fails_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    let (_, checks) = doctor(h.cmd(), &["--provider", "acme"]);
    assert_eq!(
        status(&checks, "state dir"),
        "pass",
        "{:#}",
        check(&checks, "state dir", None)
    );
    let cache = h.state_dir().join("cache");
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, checks) = doctor(h.cmd(), &["--provider", "acme"]);
    let c = check(&checks, "state dir", None);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["detail"].as_str().unwrap().contains("(644)"), "{c:#}");
    assert!(c["next"].as_str().unwrap().starts_with("chmod -R go-rwx "));
}

#[test]
fn a_read_only_token_is_reported_as_such_and_nothing_is_written() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let (browser, _) = browser(&h);
    let mut cmd = h.cmd();
    cmd.env("DOPPLER_TOKEN", RO_TOKEN).env("BROWSER", &browser);
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    let write = check(&checks, "doppler write", Some("acme"));
    assert_eq!(write["status"], "warn", "{write:#}");
    assert!(
        write["detail"].as_str().unwrap().contains("read-only"),
        "{write:#}"
    );
    assert!(
        write["next"].as_str().unwrap().contains("read/write"),
        "{write:#}"
    );
    run.assert_code(0);
    assert!(
        run.stderr.contains("0 failed, 1 with warnings"),
        "{}",
        run.stderr
    );
    run.assert_no_leak(&[RO_TOKEN]);
}

#[test]
fn a_missing_client_id_or_no_tokens_fail_with_the_next_step() {
    let h = Harness::new(AsConfig::jobber());
    h.set_secret("ACME_CLIENT_ID", "");
    let (run, checks) = doctor(h.cmd(), &["--provider", "acme"]);
    run.assert_code(1);
    let creds = check(&checks, "client credentials", Some("acme"));
    assert_eq!(creds["status"], "fail");
    assert!(
        creds["next"]
            .as_str()
            .unwrap()
            .contains("doppler secrets set ACME_CLIENT_ID"),
        "{creds:#}"
    );
    let stored = check(&checks, "stored token", Some("acme"));
    assert_eq!(stored["status"], "fail");
    assert!(
        stored["next"]
            .as_str()
            .unwrap()
            .contains("oauth-pkce authorize --provider acme"),
        "{stored:#}"
    );
    // The client id from the environment counts (SPEC's fallback), and says so.
    let mut cmd = h.cmd();
    cmd.env("ACME_CLIENT_ID", "from-env");
    let (_, checks) = doctor(cmd, &["--provider", "acme"]);
    let creds = check(&checks, "client credentials", Some("acme"));
    assert_eq!(creds["status"], "pass");
    assert!(
        creds["detail"]
            .as_str()
            .unwrap()
            .contains("ACME_CLIENT_ID in the environment"),
        "{creds:#}"
    );
}

#[test]
fn doppler_problems_fail_and_skip_what_depends_on_them() {
    let h = Harness::new(AsConfig::jobber());
    // No token at all.
    let mut cmd = h.cmd();
    cmd.env_remove("DOPPLER_TOKEN");
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    run.assert_code(1);
    assert_eq!(status(&checks, "doppler token"), "fail");
    assert!(check(&checks, "doppler token", None)["next"]
        .as_str()
        .unwrap()
        .contains("DOPPLER_TOKEN"));
    assert_eq!(status(&checks, "doppler read"), "skip");
    assert_eq!(status(&checks, "doppler write"), "skip");
    // The checks that need no Doppler still run.
    assert_eq!(
        check(&checks, "callback ports", Some("acme"))["status"],
        "pass"
    );

    // A token Doppler refuses (a fake: no Doppler knows it).
    let mut cmd = h.cmd();
    cmd.env("DOPPLER_TOKEN", "dp.st.dev.REVOKED-TOKEN-SENTINEL");
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    run.assert_code(1);
    let read = check(&checks, "doppler read", None);
    assert_eq!(read["status"], "fail");
    assert!(read["detail"].as_str().unwrap().contains("401"), "{read:#}");
    assert!(
        read["next"]
            .as_str()
            .unwrap()
            .contains("invalid or revoked"),
        "{read:#}"
    );
    run.assert_no_leak(&["dp.st.dev.REVOKED-TOKEN-SENTINEL"]);
}

#[test]
fn busy_callback_ports_are_named() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let first = std::net::TcpListener::bind(("127.0.0.1", h.port)).unwrap();
    let (_, checks) = doctor(h.cmd(), &["--provider", "acme"]);
    let ports = check(&checks, "callback ports", Some("acme"));
    assert_eq!(ports["status"], "warn", "{ports:#}");
    let next_port = h.port + 1;
    assert!(
        ports["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("would listen on {next_port}")),
        "{ports:#}"
    );
    assert!(
        ports["next"]
            .as_str()
            .unwrap()
            .contains(&format!("http://127.0.0.1:{next_port}/callback")),
        "{ports:#}"
    );
    let _rest: Vec<_> = (1..3)
        .map(|i| std::net::TcpListener::bind(("127.0.0.1", h.port + i)).unwrap())
        .collect();
    let (run, checks) = doctor(h.cmd(), &["--provider", "acme"]);
    run.assert_code(1);
    assert_eq!(
        check(&checks, "callback ports", Some("acme"))["status"],
        "fail"
    );
    drop(first);
}

#[test]
fn the_browser_check_looks_for_an_opener_without_starting_one() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let mut cmd = h.cmd();
    cmd.env("BROWSER", "no-such-browser-5c1e --new-window");
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    run.assert_code(1);
    let b = check(&checks, "browser", None);
    assert_eq!(b["status"], "fail");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-browser-5c1e"),
        "{b:#}"
    );

    // No BROWSER and no opener on PATH: a warning (headless machines print the URL).
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = h.cmd();
    cmd.env("PATH", empty.path());
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    run.assert_code(0);
    let b = check(&checks, "browser", None);
    assert_eq!(b["status"], "warn", "{b:#}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("no browser opener found"),
        "{b:#}"
    );
}

#[test]
fn without_a_provider_it_covers_every_provider_with_anything_stored() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider("other", "");
    h.store_grant(3600);
    let (run, checks) = doctor(h.cmd(), &[]);
    run.assert_code(0);
    let providers: Vec<&str> = checks
        .iter()
        .filter_map(|c| c["provider"].as_str())
        .collect();
    assert!(
        providers.contains(&"acme") && !providers.contains(&"other"),
        "{providers:?}"
    );

    // Nothing stored anywhere: a warning that says how to check one provider.
    h.set_secret("ACME_CLIENT_ID", "");
    for name in ["ACME_ACCESS_TOKEN", "ACME_REFRESH_TOKEN"] {
        h.set_secret(name, "");
    }
    let (run, checks) = doctor(h.cmd(), &[]);
    run.assert_code(0);
    assert_eq!(status(&checks, "providers"), "warn");
    assert_eq!(status(&checks, "doppler write"), "skip");

    // An unknown provider is a configuration error before any check.
    let run = h.run(&["doctor", "--provider", "nope"]);
    run.assert_error(3, "unknown provider");
}

#[test]
fn proxy_and_ca_settings_are_shown_without_credentials_and_a_bad_ca_file_fails() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let mut cmd = h.cmd();
    cmd.env(
        "HTTPS_PROXY",
        "http://user:PROXY-PASSWORD-SENTINEL@127.0.0.1:9",
    )
    .env("NO_PROXY", "corp.example");
    let (run, checks) = doctor(cmd, &["--provider", "acme"]);
    run.assert_code(0);
    let net = check(&checks, "network", None)["detail"].as_str().unwrap();
    assert!(
        net.contains("http://127.0.0.1:9/") && net.contains("corp.example"),
        "{net}"
    );
    run.assert_no_leak(&["PROXY-PASSWORD-SENTINEL"]);
    // Loopback Doppler was reached directly despite the (dead) proxy.
    assert_eq!(status(&checks, "doppler read"), "pass");

    let missing = h.home.path().join("missing-ca.pem");
    let (run, checks) = doctor(
        h.cmd(),
        &["--provider", "acme", "--ca-file", missing.to_str().unwrap()],
    );
    run.assert_code(1);
    let net = check(&checks, "network", None);
    assert_eq!(net["status"], "fail");
    assert!(
        net["detail"].as_str().unwrap().contains("missing-ca.pem"),
        "{net:#}"
    );
}

/// Issue 15: a system opener without a display is not a working opener.
#[test]
fn a_system_opener_without_a_display_is_a_warning_with_the_paste_route() {
    let h = Harness::new(AsConfig::jobber());
    let bin = h.home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    script(&bin, "xdg-open", "exit 3");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut cmd = h.cmd();
    cmd.env("PATH", &path).env_remove("BROWSER");
    let (_, checks) = doctor(cmd, &[]);
    let browser = check(&checks, "browser", None);
    assert_eq!(browser["status"], "warn", "{browser:#}");
    assert!(
        browser["detail"].as_str().unwrap().contains("no display"),
        "{browser:#}"
    );
    assert!(
        browser["next"].as_str().unwrap().contains("--no-browser"),
        "{browser:#}"
    );

    let mut cmd = h.cmd();
    cmd.env("PATH", &path).env("DISPLAY", ":0");
    let (_, checks) = doctor(cmd, &[]);
    assert_eq!(status(&checks, "browser"), "pass");
}
