//! Refresh-token rotation never locks anyone out: concurrent processes, two machines sharing
//! one Doppler config, Doppler failing after the provider rotated, a process killed in between,
//! `invalid_grant` races, and read-only consumers. The fake AS is strict: a spent refresh token
//! presented again revokes the whole grant.

use std::process::Stdio;
use std::time::Duration;

use crate::support::fake_as::AsConfig;
use crate::support::fake_doppler::Fault;
use crate::support::{now, run_together, Harness, Running, RO_TOKEN};

const SECRETS: &str = "/v3/configs/config/secrets";

#[test]
fn sixteen_concurrent_token_calls_make_exactly_one_refresh() {
    let h = Harness::new(AsConfig::jobber());
    let (old_at, _) = h.store_grant(60);
    let runs = run_together((0..16).map(|_| {
        let mut cmd = h.cmd();
        cmd.args(["token", "--provider", "acme"]);
        cmd
    }));
    for run in &runs {
        run.assert_code(0);
    }
    assert_eq!(h.auth.refreshes(), 1, "exactly one refresh at the provider");
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_ne!(new_at, old_at);
    for run in &runs {
        assert_eq!(run.stdout, format!("{new_at}\n"));
    }
    assert!(h
        .auth
        .is_live_refresh_token(&h.secret("ACME_REFRESH_TOKEN").unwrap()));
    assert!(!h.auth.grant_revoked());
    assert!(h.lease_is_free(), "lease released");
}

#[test]
fn concurrent_token_calls_refresh_once_even_when_tokens_live_shorter_than_the_buffer() {
    // Tokens that live 120 s are always within the 300 s buffer, even fresh ones. A process
    // that waited while another refreshed must take that refresh (SPEC: "waits and re-reads,
    // then uses the new tokens"), not refresh once more (found by the real_as tests against
    // oidc-provider, whose tokens live 120 s there).
    let h = Harness::new(AsConfig::public().with_access_ttl(120));
    h.store_grant(100);
    // Slow Doppler answers keep the refresh going (about 1 s) until every process has made its
    // first read; one that started after the refresh had finished would rightly refresh again.
    h.doppler.set_delay(Duration::from_millis(500));
    let runs = run_together((0..4).map(|_| {
        let mut cmd = h.cmd();
        cmd.args(["token", "--provider", "acme"]);
        cmd
    }));
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    for run in &runs {
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{new_at}\n"));
    }
    assert_eq!(h.auth.refreshes(), 1, "exactly one refresh at the provider");
    assert!(!h.auth.grant_revoked());
    h.doppler.set_delay(Duration::ZERO);
    // Alone, a `token` still refreshes a token within the buffer.
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.auth.refreshes(), 2);
}

#[test]
fn two_machines_racing_send_one_refresh_per_race_and_nobody_is_locked_out() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    let other = h.other_machine();
    for race in 1..=3 {
        h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() + 30).to_string());
        let (mut on_a, mut on_b) = (h.cmd(), other.cmd());
        on_a.args(["token", "--provider", "acme"]);
        on_b.args(["token", "--provider", "acme"]);
        let runs = run_together([on_a, on_b]);
        let (a, b) = (&runs[0], &runs[1]);
        a.assert_code(0);
        b.assert_code(0);
        assert_eq!(a.stdout, b.stdout, "both machines got the same token");
        assert_eq!(h.auth.refreshes(), race, "one refresh per race");
        assert!(
            !h.auth.grant_revoked(),
            "a spent refresh token was presented again"
        );
    }
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert!(!h.auth.grant_revoked());
}

#[test]
fn a_lease_left_by_a_killed_process_expires_and_is_taken_over() {
    let h = Harness::new(AsConfig::jobber());
    // Under a minute left: not worth serving, the lease is waited out.
    h.store_grant(20);
    let lease = format!(r#"{{"owner":"gone:4242:deadbeef","until":{}}}"#, now() + 2);
    h.set_secret("ACME_REFRESH_LEASE", &lease);
    let started = std::time::Instant::now();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for the lease"
    );
    assert_eq!(h.auth.refreshes(), 1);
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
}

#[test]
fn a_lease_held_by_another_machine_that_finishes_is_used_without_a_refresh() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(20);
    h.set_secret(
        "ACME_REFRESH_LEASE",
        &format!(r#"{{"owner":"other:1:1","until":{}}}"#, now() + 30),
    );
    let running = Running::spawn(h.cmd().args(["token", "--provider", "acme"]));
    std::thread::sleep(Duration::from_millis(700));
    let at = h.other_machine_refreshed();
    let run = running.finish();
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(h.auth.refreshes(), 0);
}

/// Red team R8: a lease held by another process (a killed one's lasts 120 s) does not make
/// `token` wait it out while the stored token still has minutes left: after a few seconds
/// (a live holder would be done) it is served, with a warning, and nothing is refreshed.
#[test]
fn r8_a_held_lease_does_not_delay_a_token_that_is_still_valid() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(200);
    let lease = format!(
        r#"{{"owner":"gone:4242:deadbeef","until":{}}}"#,
        now() + 120
    );
    h.set_secret("ACME_REFRESH_LEASE", &lease);
    let started = std::time::Instant::now();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "served without waiting the lease out"
    );
    assert!(
        run.stderr
            .contains("another process holds the refresh lease; using the stored token"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.refreshes(), 0);
    assert_eq!(
        h.secret("ACME_REFRESH_LEASE").as_deref(),
        Some(lease.as_str())
    );
}

fn journal_files(h: &Harness) -> Vec<std::path::PathBuf> {
    h.pending_journals()
}

#[test]
fn doppler_failing_after_the_provider_rotated_keeps_the_tokens_in_a_journal_and_recovers() {
    use std::os::unix::fs::PermissionsExt as _;
    let h = Harness::new(AsConfig::jobber());
    let (_, old_rt) = h.store_grant(60);
    // Let the read and the lease write through, then fail every write.
    h.doppler.push_fault_on(
        Some("POST"),
        Some(SECRETS),
        1,
        Fault::json(500, "doppler is down"),
        100,
    );
    // `token` wants a token, and has one: the new tokens wait in the journal, said once.
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let new_at = run.stdout.trim().to_string();
    assert!(h.auth.is_live_access_token(&new_at), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("doppler is down").count(),
        1,
        "the cause is printed once: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("they are kept on this machine"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.refreshes(), 1);
    // Still down: the next `token` gets the same token from this machine's cache; a
    // `refresh`, which asked for new tokens to be stored, fails and says where they are.
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), new_at);
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(6, "doppler is down");
    assert_eq!(
        run.stdout, "",
        "no summary when the new tokens are not stored"
    );
    assert!(
        run.stderr.contains("safe on this machine"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.refreshes(), 1);
    assert!(
        !h.auth.is_live_refresh_token(&old_rt),
        "the provider rotated"
    );
    assert_eq!(
        h.secret("ACME_REFRESH_TOKEN").unwrap(),
        old_rt,
        "Doppler still holds the spent token"
    );
    let journals = journal_files(&h);
    assert_eq!(journals.len(), 1);
    let mode = std::fs::metadata(&journals[0])
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(journals[0].parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let new_rt = std::fs::read_to_string(&journals[0]).unwrap();
    run.assert_no_leak(&[&new_rt]);

    // Doppler is back: the next run pushes the journal, with no new authorization.
    h.doppler.clear_faults();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let stored_rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(stored_rt, old_rt);
    assert!(h.auth.is_live_refresh_token(&stored_rt));
    assert_eq!(
        run.stdout,
        format!("{}\n", h.secret("ACME_ACCESS_TOKEN").unwrap())
    );
    assert_eq!(h.auth.refreshes(), 1, "no second refresh");
    assert!(journal_files(&h).is_empty());
    assert!(!h.auth.grant_revoked());
}

/// A keep-alive job (`refresh --if-due`) is never bridged: when the new tokens cannot be
/// stored, or a journal cannot be pushed, it fails, so cron says so, while `token` would go on.
#[test]
fn refresh_if_due_fails_when_the_store_does() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.push_fault_on(
        Some("POST"),
        Some(SECRETS),
        1,
        Fault::json(500, "doppler is down"),
        100,
    );
    let run = h.run(&["refresh", "--provider", "acme", "--if-due"]);
    run.assert_error(6, "doppler is down");
    assert_eq!(run.stdout, "");
    assert_eq!(h.auth.refreshes(), 1);
    // The journal waits; pushing it fails again: still an error, for one and for all.
    let run = h.run(&["refresh", "--provider", "acme", "--if-due"]);
    run.assert_error(6, "doppler is down");
    let run = h.run(&["refresh", "--all", "--if-due"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert_eq!(h.auth.refreshes(), 1, "no second refresh");
    // A script still gets the new token meanwhile.
    h.run(&["token", "--provider", "acme"]).assert_code(0);
}

#[test]
fn a_process_killed_between_the_answer_and_the_store_is_recovered_by_the_next_run() {
    let h = Harness::new(AsConfig::jobber());
    let (_, old_rt) = h.store_grant(60);
    let mut child = h.spawn_paused_token(30, Stdio::null);
    for _ in 0..200 {
        if !journal_files(&h).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        journal_files(&h).len(),
        1,
        "the journal was written before the store"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").unwrap(), old_rt);

    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert!(h.auth.is_live_refresh_token(&rt));
    assert_eq!(h.auth.refreshes(), 1);
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert!(!h.auth.grant_revoked());
}

#[test]
fn invalid_grant_while_doppler_holds_a_newer_token_succeeds_without_a_second_refresh() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    // This machine's refresh is answered invalid_grant, slowly; meanwhile another machine's
    // rotation lands in Doppler.
    h.auth.push_token_fault(
        400,
        r#"{"error":"invalid_grant","error_description":"already used"}"#,
        1,
    );
    h.auth.set_token_delay(Duration::from_millis(1500));
    let running = Running::spawn(h.cmd().args(["token", "--provider", "acme"]));
    for _ in 0..100 {
        if !h.auth.token_requests().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.auth.token_requests().len(), 1, "the refresh is in flight");
    h.auth.set_token_delay(Duration::ZERO);
    let (at, rt) = h.auth.issue_grant();
    h.set_secret("ACME_ACCESS_TOKEN", &at);
    h.set_secret("ACME_REFRESH_TOKEN", &rt);
    h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() + 3600).to_string());
    let run = running.finish();
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(h.auth.token_requests().len(), 1, "no second refresh");
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").unwrap(), rt);
    // The lease is let go (no one else waits for it), and the token it found is cached.
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
    let reads = h.doppler.reads();
    let run = h.run(&["token", "--provider", "acme"]);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(h.doppler.reads(), reads, "served from this machine's cache");
}

#[test]
fn invalid_grant_with_the_store_unchanged_exits_1() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.auth
        .push_token_fault(400, r#"{"error":"invalid_grant"}"#, 1);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(1, "oauth-pkce authorize --provider acme");
    assert_eq!(
        h.auth.token_requests().len(),
        1,
        "invalid_grant is never retried"
    );
    assert!(h.lease_is_free(), "lease released after the failure");
}

#[test]
fn doppler_429_and_503_are_retried_within_bounds_during_a_refresh() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.push_fault(
        None,
        Fault::json(429, "slow down").with_header("Retry-After", "1"),
        1,
    );
    h.doppler
        .push_fault_on(Some("POST"), Some(SECRETS), 1, Fault::html(503), 1);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.auth.refreshes(), 1);
    assert!(h
        .auth
        .is_live_refresh_token(&h.secret("ACME_REFRESH_TOKEN").unwrap()));
}

#[test]
fn a_read_only_token_never_refreshes_but_reads_a_valid_token() {
    let mut h = Harness::new(AsConfig::jobber());
    h.token = RO_TOKEN.into();
    let (at, _) = h.store_grant(3600);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));

    h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() + 10).to_string());
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(6, "cannot write");
    assert!(
        run.stderr.contains("oauth-pkce refresh --provider acme"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    assert_eq!(
        h.auth.token_requests().len(),
        0,
        "nothing sent to the provider"
    );
}

#[test]
fn a_refresh_costs_one_read_one_lease_write_one_token_request_and_one_write() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.doppler.reads(), 1);
    assert_eq!(h.doppler.writes(), 2, "lease write + token write");
    assert_eq!(h.auth.token_requests().len(), 1);
}

#[test]
fn tokens_stored_without_a_lease_secret_still_refresh_and_get_one() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.delete_secret(
        crate::support::PROJECT,
        crate::support::CONFIG,
        "ACME_REFRESH_LEASE",
    );
    assert_eq!(h.secret("ACME_REFRESH_LEASE"), None);
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.auth.refreshes(), 1);
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
}

#[test]
fn status_pushes_a_pending_journal_before_it_reads() {
    let h = Harness::new(AsConfig::jobber());
    let (_, old_rt) = h.store_grant(60);
    h.doppler.push_fault_on(
        Some("POST"),
        Some(SECRETS),
        1,
        Fault::json(500, "down"),
        100,
    );
    h.run(&["refresh", "--provider", "acme"]).assert_code(6);
    h.doppler.clear_faults();
    let run = h.run(&["status"]);
    run.assert_code(0);
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(rt, old_rt);
    assert!(h.auth.is_live_refresh_token(&rt));
    assert!(journal_files(&h).is_empty());
    assert_eq!(h.auth.refreshes(), 1);
}

#[test]
fn a_disk_that_refuses_the_journal_is_named_and_the_tokens_go_to_doppler_directly() {
    let h = Harness::new(AsConfig::jobber());
    let (_, old_rt) = h.store_grant(60);
    let run = h.run_env(
        &[("OAUTH_PKCE_TEST_FAULT", "journal-write")],
        &["token", "--provider", "acme"],
    );
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("could not write the refresh journal (cannot write "),
        "the warning says what failed: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("cannot read"), "{}", run.stderr);
    let stored = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(stored, old_rt, "the new tokens reached Doppler");
    assert!(h.auth.is_live_refresh_token(&stored));
    assert!(journal_files(&h).is_empty());
}

#[test]
fn a_disk_that_refuses_the_journal_while_doppler_fails_says_the_tokens_are_lost() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.push_fault_on(
        Some("POST"),
        Some(SECRETS),
        1,
        Fault::json(500, "down"),
        100,
    );
    let run = h.run_env(
        &[("OAUTH_PKCE_TEST_FAULT", "journal-write")],
        &["token", "--provider", "acme"],
    );
    run.assert_code(6);
    assert!(
        run.stderr.contains("neither the local journal nor Doppler"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: free disk space"),
        "{}",
        run.stderr
    );
}

/// A tmpfs mounted for one test, unmounted when dropped (before its directory goes).
struct Mounted(std::path::PathBuf);

impl Mounted {
    /// Mounts a tmpfs of `size` at `dir`; `None` where this process may not mount (not root,
    /// or no CAP_SYS_ADMIN in a container).
    fn tmpfs(dir: &std::path::Path, size: &str) -> Option<Mounted> {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Mounted(dir.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Red team R7: the disk fills up, then Doppler fails the store after the provider rotated.
/// The journal's slot was reserved before the refresh token was spent, so the answer is
/// written into blocks the disk already gave: nothing is lost, and the next run, the disk
/// still full, pushes it to Doppler.
#[test]
fn r7_a_full_disk_while_doppler_fails_keeps_the_rotated_token_in_the_reserved_journal() {
    let h = Harness::new(AsConfig::jobber());
    let Some(_disk) = Mounted::tmpfs(&h.home.path().join(".local/state"), "256k") else {
        eprintln!("SKIPPED (needs to mount a tmpfs: root with CAP_SYS_ADMIN): the full-disk test");
        return;
    };
    h.store_grant(10);
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    // Fill the disk to the last block.
    let filler = h.home.path().join(".local/state/filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = [0u8; 4096];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    let _ = file.sync_all();
    assert!(
        std::fs::write(h.home.path().join(".local/state/probe"), [0u8; 4096]).is_err(),
        "the disk is full"
    );

    let spent = h.secret("ACME_REFRESH_TOKEN").unwrap();
    h.doppler.push_fault_on(
        Some("POST"),
        Some(SECRETS),
        1,
        Fault::json(500, "doppler is down"),
        100,
    );
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(6, "doppler is down");
    assert!(
        !h.auth.is_live_refresh_token(&spent),
        "the provider rotated"
    );
    assert_eq!(journal_files(&h).len(), 1, "{}", run.stderr);

    // Doppler is back, the disk still full: the journal reaches Doppler.
    h.doppler.clear_faults();
    h.run(&["token", "--provider", "acme"]).assert_code(0);
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(rt, spent);
    assert!(
        h.auth.is_live_refresh_token(&rt),
        "Doppler holds the live token"
    );
    assert!(journal_files(&h).is_empty());
    assert!(!h.auth.grant_revoked());
}

/// Issue 17: a write never downgrades a secret's visibility: a refresh token the user made
/// `restricted` stays restricted after a refresh; new secrets are `masked`.
#[test]
fn a_refresh_keeps_the_visibility_the_user_gave_a_secret() {
    use crate::support::{CONFIG, PROJECT};
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(10);
    h.doppler
        .set_visibility(PROJECT, CONFIG, "ACME_REFRESH_TOKEN", "restricted");
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert_eq!(
        h.doppler
            .visibility(PROJECT, CONFIG, "ACME_REFRESH_TOKEN")
            .as_deref(),
        Some("restricted")
    );
    assert!(h
        .auth
        .is_live_refresh_token(&h.secret("ACME_REFRESH_TOKEN").unwrap()));
}

/// Issue 17: a write's answer is the whole config. One that holds 3 MB of other secrets (a
/// large but possible config) is read as the success it is; under a 1 MiB cap each answer was
/// dropped as lost and the config re-read to learn whether the write had landed (3 reads, and
/// a failed refresh whenever that re-read failed too).
#[test]
fn a_refresh_in_a_large_config_lands_and_is_read_as_landed() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(10);
    let filler = "x".repeat(10_000);
    for i in 0..300 {
        h.doppler.set_secret(
            crate::support::PROJECT,
            crate::support::CONFIG,
            &format!("BIG_{i}"),
            &filler,
        );
    }
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!(
        h.secret("ACME_ACCESS_TOKEN").as_deref(),
        Some(run.stdout.trim())
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(
        (h.doppler.reads(), h.doppler.writes()),
        (1, 2),
        "each write's answer read, none re-read to learn whether it landed"
    );
}
