//! `status`, `refresh`, `token` and `providers` against stored tokens.

use crate::support::fake_as::AsConfig;
use crate::support::{now, Harness};

#[test]
fn token_with_a_fresh_access_token_costs_one_doppler_read_and_nothing_else() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(run.stderr, "");
    assert_eq!(h.doppler.requests().len(), 1);
    assert_eq!(h.doppler.reads(), 1);
    assert_eq!(h.auth.token_requests().len(), 0);
}

#[test]
fn token_refreshes_within_the_buffer_and_stores_the_rotated_pair() {
    let h = Harness::new(AsConfig::jobber());
    let (old_at, old_rt) = h.store_grant(120);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    let new_rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(new_at, old_at);
    assert_ne!(new_rt, old_rt);
    assert_eq!(run.stdout, format!("{new_at}\n"));
    assert!(h.auth.is_live_refresh_token(&new_rt));
    assert_eq!(
        (h.doppler.reads(), h.auth.refreshes(), h.doppler.writes()),
        (1, 1, 2),
        "1 read, 1 lease write, 1 token request, 1 write"
    );
    // A larger buffer than the remaining life also refreshes; a small one does not.
    h.store_grant(1000);
    let before = h.auth.refreshes();
    h.run(&["token", "--provider", "acme", "--refresh-buffer", "60"])
        .assert_code(0);
    assert_eq!(h.auth.refreshes(), before);
    h.run(&["token", "--provider", "acme", "--refresh-buffer", "2000"])
        .assert_code(0);
    assert_eq!(h.auth.refreshes(), before + 1);
}

#[test]
fn refresh_twice_in_a_row_uses_the_rotated_token_each_time() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    for _ in 0..2 {
        let before_rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
        let reads = h.doppler.reads();
        let writes = h.doppler.writes();
        let run = h.run(&["refresh", "--provider", "acme"]);
        run.assert_code(0);
        assert!(run.stdout.contains("Refreshed acme"), "{}", run.stdout);
        let after_rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
        assert_ne!(before_rt, after_rt);
        assert!(!h.auth.is_live_refresh_token(&before_rt));
        assert!(h.auth.is_live_refresh_token(&after_rt));
        assert_eq!(
            (h.doppler.reads() - reads, h.doppler.writes() - writes),
            (1, 2)
        );
        run.assert_no_leak(&[
            &before_rt,
            &after_rt,
            &h.secret("ACME_ACCESS_TOKEN").unwrap(),
        ]);
    }
    assert!(!h.auth.grant_revoked());
    assert_eq!(h.auth.refreshes(), 2);
    // The write that stored the new refresh token was a compare-and-swap on the spent one.
    let write = h
        .doppler
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(write.body.contains("originalValue"), "{}", write.body);
}

#[test]
fn a_refresh_without_refresh_token_keeps_the_stored_one_and_expiry_from_expires_in() {
    let cfg = AsConfig {
        refresh_returns_refresh_token: false,
        rotate_refresh_tokens: false,
        expires_in: Some(1800),
        jwt_access_tokens: false,
        ..AsConfig::jobber()
    };
    let h = Harness::new(cfg);
    let (_, rt) = h.store_grant(10);
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").unwrap(), rt);
    let exp: i64 = h.secret("ACME_TOKEN_EXPIRES_AT").unwrap().parse().unwrap();
    assert!((exp - now() - 1800).abs() < 30);
}

#[test]
fn refresh_with_nothing_stored_or_a_refused_token_exits_1() {
    let h = Harness::new(AsConfig::jobber());
    h.run(&["refresh", "--provider", "acme"])
        .assert_error(1, "oauth-pkce authorize --provider acme");
    h.run(&["token", "--provider", "acme"])
        .assert_error(1, "ACME_ACCESS_TOKEN");
    h.set_secret("ACME_REFRESH_TOKEN", "RT-not-known-to-the-server");
    h.set_secret("ACME_ACCESS_TOKEN", "expired");
    h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(1, "invalid_grant");
    assert_eq!(run.stdout, "");
    assert_eq!(h.secret("ACME_ACCESS_TOKEN").as_deref(), Some("expired"));
    assert!(h.lease_is_free(), "lease released");
}

#[test]
fn token_endpoint_refusals_are_provider_errors() {
    let h = Harness::new(AsConfig::jobber());
    let (_, rt) = h.store_grant(10);
    h.set_secret("ACME_CLIENT_SECRET", "wrong-secret");
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(5, "invalid_client");
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));
    assert!(h.lease_is_free(), "lease released");
}

/// Red team R3: a refresh is not idempotent. A 5xx after the request arrived may follow a
/// rotation, so the refresh is never resent; the stored tokens stay as they were, the error
/// says what may have happened and what to do, and the next run recovers when the server
/// had not rotated.
#[test]
fn r3_a_5xx_from_the_token_endpoint_is_not_resent_and_the_next_run_recovers() {
    use crate::support::fake_as::TokenFault;
    let h = Harness::new(AsConfig::jobber());
    let (_, rt) = h.store_grant(10);
    h.auth
        .push_token_fault(503, r#"{"error":"temporarily_unavailable"}"#, 1);
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(
        5,
        "may or may not have happened (HTTP 503: temporarily_unavailable)",
    );
    assert!(
        run.stderr
            .contains("run `oauth-pkce refresh --provider acme` once"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.token_requests().len(), 1, "sent once, never resent");
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));
    assert!(h.lease_is_free(), "lease released");
    // The server had not processed it: the next run refreshes with the same token.
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert!(h
        .auth
        .is_live_refresh_token(&h.secret("ACME_REFRESH_TOKEN").unwrap()));

    // It had rotated, then answered 500: still sent once, the message says how to recover.
    h.auth.push_fault(
        TokenFault {
            status: 500,
            body: r#"{"error":"server_error"}"#.into(),
            headers: Vec::new(),
            after_processing: true,
        },
        1,
    );
    let before = h.auth.token_requests().len();
    let run = h.run(&["token", "--provider", "acme", "--after-401"]);
    run.assert_error(5, "may or may not have happened (HTTP 500: server_error)");
    assert!(
        run.stderr
            .contains("`oauth-pkce authorize --provider acme`"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.token_requests().len(), before + 1);
    assert!(
        !h.auth.grant_revoked(),
        "the spent refresh token was not sent again"
    );
}

/// Red team R3: an authorization server slower than one ordinary attempt (15 s) is waited for
/// (the refresh has 60 s), so the chain it rotates is kept.
#[test]
fn r3_a_slow_token_endpoint_is_waited_for_and_the_chain_is_kept() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(10);
    h.auth.set_token_delay(std::time::Duration::from_secs(17));
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(h.auth.token_requests().len(), 1);
    assert!(h
        .auth
        .is_live_refresh_token(&h.secret("ACME_REFRESH_TOKEN").unwrap()));
}

#[test]
fn status_shows_masked_tokens_with_one_read() {
    let h = Harness::new(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);
    let run = h.run(&["status", "--provider", "acme"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("PROVIDER") && run.stdout.contains("acme"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&at[..4]) && run.stdout.contains(&at[at.len() - 4..]));
    run.assert_no_leak(&[&at, &rt]);
    assert_eq!(h.doppler.requests().len(), 1);

    let run = h.run(&["status", "--provider", "acme", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["provider"], "acme");
    assert_eq!(row["client_id_present"], true);
    assert_eq!(row["refresh_token_present"], true);
    assert_eq!(row["refresh_due"], false);
    assert_eq!(row["usable"], true);
    assert!((row["expires_in"].as_i64().unwrap() - 3600).abs() < 30);
    run.assert_no_leak(&[&at, &rt]);
}

#[test]
fn status_without_provider_covers_every_provider_with_anything_stored() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider("other", "");
    h.store_grant(-10); // expired, but refreshable
    let run = h.run(&["status", "--json"]);
    run.assert_code(0);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme"], "`other` has nothing stored");
    assert_eq!(rows[0]["refresh_due"], true);
    assert_eq!(h.doppler.requests().len(), 1);
}

#[test]
fn status_exits_1_when_a_provider_needs_authorization() {
    let h = Harness::new(AsConfig::jobber());
    // A client id but no tokens: not usable.
    let run = h.run(&["status", "--provider", "acme"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("oauth-pkce authorize --provider acme"),
        "{}",
        run.stderr
    );
    // Nothing at all for any provider.
    h.set_secret("ACME_CLIENT_ID", "");
    let run = h.run(&["status"]);
    run.assert_code(1);
    assert!(run.stderr.contains("Nothing is stored"), "{}", run.stderr);
}

#[test]
fn providers_lists_builtins_and_custom_files() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.run(&["providers"]);
    run.assert_code(0);
    for name in ["jobber", "github", "google", "acme"] {
        assert!(run.stdout.contains(name), "{name}: {}", run.stdout);
    }
    let run = h.run(&["providers", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let jobber = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "jobber")
        .unwrap();
    assert_eq!(jobber["client_auth"], "client_secret_post");
    assert_eq!(jobber["secret_prefix"], "JOBBER");
    assert_eq!(h.doppler.requests().len(), 0, "providers needs no Doppler");
}

#[test]
fn a_custom_file_overrides_the_builtin_of_the_same_name() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider("jobber", "");
    let run = h.run(&["providers", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let jobber = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "jobber")
        .unwrap();
    assert_eq!(
        jobber["token_url"].as_str(),
        Some(h.auth.token_url().as_str())
    );
}

/// Issue 18: `token --format` — every format goes through the same path and prints only the
/// token in that shape on stdout.
#[test]
fn token_formats_for_other_tools() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let expires_at: i64 = h.secret("ACME_TOKEN_EXPIRES_AT").unwrap().parse().unwrap();
    let run = |format: &str| {
        let run = h.run(&["token", "--provider", "acme", "--format", format]);
        run.assert_code(0);
        assert_eq!(run.stderr, "", "{format}");
        assert_eq!(
            run.stdout.lines().count(),
            1,
            "{format}: one line\n{}",
            run.stdout
        );
        run.stdout.trim_end().to_string()
    };
    assert_eq!(run("plain"), at);
    assert_eq!(run("header"), format!("Authorization: Bearer {at}"));
    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(json["access_token"], at.as_str());
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["provider"], "acme");
    assert!(
        (json["expires_at"].as_i64().unwrap() - expires_at).abs() <= 2,
        "{json}"
    );
    let headers: serde_json::Value = serde_json::from_str(&run("headers-json")).unwrap();
    assert_eq!(
        headers,
        serde_json::json!({ "Authorization": format!("Bearer {at}") })
    );
    let cred: serde_json::Value = serde_json::from_str(&run("exec-credential")).unwrap();
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(cred["kind"], "ExecCredential");
    assert_eq!(cred["status"]["token"], at.as_str());
    let stamp = cred["status"]["expirationTimestamp"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(stamp)
        .unwrap()
        .timestamp();
    assert!((parsed - expires_at).abs() <= 2, "{stamp}");
    assert!(stamp.ends_with('Z'), "{stamp}");
    h.run(&["token", "--provider", "acme", "--format", "yaml"])
        .assert_code(2);
}

/// Issue 17: token health. A refresh token's own lifetime (`refresh_token_expires_in`) is
/// stored, shown by `status --json`, warned about under 14 days, and a dead grant makes
/// `status` exit 1 with what to do; a provider's `warning` is shown on stderr.
#[test]
fn a_refresh_token_s_own_expiry_is_stored_shown_and_warned_about() {
    let h = Harness::new(AsConfig {
        refresh_token_expires_in: Some(13 * 86_400),
        warning: Some("API version 2025-04-16 is deprecated; move to 2026-05-12".into()),
        ..AsConfig::jobber()
    });
    let run = h.authorized();
    assert!(
        run.stderr
            .contains("acme says: API version 2025-04-16 is deprecated; move to 2026-05-12"),
        "{}",
        run.stderr
    );
    let at: i64 = h
        .secret("ACME_REFRESH_TOKEN_EXPIRES_AT")
        .unwrap()
        .parse()
        .unwrap();
    assert!((at - (now() + 13 * 86_400)).abs() < 30, "{at}");

    let run = h.run(&["status", "--provider", "acme"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("warning: acme: the refresh token expires in 1"),
        "{}",
        run.stderr
    );
    let json = h.run(&["status", "--provider", "acme", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rows[0]["refresh_token_expires_at"], at);

    // A refresh stores the new one's expiry too.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert!(h.secret("ACME_REFRESH_TOKEN_EXPIRES_AT").is_some());

    // Dead: status says so and exits 1, even while the access token is valid.
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &(now() - 3600).to_string());
    let run = h.run(&["status", "--provider", "acme"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("acme: the refresh token expired 1h 0m ago"),
        "{}",
        run.stderr
    );
}

/// A new sign-in whose answer says nothing of the refresh token's end leaves none stored: an
/// older grant's end would otherwise make `status` call the new grant dead once it passed.
#[test]
fn a_new_grant_drops_the_old_grant_s_refresh_token_end() {
    let h = Harness::new(AsConfig::jobber());
    let not_dead = |h: &Harness| {
        let run = h.run(&["status", "--provider", "acme"]);
        run.assert_code(0);
        assert!(
            !run.stderr.contains("refresh token expired"),
            "{}",
            run.stderr
        );
    };
    let old_end = (now() - 3600).to_string();
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &old_end);
    h.authorized();
    assert_eq!(
        h.secret("ACME_REFRESH_TOKEN_EXPIRES_AT").as_deref(),
        Some(""),
        "emptied: unknown"
    );
    not_dead(&h);

    // Without a refresh token, no end of one is reported, and nothing is dead.
    h.set_secret("ACME_REFRESH_TOKEN", "");
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &old_end);
    not_dead(&h);
}

/// Issue 17: Jobber's refusal of a spent refresh token is exit 1 (sign in again) whatever its
/// shape: `{"message": …}`, a sentence as `error`, or plain text.
#[test]
fn jobber_s_refused_refresh_token_is_exit_1_whatever_its_shape() {
    for body in [
        r#"{"message":"The provided refresh token is not valid."}"#,
        r#"{"error":"The provided refresh token is not valid."}"#,
        "The provided refresh token is not valid.",
    ] {
        let h = Harness::new(AsConfig::jobber());
        h.store_grant(10);
        h.auth.push_token_fault(401, body, 1);
        let run = h.run(&["refresh", "--provider", "acme"]);
        run.assert_error(1, "The provided refresh token is not valid.");
        assert!(
            run.stderr.contains("oauth-pkce authorize --provider acme"),
            "{body}: {}",
            run.stderr
        );
    }
}

/// Issue 17: `refresh --all --if-due` (for cron) refreshes exactly the stored providers that
/// are due, and nothing else; `refresh --all` refreshes every one.
#[test]
fn refresh_all_if_due_refreshes_exactly_the_due_providers() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(10); // acme: due
    h.write_provider("beta", "secret_prefix = \"BETA\"\n");
    let (at, rt) = h.auth.issue_grant();
    h.set_secret("BETA_CLIENT_ID", crate::support::fake_as::CLIENT_ID);
    h.set_secret("BETA_CLIENT_SECRET", crate::support::fake_as::CLIENT_SECRET);
    h.set_secret("BETA_ACCESS_TOKEN", &at);
    h.set_secret("BETA_REFRESH_TOKEN", &rt);
    h.set_secret("BETA_TOKEN_EXPIRES_AT", &(now() + 3600).to_string()); // beta: not due

    let run = h.run(&["refresh", "--all", "--if-due"]);
    run.assert_code(0);
    assert_eq!(h.auth.refreshes(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("Refreshed acme"), "{}", run.stdout);
    assert!(run.stdout.contains("Still valid beta"), "{}", run.stdout);
    assert_eq!(h.secret("BETA_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));

    let run = h.run(&["refresh", "--all"]);
    run.assert_code(0);
    assert_eq!(h.auth.refreshes(), 3, "both refreshed: {}", run.stdout);
    h.run(&["refresh", "--all", "--provider", "acme"])
        .assert_code(2);
}

/// Issue 17: a provider file's `refresh_token_lifetime` dates the refresh token when the token
/// answer does not. A sliding lifetime moves with each refresh, and `refresh --if-due` refreshes
/// a grant near its end even while the access token is valid; an absolute one stays where the
/// sign-in put it, and no refresh is spent trying to extend it.
#[test]
fn a_provider_file_s_refresh_token_lifetime_is_stored_and_a_sliding_one_kept_alive() {
    let h = Harness::new(AsConfig::jobber());
    let days = |n: i64| (now() + n * 86_400).to_string();
    let stored = |h: &Harness| -> i64 {
        let value = h.secret("ACME_REFRESH_TOKEN_EXPIRES_AT").expect("stored");
        value.parse().unwrap()
    };
    h.write_provider("acme", "refresh_token_lifetime = 864000\n"); // 10 days, sliding
    h.authorized();
    assert!(
        (stored(&h) - (now() + 864_000)).abs() < 30,
        "{}",
        stored(&h)
    );

    // Four days left (within half the lifetime), access token valid: refreshed to stay alive.
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &days(4));
    let run = h.run(&["refresh", "--all", "--if-due"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Refreshed acme"), "{}", run.stdout);
    assert_eq!(h.auth.refreshes(), 1);
    assert!(
        (stored(&h) - (now() + 864_000)).abs() < 30,
        "slid: {}",
        stored(&h)
    );
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &days(4));
    let run = h.run(&["status", "--provider", "acme"]);
    assert!(
        run.stderr
            .contains("; a refresh renews it: `oauth-pkce refresh --provider acme`"),
        "{}",
        run.stderr
    );
    // Six days left: not yet.
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &days(6));
    let run = h.run(&["refresh", "--provider", "acme", "--if-due"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Still valid acme"), "{}", run.stdout);
    assert_eq!(h.auth.refreshes(), 1);

    // Absolute: four days left, nothing a refresh could do.
    h.write_provider(
        "acme",
        "refresh_token_lifetime = 864000\nrefresh_token_lifetime_from = \"authorization\"\n",
    );
    let end = days(4);
    h.set_secret("ACME_REFRESH_TOKEN_EXPIRES_AT", &end);
    for args in [
        &["refresh", "--provider", "acme", "--if-due"][..],
        &["refresh", "--all", "--if-due"],
    ] {
        let run = h.run(args);
        run.assert_code(0);
        assert!(
            run.stdout.contains("Still valid acme"),
            "{args:?}: {}",
            run.stdout
        );
        assert_eq!(h.auth.refreshes(), 1, "{args:?}");
    }
    let run = h.run(&["status", "--provider", "acme"]);
    assert!(
        run.stderr
            .contains("expires in 3d 23h and no refresh extends it; sign in again")
            || run
                .stderr
                .contains("expires in 4d 0h and no refresh extends it; sign in again"),
        "{}",
        run.stderr
    );
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.auth.refreshes(), 2);
    assert_eq!(
        h.secret("ACME_REFRESH_TOKEN_EXPIRES_AT"),
        Some(end),
        "unmoved"
    );
}

/// Issue 17: Spotify may or may not send a new refresh token with a refresh. Each one sent is
/// stored (the old one is dead); without one the stored one is kept (it is still good); the
/// grant survives any mix of the two.
#[test]
fn a_provider_that_rotates_only_sometimes_keeps_a_working_grant() {
    let h = Harness::new(AsConfig {
        rotate_sometimes: true,
        ..AsConfig::jobber()
    });
    h.authorized();
    let mut previous = h.secret("ACME_REFRESH_TOKEN").unwrap();
    for round in 1..=4 {
        h.run(&["refresh", "--provider", "acme"]).assert_code(0);
        let now_stored = h.secret("ACME_REFRESH_TOKEN").unwrap();
        assert_eq!(now_stored != previous, round % 2 == 1, "round {round}");
        assert!(h.auth.is_live_refresh_token(&now_stored), "round {round}");
        previous = now_stored;
    }
    let run = h.run(&["token", "--provider", "acme", "--no-cache"]);
    run.assert_code(0);
    assert!(h.auth.is_live_access_token(run.stdout.trim()));
}
