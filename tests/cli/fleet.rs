//! Rotation safety across a fleet, under every reading of Doppler that its documentation
//! leaves open (`originalValue: ""` enforced or not, a failed precondition as 409 or as 200
//! with the change skipped, batches all-or-nothing or change by change), with clocks that
//! disagree, answers that are lost after the write applied, and rate limits. The fake AS is
//! strict: a spent refresh token presented again revokes the whole grant.

use std::time::{Duration, Instant};

use crate::support::fake_as::AsConfig;
use crate::support::fake_doppler::Semantics;
use crate::support::{now, run_together, Harness, Running};

/// Two "machines" race `refresh` twice per reading; each race must make exactly one refresh at
/// the provider, both racers exit 0 with the same token, and the grant must stay alive. The
/// first race of each starts from an empty lease (as an older version or a hand-made secret
/// leaves it), so the one-time conversion is raced too.
#[test]
fn two_machines_racing_refresh_make_one_refresh_per_race_under_every_reading_of_doppler() {
    let results: Vec<(Semantics, Vec<usize>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = Semantics::all()
            .into_iter()
            .map(|semantics| {
                scope.spawn(move || {
                    let h = Harness::new(AsConfig::jobber());
                    h.store_grant(3600);
                    h.set_secret("ACME_REFRESH_LEASE", "");
                    h.doppler.set_semantics(semantics);
                    // A slow provider keeps each refresh in flight while the other racer looks.
                    h.auth.set_token_delay(Duration::from_millis(300));
                    let other = h.other_machine();
                    let mut uses = Vec::new();
                    for race in 1..=2 {
                        let (mut a, mut b) = (h.cmd(), other.cmd());
                        a.args(["refresh", "--provider", "acme"]);
                        b.args(["refresh", "--provider", "acme"]);
                        let runs = run_together([a, b]);
                        for run in &runs {
                            run.assert_code(0);
                        }
                        assert_eq!(
                            h.auth.refreshes(),
                            race,
                            "{semantics:?}: one refresh per race\n{}\n{}",
                            runs[0].stderr,
                            runs[1].stderr
                        );
                        assert!(!h.auth.grant_revoked(), "{semantics:?}: grant revoked");
                        assert!(h.lease_is_free(), "{semantics:?}: lease released");
                        uses.push(h.auth.refreshes());
                    }
                    // And the tokens still work from either machine.
                    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
                    let mut t = other.cmd();
                    t.args(["token", "--provider", "acme"]);
                    let run = run_together([t]).remove(0);
                    run.assert_code(0);
                    // Its own cached token, or the newest: either way a live one.
                    assert!(
                        h.auth.is_live_access_token(run.stdout.trim()),
                        "{semantics:?}"
                    );
                    assert!(!h.auth.grant_revoked(), "{semantics:?}");
                    (semantics, uses)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.len(), 8, "every combination ran");
}

fn held_lease(owner: &str, until: i64) -> String {
    format!(r#"{{"owner":"{owner}","until":{until}}}"#)
}

/// A machine whose clock runs 10 minutes ahead must not judge another machine's lease by it:
/// the lease is written and read on Doppler's clock, so it waits for the refresh in flight and
/// uses its tokens.
#[test]
fn a_machine_ten_minutes_ahead_waits_for_the_refresh_in_flight_instead_of_taking_over() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.auth.set_token_delay(Duration::from_millis(2500));
    let other = h.other_machine();
    let first = Running::spawn(h.cmd().args(["refresh", "--provider", "acme"]));
    // Let the first machine take the lease and send its refresh.
    let started = Instant::now();
    while h.auth.token_requests().is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut ahead = other.cmd();
    ahead
        .env("OAUTH_PKCE_TEST_CLOCK_OFFSET", "600")
        .args(["token", "--provider", "acme"]);
    let second = run_together([ahead]).remove(0);
    let first = first.finish();
    first.assert_code(0);
    second.assert_code(0);
    assert_eq!(h.auth.refreshes(), 1, "{}", second.stderr);
    assert!(!h.auth.grant_revoked());
    assert_eq!(second.stdout.trim(), h.secret("ACME_ACCESS_TOKEN").unwrap());
    assert!(
        second.stderr.contains("600 s ahead of Doppler's"),
        "the skew is named: {}",
        second.stderr
    );
}

/// The same machine judges the access token by Doppler's clock too: a token valid for another
/// 20 minutes is printed, not refreshed, though its own clock says it is 10 minutes older.
#[test]
fn a_clock_ahead_does_not_refresh_a_token_that_doppler_s_clock_says_is_valid() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(1200);
    let run = h.run_env(
        &[("OAUTH_PKCE_TEST_CLOCK_OFFSET", "900")],
        &["token", "--provider", "acme"],
    );
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(h.auth.refreshes(), 0);
    // And a clock behind does not print a token Doppler's clock says has expired.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() - 30).to_string());
    let run = h.run_env(
        &[("OAUTH_PKCE_TEST_CLOCK_OFFSET", "-900")],
        &["token", "--provider", "acme"],
    );
    run.assert_code(0);
    assert_ne!(run.stdout, format!("{at}\n"));
    assert_eq!(h.auth.refreshes(), 1);
}

/// A machine 10 minutes behind finds a lease left by a killed process: by its own clock the
/// lease has 10 more minutes; by Doppler's it runs out in 2 s, and it takes over then.
#[test]
fn a_machine_ten_minutes_behind_takes_over_a_dead_lease_promptly() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.set_secret("ACME_REFRESH_LEASE", &held_lease("gone:4242:1", now() + 2));
    let started = Instant::now();
    let run = h.run_env(
        &[("OAUTH_PKCE_TEST_CLOCK_OFFSET", "-600")],
        &["token", "--provider", "acme"],
    );
    run.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(h.auth.refreshes(), 1);
    assert!(h.lease_is_free());
}

/// The lease write lands but its answer is lost (a proxy's 502): the re-read shows the lease is
/// ours, and the refresh goes on at once instead of waiting out its own lease.
#[test]
fn a_lost_answer_to_the_lease_write_is_settled_by_a_re_read() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.lose_answer_of_write(1);
    let started = Instant::now();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!(run.stdout.trim(), h.secret("ACME_ACCESS_TOKEN").unwrap());
    assert!(h.lease_is_free());
}

/// A lease whose answer was lost, found ours on the re-read, but with too little of it left
/// by Doppler's clock (which jumped 100 s meanwhile) to refresh and store in before another
/// machine may take over: it is let go and taken anew before the refresh token is spent.
#[test]
fn a_lease_found_ours_with_too_little_left_is_taken_anew_before_refreshing() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.lose_answer_of_write(1);
    h.doppler.jump_clock_at_write(1, 100);
    let writes = h.doppler.writes();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!(run.stdout.trim(), h.secret("ACME_ACCESS_TOKEN").unwrap());
    // The lost take, its release, the new take, the new tokens (which free the lease).
    assert_eq!(
        h.doppler.writes() - writes,
        4,
        "{:#?}",
        h.doppler.requests()
    );
    assert!(h.lease_is_free());
}

/// The store write lands but its answer is lost: the re-read finds the new tokens, so the
/// command succeeds and leaves no journal.
#[test]
fn a_lost_answer_to_the_store_write_is_settled_by_a_re_read() {
    let h = Harness::new(AsConfig::jobber());
    let (_, old_rt) = h.store_grant(60);
    h.doppler.lose_answer_of_write(2);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(rt, old_rt);
    assert!(h.auth.is_live_refresh_token(&rt));
    assert_eq!(run.stdout.trim(), h.secret("ACME_ACCESS_TOKEN").unwrap());
    assert_eq!(
        h.pending_journals(),
        Vec::<std::path::PathBuf>::new(),
        "no journal left"
    );
    assert_eq!(h.auth.refreshes(), 1);
}

/// A waiter re-reads at a pace Doppler's limits allow: another machine holds the lease for
/// 12 s under a limit of 12 secret reads a minute, and the waiter is never refused.
#[test]
fn a_waiter_stays_within_doppler_s_rate_limit() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    h.doppler.set_read_limit(12);
    h.set_secret("ACME_REFRESH_LEASE", &held_lease("other:1:1", now() + 60));
    let running = Running::spawn(h.cmd().args(["token", "--provider", "acme"]));
    std::thread::sleep(Duration::from_secs(12));
    let at = h.other_machine_refreshed();
    let run = running.finish();
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(h.doppler.rate_limited(), 0, "no read was refused");
    assert_eq!(h.auth.refreshes(), 0);
}

/// A read-only token refused with 400 rather than 403 is not a lost race: the re-read shows
/// the lease unchanged, and after a few tries the refusal is reported — no tight read–write
/// loop, nothing sent to the provider.
#[test]
fn a_write_refusal_that_is_not_a_lost_race_ends_after_a_few_tries() {
    let mut h = Harness::new(AsConfig::jobber());
    h.token = crate::support::RO_TOKEN.into();
    h.store_grant(10);
    h.doppler.set_read_only_status(400);
    let started = Instant::now();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(6, "does not have write access");
    assert!(h.doppler.writes() <= 3, "{} writes", h.doppler.writes());
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(h.auth.token_requests().len(), 0);
}
