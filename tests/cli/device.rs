//! `authorize --device` (RFC 8628) end to end against the fake AS's device endpoint: the
//! polling schedule as the server sees it, the provider's refusals, expiry, a provider without
//! the endpoint, and what reaches the terminal.

use std::time::Duration;

use crate::support::fake_as::{AsConfig, DeviceAnswer, DeviceConfig};
use crate::support::{script, Harness, Run, Running};

fn harness(cfg: AsConfig, device: DeviceConfig) -> Harness {
    let h = Harness::new(cfg);
    h.write_provider(
        "acme",
        &format!("device_authorization_url = \"{}\"\n", h.auth.device_url()),
    );
    h.auth.set_device(device);
    h
}

fn device_run(h: &Harness, extra: &[&str]) -> Run {
    let mut cmd = h.cmd();
    cmd.args([
        "authorize",
        "--provider",
        "acme",
        "--device",
        "--no-browser",
    ])
    .args(extra);
    Run::from(cmd.output().unwrap())
}

fn gaps(polls: &[std::time::Instant]) -> Vec<Duration> {
    polls.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn l1_approval_after_pending_and_slow_down_is_stored_with_one_write() {
    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            script: vec![DeviceAnswer::Pending, DeviceAnswer::SlowDown],
            ..DeviceConfig::default()
        },
    );
    let run = device_run(&h, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("Authorized acme"), "{}", run.stdout);
    // What the user is told: the code, where to enter it, and to enter only their own codes.
    assert!(run.stderr.contains("WDJB-MJHT"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{}/device-verify", h.auth.url())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("only if you started this sign-in yourself"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Waiting up to 300 s for the redirect"),
        "{}",
        run.stderr
    );

    // Interval 1 s, then 1 + 5 s after slow_down; the fake saw no early poll.
    let polls = h.auth.device_polls();
    assert_eq!(polls.len(), 3);
    let gaps = gaps(&polls);
    assert!(gaps[0] >= Duration::from_millis(900), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(5900), "{gaps:?}");
    assert_eq!(h.auth.early_polls(), 0);

    // One Doppler read, the preflight, one write of the tokens; they are the fake's live ones.
    assert_eq!((h.doppler.reads(), h.doppler.token_writes()), (1, 1));
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert!(h.auth.is_live_access_token(&at) && h.auth.is_live_refresh_token(&rt));
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
    // The device authorization request authenticated the client as configured (post).
    let req = &h.auth.device_requests()[0];
    assert_eq!(
        req.param("client_id"),
        Some(crate::support::fake_as::CLIENT_ID)
    );
    assert!(req.param("client_secret").is_some());
    let mut secrets: Vec<&str> = vec![&at, &rt, crate::support::fake_as::CLIENT_SECRET];
    let minted = h.auth.minted();
    secrets.extend(minted.iter().map(String::as_str));
    run.assert_no_leak(&secrets);
}

#[test]
fn github_style_pending_answered_with_http_200_and_basic_client_auth_both_work() {
    for cfg in [AsConfig::github(), AsConfig::basic()] {
        let h = harness(
            cfg,
            DeviceConfig {
                script: vec![DeviceAnswer::Pending],
                interval: None, // the client must then wait 5 s
                ..DeviceConfig::default()
            },
        );
        let started = std::time::Instant::now();
        device_run(&h, &[]).assert_code(0);
        assert!(
            started.elapsed() >= Duration::from_secs(10),
            "polled before 5 s"
        );
        assert_eq!(h.auth.device_polls().len(), 2);
        assert_eq!(h.auth.early_polls(), 0);
        assert!(h.secret("ACME_ACCESS_TOKEN").is_some());
    }
}

#[test]
fn denied_exits_4_and_writes_nothing() {
    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            then: DeviceAnswer::Deny,
            ..DeviceConfig::default()
        },
    );
    let run = device_run(&h, &[]);
    run.assert_error(4, "access_denied");
    assert_eq!(h.doppler.token_writes(), 0);
    assert!(h.secret("ACME_ACCESS_TOKEN").is_none());
}

#[test]
fn an_expired_code_exits_4_whether_the_provider_or_the_clock_says_so() {
    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            script: vec![DeviceAnswer::Pending],
            then: DeviceAnswer::Expire,
            ..DeviceConfig::default()
        },
    );
    let run = device_run(&h, &[]);
    run.assert_error(4, "the device code expired");
    assert!(
        run.stderr
            .contains("authorize --provider acme --device` again"),
        "{}",
        run.stderr
    );
    assert_eq!(h.doppler.token_writes(), 0);

    // Forever pending: the code's own 3 s lifetime ends the wait.
    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            expires_in: 3,
            then: DeviceAnswer::Pending,
            ..DeviceConfig::default()
        },
    );
    let started = std::time::Instant::now();
    let run = device_run(&h, &[]);
    run.assert_error(4, "the device code expired");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Every second until the lifetime is used up (the last poll may fall just past it).
    assert!((2..=3).contains(&h.auth.device_polls().len()));
    assert_eq!(h.doppler.token_writes(), 0);
}

/// Red team R9: an `interval` of 2^64-1 s (it would overflow the clock) is clamped; the code
/// expires before the first poll is due, and the process exits 4 rather than panicking.
#[test]
fn r9_an_absurd_interval_is_clamped_and_the_code_expires_without_a_panic() {
    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            expires_in: 3,
            interval: Some(u64::MAX),
            then: DeviceAnswer::Pending,
            ..DeviceConfig::default()
        },
    );
    let run = device_run(&h, &[]);
    run.assert_error(4, "the device code expired");
    assert!(h.auth.device_polls().is_empty());
    assert_eq!(h.doppler.token_writes(), 0);
}

#[test]
fn a_provider_without_a_device_endpoint_exits_3_before_any_request() {
    let h = Harness::new(AsConfig::jobber());
    let run = device_run(&h, &[]);
    run.assert_error(3, "has no device authorization endpoint");
    assert!(run.stderr.contains("without --device"), "{}", run.stderr);
    assert_eq!(h.doppler.requests().len(), 0);
    // A built-in without one too (Jobber documents none).
    let run = h.run(&["authorize", "--provider", "jobber", "--device"]);
    run.assert_error(3, "jobber has no device authorization endpoint");
}

#[test]
fn l2_an_unsafe_verification_uri_is_refused_and_control_characters_are_stripped() {
    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            verification_uri: Some("javascript:alert(1)".into()),
            ..DeviceConfig::default()
        },
    );
    let opened = h.home.path().join("opened");
    let browser = script(
        h.home.path(),
        "b.sh",
        &format!("echo \"$1\" > '{}'", opened.display()),
    );
    let mut cmd = h.cmd();
    cmd.env("BROWSER", browser.display().to_string()).args([
        "authorize",
        "--provider",
        "acme",
        "--device",
    ]);
    let run = Run::from(cmd.output().unwrap());
    run.assert_error(5, "verification_uri is not an https URL");
    assert!(!run.stderr.contains("javascript:"), "{}", run.stderr);
    assert!(h.auth.device_polls().is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!opened.exists(), "the browser was started");

    let h = harness(
        AsConfig::jobber(),
        DeviceConfig {
            user_code: "WDJB\u{1b}]52;c;eA==\u{7}-MJHT".into(),
            ..DeviceConfig::default()
        },
    );
    let run = device_run(&h, &[]);
    run.assert_code(0);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "{:?}",
        run.stderr
    );
}

#[test]
fn the_browser_opens_the_page_with_the_code_filled_in() {
    let h = harness(AsConfig::jobber(), DeviceConfig::default());
    let opened = h.home.path().join("opened");
    let browser = script(
        h.home.path(),
        "b.sh",
        &format!("printf '%s' \"$1\" > '{}'", opened.display()),
    );
    let mut cmd = h.cmd();
    cmd.env("BROWSER", browser.display().to_string()).args([
        "authorize",
        "--provider",
        "acme",
        "--device",
    ]);
    let mut running = Running::spawn(&mut cmd);
    running.wait_for_line("Waiting up to");
    let run = running.finish();
    run.assert_code(0);
    // The opener runs detached: wait for it to have written the URL.
    let mut url = String::new();
    for _ in 0..100 {
        url = std::fs::read_to_string(&opened).unwrap_or_default();
        if !url.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        url,
        format!("{}/device-verify?user_code=WDJB-MJHT", h.auth.url())
    );
}

/// A provider file's `[token_headers]` reach the device endpoint and each poll of the token
/// endpoint, as they do the code exchange (a provider that requires a version header).
#[test]
fn token_headers_go_to_the_device_endpoint_and_every_poll() {
    let cfg = AsConfig {
        required_header: Some(("Notion-Version", "2026-03-11")),
        ..AsConfig::jobber()
    };
    let device = || DeviceConfig {
        script: vec![DeviceAnswer::Pending],
        ..DeviceConfig::default()
    };
    let h = harness(cfg, device());
    let run = device_run(&h, &[]);
    run.assert_code(5);
    assert!(
        run.stderr
            .contains("the Notion-Version header must be 2026-03-11"),
        "refused without it: {}",
        run.stderr
    );

    h.write_provider(
        "acme",
        &format!(
            "device_authorization_url = \"{}\"\n[token_headers]\nNotion-Version = \"2026-03-11\"\n",
            h.auth.device_url()
        ),
    );
    h.auth.set_device(device());
    let devices = h.auth.device_requests().len();
    let polls = h.auth.token_requests().len();
    device_run(&h, &[]).assert_code(0);
    let sent = |reqs: &[crate::support::fake_as::TokenRequest]| {
        reqs.iter()
            .map(|r| r.required_header.clone())
            .collect::<Vec<_>>()
    };
    let header = || Some("2026-03-11".to_string());
    assert_eq!(sent(&h.auth.device_requests()[devices..]), [header()]);
    let polls = sent(&h.auth.token_requests()[polls..]);
    assert_eq!(polls, [header(), header()], "the pending poll and the last");
}
