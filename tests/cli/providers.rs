//! Provider quirks, end to end: the fake authorization server emulates one provider's quirk
//! (a mode of `AsConfig`), the provider file `acme.toml` says what the built-in file says for
//! that provider, and the real binary runs `authorize`, `refresh` and `status --check`.

use crate::support::fake_as::{AsConfig, ResponseStyle};
use crate::support::{browser, query_param, Harness};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The value of `name` in the i-th authorization request.
fn authorize_param(h: &Harness, i: usize, name: &str) -> Option<String> {
    h.auth.authorize_requests()[i]
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn stored_pair(h: &Harness) -> (String, String) {
    (
        h.secret("ACME_ACCESS_TOKEN").unwrap(),
        h.secret("ACME_REFRESH_TOKEN").unwrap(),
    )
}

fn expires_in(h: &Harness) -> i64 {
    h.secret("ACME_TOKEN_EXPIRES_AT")
        .unwrap()
        .parse::<i64>()
        .unwrap()
        - now()
}

/// `status --provider acme --check --json`: (exit code, the check object).
fn status_check(h: &Harness) -> (i32, serde_json::Value, String) {
    let run = h.run(&["status", "--provider", "acme", "--check", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, rows[0]["check"].clone(), run.stderr)
}

/// Refresh, and check that the rotated pair was stored and the old refresh token is dead.
fn refresh_rotates(h: &Harness) {
    let (_, old_rt) = stored_pair(h);
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    let (at, rt) = stored_pair(h);
    assert_ne!(rt, old_rt);
    assert!(h.auth.is_live_access_token(&at));
    assert!(h.auth.is_live_refresh_token(&rt));
    assert!(!h.auth.is_live_refresh_token(&old_rt));
}

#[test]
fn jobber_one_registered_callback_on_a_fixed_port_and_a_graphql_check() {
    let h = Harness::new(AsConfig::jobber());
    let callback = format!("http://localhost:{}/callback", h.port);
    h.auth.set_registered_redirect_uris(vec![callback.clone()]);
    let graphql = format!(
        "[check]\nurl = \"{}\"\nmethod = \"POST\"\nbody = '{{\"query\":\"{{ account {{ id name }} }}\"}}'\nsuccess_field = \"data.account.id\"\n[check.headers]\nContent-Type = \"application/json\"\nX-JOBBER-GRAPHQL-VERSION = \"2026-05-12\"\n",
        h.auth.graphql_url()
    );
    let head = format!(
        "redirect_host = \"localhost\"\nports = \"{}\"\nrefresh_token_rotation = \"yes\"\n",
        h.port
    );
    h.write_provider("acme", &format!("{head}{graphql}"));
    h.authorized();
    assert_eq!(
        authorize_param(&h, 0, "redirect_uri"),
        Some(callback.clone())
    );
    assert_eq!(
        authorize_param(&h, 0, "scope"),
        None,
        "scopes are set on the app"
    );
    // No expires_in: the expiry is the JWT's exp.
    assert!((expires_in(&h) - 3600).abs() < 30);

    let (code, check, _) = status_check(&h);
    assert_eq!(code, 0);
    assert_eq!(check["result"], "ok", "{check}");
    assert_eq!(check["http_status"], 200);
    let sent = h.auth.check_requests().pop().unwrap();
    let (at, _) = stored_pair(&h);
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.authorization, Some(format!("Bearer {at}")));
    assert_eq!(sent.header("x-jobber-graphql-version"), Some("2026-05-12"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert!(sent.body.contains("account"), "{}", sent.body);

    refresh_rotates(&h);
    assert_eq!(status_check(&h).1["result"], "ok");

    // Without the version header Jobber refuses the request: the check fails, exit 1.
    h.write_provider(
        "acme",
        &format!(
            "{head}{}",
            graphql.replace("X-JOBBER-GRAPHQL-VERSION = \"2026-05-12\"\n", "")
        ),
    );
    let (code, check, stderr) = status_check(&h);
    assert_eq!(
        (code, &check["result"], &check["http_status"]),
        (1, &"failed".into(), &400.into())
    );
    assert!(stderr.contains("token check failed"), "{stderr}");

    // The one port busy: a clear error naming it, and nothing sent to Jobber.
    let _busy = std::net::TcpListener::bind(("127.0.0.1", h.port)).unwrap();
    let before = h.auth.authorize_requests().len();
    h.run(&["authorize", "--provider", "acme", "--no-browser"])
        .assert_error(4, &h.port.to_string());
    assert_eq!(h.auth.authorize_requests().len(), before);
}

#[test]
fn a_redirect_uri_that_is_not_registered_is_refused_by_an_exact_matching_provider() {
    let h = Harness::new(AsConfig::jobber());
    h.auth
        .set_registered_redirect_uris(vec![format!("http://localhost:{}/callback", h.port)]);
    // The default harness file uses 127.0.0.1: not the registered URL.
    let (running, url) = h.start_authorize(2);
    let page = browser::open(&url);
    assert_eq!(page.status, 400);
    assert!(page.body.contains("redirect_uri_mismatch"), "{}", page.body);
    running.finish().assert_error(4, "no authorization arrived");
    assert_eq!(h.auth.code_exchanges(), 0);
}

#[test]
fn github_json_on_request_form_otherwise_and_errors_with_http_200() {
    let h = Harness::new(AsConfig::github());
    h.authorized();
    let req = &h.auth.token_requests()[0];
    assert_eq!(req.accept.as_deref(), Some("application/json"));
    assert!(
        req.param("client_secret").is_some(),
        "GitHub needs the secret"
    );
    assert!((expires_in(&h) - 28800).abs() < 30);
    refresh_rotates(&h);

    // An unknown refresh token: HTTP 200 with error=bad_refresh_token means re-authorize.
    h.set_secret("ACME_REFRESH_TOKEN", "ghr_not-known-to-the-server");
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(1, "bad_refresh_token");
    run.assert_error(1, "oauth-pkce authorize --provider acme");

    // A provider that answers forms whatever it is asked: read just the same.
    let h = Harness::new(AsConfig {
        response_style: ResponseStyle::Form,
        ..AsConfig::github()
    });
    h.authorized();
    assert!(h.auth.is_live_access_token(&stored_pair(&h).0));
    assert!((expires_in(&h) - 28800).abs() < 30);
    refresh_rotates(&h);
    h.set_secret("ACME_CLIENT_SECRET", "wrong-secret");
    h.run(&["refresh", "--provider", "acme"])
        .assert_error(5, "invalid_client");
}

#[test]
fn slack_user_scopes_with_commas_the_user_token_from_authed_user_and_ok_false() {
    let h = Harness::new(AsConfig::slack());
    let extra = format!(
        "scopes = [\"users:read\", \"chat:write\"]\nscope_parameter = \"user_scope\"\nscope_separator = \",\"\ntoken_response_path = \"authed_user\"\n[check]\nurl = \"{}\"\nmethod = \"POST\"\nsuccess_field = \"ok\"\n",
        h.auth.slack_auth_test_url()
    );
    h.write_provider("acme", &extra);
    let run = h.authorized();
    assert_eq!(
        authorize_param(&h, 0, "user_scope").as_deref(),
        Some("users:read,chat:write")
    );
    assert_eq!(authorize_param(&h, 0, "scope"), None, "no bot scopes");
    let (at, _) = stored_pair(&h);
    assert!(
        h.auth.is_live_access_token(&at),
        "the user token, not the bot's"
    );
    assert!(!at.starts_with("xoxb-"));
    assert!((expires_in(&h) - 43200).abs() < 30);
    let req = &h.auth.token_requests()[0];
    assert!(req.param("client_secret").is_none() && req.authorization.is_none());
    run.assert_no_leak(&[&at]);

    // Refresh answers at the top level.
    refresh_rotates(&h);
    let (code, check, _) = status_check(&h);
    assert_eq!((code, &check["result"]), (0, &"ok".into()));

    // auth.test answers 200 with "ok": false for a dead token: the check fails.
    h.set_secret("ACME_ACCESS_TOKEN", "xoxp-dead");
    let (code, check, _) = status_check(&h);
    assert_eq!(
        (code, &check["result"], &check["http_status"]),
        (1, &"failed".into(), &200.into())
    );

    // A refused refresh token: 200 {"ok":false,"error":"invalid_refresh_token"} → exit 1.
    h.set_secret("ACME_REFRESH_TOKEN", "xoxe-1-not-known");
    h.run(&["refresh", "--provider", "acme"])
        .assert_error(1, "invalid_refresh_token");
}

#[test]
fn atlassian_json_token_requests_audience_and_offline_access() {
    let h = Harness::new(AsConfig::atlassian());
    let file = "scopes = [\"read:jira-work\", \"offline_access\"]\ntoken_request_format = \"json\"\n[authorization_params]\naudience = \"api.atlassian.com\"\nprompt = \"consent\"\n";
    h.write_provider("acme", file);
    h.authorized();
    assert_eq!(
        authorize_param(&h, 0, "audience").as_deref(),
        Some("api.atlassian.com")
    );
    assert_eq!(authorize_param(&h, 0, "prompt").as_deref(), Some("consent"));
    let req = &h.auth.token_requests()[0];
    assert_eq!(req.content_type.as_deref(), Some("application/json"));
    assert_eq!(req.param("grant_type"), Some("authorization_code"));
    assert!(req.param("client_secret").is_some() && req.param("code_verifier").is_some());
    refresh_rotates(&h);
    assert_eq!(
        h.auth
            .token_requests()
            .last()
            .unwrap()
            .content_type
            .as_deref(),
        Some("application/json")
    );

    // Without offline_access there is no refresh token, and authorize says so.
    let run = h.authorize(&["--scope", "read:jira-work"]);
    run.assert_code(0);
    assert!(run.stderr.contains("no refresh token"), "{}", run.stderr);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(""));

    // A form body is refused by a JSON-only token endpoint.
    h.write_provider(
        "acme",
        &file.replace("token_request_format = \"json\"\n", ""),
    );
    let run = h.authorize(&[]);
    run.assert_error(5, "application/json");
}

#[test]
fn notion_basic_credentials_with_a_json_body() {
    let h = Harness::new(AsConfig::notion());
    h.write_provider(
        "acme",
        "token_request_format = \"json\"\n[authorization_params]\nowner = \"user\"\n",
    );
    h.authorized();
    assert_eq!(authorize_param(&h, 0, "owner").as_deref(), Some("user"));
    let req = &h.auth.token_requests()[0];
    assert_eq!(req.content_type.as_deref(), Some("application/json"));
    assert!(req
        .authorization
        .as_deref()
        .unwrap_or("")
        .starts_with("Basic "));
    assert!(req.param("client_secret").is_none());
    refresh_rotates(&h);
}

#[test]
fn google_needs_offline_access_params_for_a_refresh_token_and_keeps_it_on_refresh() {
    let h = Harness::new(AsConfig::google());
    let run = h.authorized();
    assert!(run.stderr.contains("no refresh token"), "{}", run.stderr);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(""));

    h.write_provider(
        "acme",
        "[authorization_params]\naccess_type = \"offline\"\nprompt = \"consent\"\n",
    );
    h.authorized();
    assert_eq!(
        authorize_param(&h, 1, "access_type").as_deref(),
        Some("offline")
    );
    let (_, rt) = stored_pair(&h);
    assert!(h.auth.is_live_refresh_token(&rt));
    // Google answers a refresh without a refresh token: the stored one stays.
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert_eq!(stored_pair(&h).1, rt);
    assert!((expires_in(&h) - 3599).abs() < 30);
}

#[test]
fn spotify_accepts_the_loopback_ip_literal_and_refuses_localhost() {
    let h = Harness::new(AsConfig::spotify());
    h.authorized();
    let redirect = authorize_param(&h, 0, "redirect_uri").unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");

    h.write_provider("acme", "redirect_host = \"localhost\"\n");
    let (running, url) = h.start_authorize(2);
    assert!(query_param(&url, "redirect_uri")
        .unwrap()
        .starts_with("http://localhost:"));
    let page = browser::open(&url);
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("localhost is not allowed"),
        "{}",
        page.body
    );
    running.finish().assert_code(4);
}

#[test]
fn gitlab_refresh_sends_the_redirect_uri() {
    let h = Harness::new(AsConfig::gitlab());
    h.write_provider("acme", "refresh_sends_redirect_uri = true\n");
    h.authorized();
    refresh_rotates(&h);
    let refresh = h.auth.token_requests().pop().unwrap();
    assert_eq!(
        refresh.param("redirect_uri").map(str::to_string),
        Some(format!("http://127.0.0.1:{}/callback", h.port))
    );
    assert!(refresh.param("client_secret").is_none());
    // Without the key the refresh lacks it, and GitLab's documented request is refused.
    h.write_provider("acme", "");
    h.run(&["refresh", "--provider", "acme"])
        .assert_error(5, "redirect_uri is missing");
}

#[test]
fn salesforce_without_expires_in_nor_token_type_has_an_unknown_expiry() {
    let h = Harness::new(AsConfig {
        omit_token_type: true,
        ..AsConfig::salesforce()
    });
    let run = h.authorized();
    assert!(run.stderr.contains("expiry is unknown"), "{}", run.stderr);
    assert!(run.stdout.contains("unknown"), "{}", run.stdout);
    assert_eq!(h.secret("ACME_TOKEN_EXPIRES_AT").as_deref(), Some(""));
    let (at, _) = stored_pair(&h);
    // An unknown expiry is not due: `token` hands out the stored token without refreshing.
    let token = h.run(&["token", "--provider", "acme"]);
    token.assert_code(0);
    assert_eq!(token.stdout, format!("{at}\n"));
    assert_eq!(h.auth.refreshes(), 0);
    // `refresh` works on demand.
    refresh_rotates(&h);
    let status = h.run(&["status", "--provider", "acme", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(rows[0]["expires_at"], serde_json::Value::Null);
    assert_eq!(rows[0]["usable"], true);
}

#[test]
fn hubspot_camel_case_answers_are_read() {
    let h = Harness::new(AsConfig::hubspot());
    h.authorized();
    let (at, rt) = stored_pair(&h);
    assert!(h.auth.is_live_access_token(&at) && h.auth.is_live_refresh_token(&rt));
    assert!((expires_in(&h) - 1800).abs() < 30);
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert!(h.auth.is_live_access_token(&stored_pair(&h).0));
}

#[test]
fn twitch_message_errors_and_the_oauth_scheme_of_its_validate_check() {
    let h = Harness::new(AsConfig::twitch());
    h.write_provider(
        "acme",
        &format!(
            "[check]\nurl = \"{}\"\nauth_scheme = \"OAuth\"\n",
            h.auth.twitch_validate_url()
        ),
    );
    h.authorized();
    let (code, check, _) = status_check(&h);
    assert_eq!((code, &check["result"]), (0, &"ok".into()));
    let (at, _) = stored_pair(&h);
    assert_eq!(
        h.auth.check_requests().pop().unwrap().authorization,
        Some(format!("OAuth {at}"))
    );
    refresh_rotates(&h);
    h.set_secret("ACME_REFRESH_TOKEN", "not-known-to-twitch");
    h.run(&["refresh", "--provider", "acme"])
        .assert_error(1, "Invalid refresh token");
}

#[test]
fn comma_separated_scopes_in_the_scope_parameter() {
    let h = Harness::new(AsConfig {
        scope_separator: ',',
        ..AsConfig::jobber()
    });
    h.write_provider(
        "acme",
        "scopes = [\"read\", \"write\"]\nscope_separator = \",\"\n",
    );
    h.authorized();
    assert_eq!(
        authorize_param(&h, 0, "scope").as_deref(),
        Some("read,write")
    );
    // --scope replaces them, joined the same way.
    h.authorize(&["--scope", "read", "--scope", "admin"])
        .assert_code(0);
    assert_eq!(
        authorize_param(&h, 1, "scope").as_deref(),
        Some("read,admin")
    );
}

#[test]
fn providers_without_a_loopback_flow_refuse_before_anything_else() {
    let h = Harness::new(AsConfig::jobber());
    for (name, reason, alternative) in [
        ("stripe", "secret key", "restricted API key"),
        ("quickbooks", "https redirect URIs", "quickbooks-sandbox"),
    ] {
        // Not even a Doppler token is needed to be told.
        let out = h
            .cmd()
            .env_remove("DOPPLER_TOKEN")
            .args(["authorize", "--provider", name])
            .output()
            .unwrap();
        let run = crate::support::Run::from(out);
        run.assert_error(3, "cannot be authorized through a loopback redirect");
        run.assert_error(3, reason);
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("hint: ") && l.contains(alternative)),
            "{}",
            run.stderr
        );
    }
    assert_eq!(h.doppler.requests().len(), 0);

    // A custom file can say so too; tokens stored by other means still refresh.
    h.write_provider(
        "acme",
        "[loopback_unsupported]\nreason = \"production needs an https redirect.\"\nalternative = \"store the tokens yourself\"\n",
    );
    h.run(&["authorize", "--provider", "acme", "--no-browser"])
        .assert_error(3, "production needs an https redirect");
    assert_eq!(h.auth.authorize_requests().len(), 0);
    let (at, rt) = h.auth.issue_grant();
    h.set_secret("ACME_ACCESS_TOKEN", &at);
    h.set_secret("ACME_REFRESH_TOKEN", &rt);
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
}

#[test]
fn providers_shows_rotation_and_what_limits_a_cli_flow() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.run(&["providers"]);
    run.assert_code(0);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row:\n{}", run.stdout))
            .to_string()
    };
    assert!(run.stdout.starts_with("NAME"), "{}", run.stdout);
    assert!(run.stdout.contains("REGISTER REDIRECT URI"));
    assert!(line("jobber").contains(" yes "), "{}", line("jobber"));
    assert!(line("jobber").ends_with("http://localhost:3000/callback"));
    // The URI to register, never a range nobody can register.
    assert!(!run.stdout.contains("3000-3010"), "{}", run.stdout);
    assert!(line("github").contains("app setting"));
    assert!(line("stripe").contains("no loopback flow"));
    assert!(run.stdout.contains("`oauth-pkce providers --wide`"));

    let wide = h.run(&["providers", "--wide"]);
    wide.assert_code(0);
    assert!(
        wide.stdout
            .contains("stripe:\n  Stripe (Connect), from built-in providers/stripe.toml."),
        "{}",
        wide.stdout
    );
    assert!(wide.stdout.contains("No loopback flow:"), "{}", wide.stdout);

    let run = h.run(&["providers", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let get = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(get("jobber")["refresh_token_rotation"], "yes");
    assert_eq!(get("jobber")["ports"], "3000");
    assert_eq!(get("google")["refresh_token_rotation"], "no");
    assert_eq!(get("dropbox")["refresh_token_rotation"], "unknown");
    assert!(get("slack")["limitations"]
        .as_str()
        .unwrap()
        .contains("PKCE"));
    assert!(get("stripe")["loopback_unsupported"]["alternative"]
        .as_str()
        .unwrap()
        .contains("restricted API key"));
    assert!(get("acme")["loopback_unsupported"].is_null());
    assert_eq!(get("acme")["refresh_token_rotation"], "unknown");
}

#[test]
fn status_check_reports_per_provider_and_fails_on_a_refused_token() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider(
        "acme",
        &format!("[check]\nurl = \"{}\"\n", h.auth.userinfo_url()),
    );
    h.write_provider("other", ""); // no [check]
    h.authorized();
    h.set_secret("OTHER_CLIENT_ID", "x");
    h.set_secret("OTHER_REFRESH_TOKEN", "y");

    // Without --check: no check column, no check field, no check request.
    let run = h.run(&["status"]);
    run.assert_code(0);
    assert!(!run.stdout.contains("CHECK"), "{}", run.stdout);
    let run = h.run(&["status", "--json"]);
    assert!(!run.stdout.contains("\"check\""), "{}", run.stdout);
    assert_eq!(h.auth.userinfo_requests(), 0);

    let run = h.run(&["status", "--check"]);
    run.assert_code(0);
    assert!(run.stdout.contains("CHECK"), "{}", run.stdout);
    assert!(run.stdout.contains("ok (200)"), "{}", run.stdout);
    assert!(run.stdout.contains(" skipped"), "{}", run.stdout);
    assert_eq!(h.auth.userinfo_requests(), 1);
    let (at, rt) = stored_pair(&h);
    run.assert_no_leak(&[&at, &rt]);

    let run = h.run(&["status", "--check", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["provider"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("acme")["check"]["result"], "ok");
    assert_eq!(row("other")["check"]["result"], "skipped");
    assert!(row("other")["check"]["detail"]
        .as_str()
        .unwrap()
        .contains("[check]"));

    // An expired token is not sent (it could only fail); status stays 0: it can be refreshed.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() - 10).to_string());
    let (code, check, _) = status_check(&h);
    assert_eq!((code, &check["result"]), (0, &"skipped".into()));
    assert!(check["detail"].as_str().unwrap().contains("expired"));
    assert_eq!(h.auth.userinfo_requests(), 2);

    // A token the provider refuses: the check fails, status exits 1 and says what to do.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() + 3600).to_string());
    h.set_secret("ACME_ACCESS_TOKEN", "revoked-or-unknown-token");
    let run = h.run(&["status", "--check"]);
    run.assert_code(1);
    assert!(run.stdout.contains("FAILED (401)"), "{}", run.stdout);
    assert!(
        run.stderr.contains("oauth-pkce refresh --provider acme"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("revoked-or-unknown-token"));
}

/// Issue 15: `providers` (narrow and `--wide`) and `status` fit an 80-column terminal.
#[test]
fn providers_and_status_fit_80_columns() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let fits = |what: &str, text: &str| {
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{what}: {} columns:\n{line}",
                line.chars().count()
            );
        }
    };
    let env = [("COLUMNS", "80")];
    for args in [
        &["providers"][..],
        &["providers", "--wide"],
        &["status"],
        &["status", "--check"],
    ] {
        let run = h.run_env(&env, args);
        assert!(!run.stdout.is_empty(), "{args:?}");
        fits(&args.join(" "), &run.stdout);
        fits(&args.join(" "), &run.stderr);
    }
}

/// Issue 17: PKCE can be switched off per provider (`pkce = false`) for a server that does not
/// take it: no challenge in the authorization request, no verifier in the exchange, a warning.
#[test]
fn pkce_can_be_switched_off_for_a_provider_that_does_not_take_it() {
    let h = Harness::new(AsConfig {
        no_pkce: true,
        ..AsConfig::jobber()
    });
    h.write_provider("acme", "pkce = false\n");
    let run = h.authorized();
    assert!(
        run.stderr.contains("PKCE is off for acme"),
        "{}",
        run.stderr
    );
    assert_eq!(authorize_param(&h, 0, "code_challenge"), None);
    assert_eq!(authorize_param(&h, 0, "code_challenge_method"), None);
    let exchange = &h.auth.token_requests()[0];
    assert_eq!(exchange.param("code_verifier"), None);
    assert!(h.secret("ACME_REFRESH_TOKEN").is_some());
    // By default PKCE is sent, S256.
    let h = Harness::new(AsConfig::jobber());
    let run = h.authorized();
    assert!(!run.stderr.contains("PKCE is off"));
    assert_eq!(
        authorize_param(&h, 0, "code_challenge_method").as_deref(),
        Some("S256")
    );
}
