//! This machine's token cache: zero requests on the hot path under Doppler's rate limits,
//! outages bridged by a still-valid token, entries that another Doppler token cannot open,
//! `--no-cache`, `OAUTH_PKCE_CACHE=off`, `--after-401`, and `revoke` clearing it.

use crate::support::fake_as::AsConfig;
use crate::support::fake_doppler::Fault;
use crate::support::{now, run_together, Harness, CONFIG, FREE_LEASE, PROJECT, RO_TOKEN};

/// SPEC.md's Developer-plan limit on secret reads, per token per minute.
const DEVELOPER_SECRET_READS: usize = 120;

#[test]
fn four_machines_calling_token_forty_times_each_read_doppler_once_each() {
    let h = Harness::new(AsConfig::jobber());
    h.doppler.set_read_limit(DEVELOPER_SECRET_READS);
    let (at, _) = h.store_grant(3600);
    let machines: Vec<_> = (0..3).map(|_| h.other_machine()).collect();
    for i in 0..40 {
        let mut cmds = vec![h.cmd()];
        cmds.extend(machines.iter().map(|m| m.cmd()));
        for cmd in &mut cmds {
            cmd.args(["token", "--provider", "acme"]);
        }
        for run in run_together(cmds) {
            run.assert_code(0);
            assert_eq!(run.stdout, format!("{at}\n"), "call {i}");
        }
    }
    assert_eq!(h.doppler.reads(), 4, "one read per machine for 160 calls");
    assert_eq!(h.doppler.rate_limited(), 0);
    assert_eq!(h.auth.refreshes(), 0);
}

#[test]
fn eight_concurrent_calls_on_four_machines_on_an_expiring_token_refresh_once() {
    let h = Harness::new(AsConfig::jobber());
    h.doppler.set_read_limit(DEVELOPER_SECRET_READS);
    h.store_grant(60);
    let machines: Vec<_> = (0..3).map(|_| h.other_machine()).collect();
    let mut cmds = vec![h.cmd(), h.cmd()];
    for m in &machines {
        cmds.push(m.cmd());
        cmds.push(m.cmd());
    }
    for cmd in &mut cmds {
        cmd.args(["token", "--provider", "acme"]);
    }
    let runs = run_together(cmds);
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    for run in &runs {
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{at}\n"));
    }
    assert_eq!(h.auth.refreshes(), 1);
    assert!(!h.auth.grant_revoked());
    assert_eq!(h.doppler.rate_limited(), 0);
}

#[test]
fn callers_on_one_machine_whose_cached_token_is_due_make_one_read_and_one_refresh() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(200);
    // This machine caches the token (valid for 200 s: beyond a zero buffer) ...
    h.run(&["token", "--provider", "acme", "--refresh-buffer", "0"])
        .assert_code(0);
    let reads = h.doppler.reads();
    // ... which is due under the default 300 s buffer for all eight callers at once: one
    // takes turns first and refreshes, the others find its token in the cache.
    let cmds = (0..8).map(|_| {
        let mut cmd = h.cmd();
        cmd.args(["-vv", "token", "--provider", "acme"]);
        cmd
    });
    let runs = run_together(cmds);
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    for run in &runs {
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{at}\n"), "{}", run.stderr);
    }
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!(
        h.doppler.reads() - reads,
        1,
        "one read for eight callers: {:#?}",
        runs.iter().map(|r| &r.stderr).collect::<Vec<_>>()
    );
}

#[test]
fn doppler_down_is_bridged_by_a_cached_token_that_is_still_valid() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(200);
    // Cached while valid beyond a 100 s buffer.
    let run = h.run(&["token", "--provider", "acme", "--refresh-buffer", "100"]);
    run.assert_code(0);
    // Doppler failing (every answer a 503); the default 300 s buffer says "refresh", but the
    // token still lives.
    h.doppler.push_fault(None, Fault::html(503), 100);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(
        run.stderr
            .matches("using this machine's cached token")
            .count(),
        1,
        "one warning: {}",
        run.stderr
    );
    // Another machine, with nothing cached: exit 6 as before.
    let other = h.other_machine();
    let mut cmd = other.cmd();
    cmd.args(["token", "--provider", "acme"]);
    run_together([cmd]).remove(0).assert_code(6);
}

/// Doppler answers the read but rate-limits the lease write (writes have the tightest limit):
/// the token just read is still valid for a minute, so it is served with one warning instead
/// of exit 6, and nothing reaches the provider.
#[test]
fn a_rate_limited_lease_write_is_bridged_by_the_token_just_read() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(60);
    let limited = Fault::json(429, "rate limited").with_header("Retry-After", "1");
    h.doppler.push_fault_on(Some("POST"), None, 0, limited, 100);
    let run = h.run(&["token", "--provider", "acme", "--no-cache"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(
        run.stderr
            .matches("using the stored token, valid for about")
            .count(),
        1,
        "one warning: {}",
        run.stderr
    );
    assert_eq!(h.auth.token_requests().len(), 0);
    // Expired, it is not served: the error stands.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() - 5).to_string());
    h.run(&["token", "--provider", "acme", "--no-cache"])
        .assert_code(6);
}

#[test]
fn an_entry_written_under_another_doppler_token_is_never_served() {
    let mut h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.doppler.reads(), 1);
    // The same target and provider under another (read-only) token: the entry does not open
    // with that token's key, so Doppler is read.
    h.token = RO_TOKEN.into();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(h.doppler.reads(), 2);
}

#[test]
fn no_cache_and_cache_off_read_doppler_every_time() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    h.run(&["token", "--provider", "acme", "--no-cache"])
        .assert_code(0);
    h.run_env(
        &[("OAUTH_PKCE_CACHE", "off")],
        &["exec", "--provider", "acme", "--", "true"],
    )
    .assert_code(0);
    h.run(&["exec", "--provider", "acme", "--no-cache", "--", "true"])
        .assert_code(0);
    assert_eq!(h.doppler.reads(), 4);
    // And with the cache on, no read.
    h.run(&["exec", "--provider", "acme", "--", "true"])
        .assert_code(0);
    assert_eq!(h.doppler.reads(), 4);
}

/// Another machine's refresh, as Doppler then holds it: a new grant, valid for an hour, the
/// lease free. Written straight into the fake (`set_secret` would drop the machines' caches).
/// Returns its access token.
fn rotated_elsewhere(h: &Harness) -> String {
    let (newest, rt) = h.auth.issue_grant();
    let set = |name: &str, value: &str| h.doppler.set_secret(PROJECT, CONFIG, name, value);
    set("ACME_ACCESS_TOKEN", &newest);
    set("ACME_REFRESH_TOKEN", &rt);
    set("ACME_TOKEN_EXPIRES_AT", &(now() + 3600).to_string());
    set("ACME_REFRESH_LEASE", FREE_LEASE);
    newest
}

#[test]
fn after_401_refreshes_only_if_doppler_still_holds_the_refused_token() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    // Doppler still holds the refused token: one refresh, a new token.
    let run = h.run(&["token", "--provider", "acme", "--after-401"]);
    run.assert_code(0);
    assert_eq!(h.auth.refreshes(), 1);
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_ne!(new_at, at);
    assert_eq!(run.stdout, format!("{new_at}\n"));
    // The new token is cached: the next call reads nothing.
    let reads = h.doppler.reads();
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.doppler.reads(), reads);

    // Another machine refreshed meanwhile: this machine's refused copy is dropped, Doppler's
    // newer token is used, and nothing is refreshed.
    let other = h.other_machine();
    let mut cmd = other.cmd();
    cmd.args(["token", "--provider", "acme"]);
    run_together([cmd]).remove(0).assert_code(0);
    let newest = rotated_elsewhere(&h);
    let mut cmd = other.cmd();
    cmd.args(["token", "--provider", "acme", "--after-401"]);
    let run = run_together([cmd]).remove(0);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{newest}\n"));
    assert_eq!(h.auth.refreshes(), 1, "no second refresh");
}

/// `--refused-token-stdin`: the caller names the token the API refused, so a second script
/// with the same refused token is not misled by what the first one cached since (the guess
/// would refresh the good token it cached).
#[test]
fn after_401_with_the_refused_token_on_stdin_refreshes_only_for_that_token() {
    let h = Harness::new(AsConfig::jobber());
    let (refused, _) = h.store_grant(3600);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    // Another machine refreshed: Doppler holds a newer token (this machine's cache still
    // holds the refused one).
    let newest = rotated_elsewhere(&h);
    let after_401 = |token: &str| {
        let mut cmd = h.cmd();
        cmd.args([
            "token",
            "--provider",
            "acme",
            "--after-401",
            "--refused-token-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        let _ = writeln!(stdin, "{token}"); // (a refusal may stop reading early)
        drop(stdin);
        crate::support::Run::from(child.wait_with_output().unwrap())
    };
    for script in 1..=2 {
        let run = after_401(&refused);
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{newest}\n"), "script {script}");
        assert_eq!(h.auth.refreshes(), 0, "script {script}: nothing to refresh");
    }
    // The token Doppler holds refused: that one is refreshed, once.
    let run = after_401(&newest);
    run.assert_code(0);
    assert_eq!(h.auth.refreshes(), 1);
    assert_ne!(run.stdout, format!("{newest}\n"));
    // Too long to be read whole: refused, not cut short (a cut token matches nothing, and
    // the refused one would come back).
    after_401(&"A".repeat(17 * 1024)).assert_error(2, "stdin must hold the refused access token");
    // Nothing on stdin: a usage error, nothing asked.
    let run = h.run(&[
        "token",
        "--provider",
        "acme",
        "--after-401",
        "--refused-token-stdin",
    ]);
    run.assert_error(2, "stdin must hold the refused access token");
    h.run(&["token", "--provider", "acme", "--refused-token-stdin"])
        .assert_code(2);
    assert_eq!(h.auth.refreshes(), 1);
}

#[test]
fn revoke_clears_this_machine_s_entry() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    let cached = |h: &Harness| {
        let run = h.run(&["status", "--provider", "acme", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        rows[0]["cached_until"].as_i64()
    };
    assert!(
        cached(&h).is_some_and(|t| t > now() + 3500),
        "status shows the entry"
    );
    h.run(&["revoke", "--provider", "acme", "--local-only"])
        .assert_code(0);
    assert_eq!(cached(&h), None);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(1, "no tokens are stored");
}

/// `revoke` clears every entry this machine holds for the provider: also when it runs with
/// the cache off, or with another Doppler token (a person's personal token, beside the service
/// token the scripts use), whose entries are other files.
#[test]
fn revoke_clears_the_entries_of_every_token_and_setting() {
    const PERSONAL: &str = "dp.pt.FAKE-person";
    let h = Harness::new(AsConfig::jobber());
    h.doppler.add_personal_token(PERSONAL);
    let cached = |h: &Harness| {
        let run = h.run(&["status", "--provider", "acme", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        rows[0]["cached_until"].as_i64()
    };
    let revoke_with = |env: &[(&str, &str)], extra: &[&str]| {
        h.store_grant(3600);
        h.run(&["token", "--provider", "acme"]).assert_code(0);
        assert!(cached(&h).is_some(), "{env:?}: the scripts' entry");
        let mut args = vec!["revoke", "--provider", "acme", "--local-only"];
        args.extend_from_slice(extra);
        h.run_env(env, &args).assert_code(0);
        assert_eq!(cached(&h), None, "{env:?}: cleared");
        h.run(&["token", "--provider", "acme"])
            .assert_error(1, "no tokens are stored");
    };
    revoke_with(&[("OAUTH_PKCE_CACHE", "off")], &[]);
    revoke_with(
        &[("DOPPLER_TOKEN", PERSONAL)],
        &["--project", PROJECT, "--config", CONFIG],
    );
}

#[test]
fn a_caller_with_a_valid_token_waits_only_briefly_for_a_refresh_that_hangs_on_this_machine() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(100);
    // One process refreshes (the token is inside its 300 s buffer) and hangs on a provider
    // that takes 25 s to answer, holding this machine's lock.
    h.auth.set_token_delay(std::time::Duration::from_secs(25));
    let stuck = crate::support::Running::spawn(h.cmd().args(["token", "--provider", "acme"]));
    for _ in 0..200 {
        if !h.auth.token_requests().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(h.auth.token_requests().len(), 1, "the refresh is in flight");
    // Another, for which the stored token is valid (no buffer) and nothing is cached: it takes
    // turns for a while, then reads for itself instead of waiting out the stuck one.
    let started = std::time::Instant::now();
    let mut cmd = h.cmd();
    cmd.args(["token", "--provider", "acme", "--refresh-buffer", "0"]);
    let run = run_together([cmd]).remove(0);
    let waited = started.elapsed();
    run.assert_code(0);
    assert!(!run.stdout.trim().is_empty());
    assert!(
        waited < std::time::Duration::from_secs(15),
        "waited {waited:?} for a refresh that takes 25 s"
    );
    stuck.finish().assert_code(0);
}

/// A journal being pushed by another process of this machine (which may be retrying a store
/// that is down) holds up a caller with a valid cached token only briefly: it takes that token,
/// with a warning, instead of queueing for the lock.
#[test]
fn a_caller_with_a_valid_cached_token_does_not_queue_behind_a_journal_push() {
    let h = Harness::new(AsConfig::jobber());
    let (old_at, _) = h.store_grant(200);
    // Cached while valid beyond a 100 s buffer; due under the default 300 s.
    h.run(&["token", "--provider", "acme", "--refresh-buffer", "100"])
        .assert_code(0);
    // Another process refreshes and stops, holding the lock, with its journal written.
    let mut holder = h.spawn_paused_token(12, std::process::Stdio::null);
    for _ in 0..200 {
        if !h.pending_journals().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(h.pending_journals().len(), 1, "the holder is mid-refresh");
    let mut cmd = h.cmd();
    cmd.args(["token", "--provider", "acme"]);
    let run = run_together([cmd]).remove(0);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{old_at}\n"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("another process of this machine is pushing"),
        "{}",
        run.stderr
    );
    holder.wait().unwrap();
    assert_eq!(h.auth.refreshes(), 1);
}
