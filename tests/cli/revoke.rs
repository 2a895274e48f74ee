//! `revoke` (G9, RFC 7009): the refresh token then the access token revoked at the provider's
//! revocation endpoint, then the token secrets emptied in Doppler in one write; nothing
//! removed when the provider fails; `--local-only`; read-only tokens; missing client ids.

use crate::support::fake_as::{AsConfig, BodyFormat, TokenFault, CLIENT_ID, CLIENT_SECRET};
use crate::support::{Harness, Running, RO_TOKEN};

/// A harness whose provider has `revocation_url` pointing at the fake AS.
fn harness(cfg: AsConfig) -> Harness {
    let h = Harness::new(cfg);
    h.write_provider(
        "acme",
        &format!("revocation_url = \"{}\"\n", h.auth.revoke_url()),
    );
    h
}

fn fault(status: u16, body: &str, headers: &[(&str, &str)]) -> TokenFault {
    TokenFault {
        status,
        body: body.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        after_processing: false,
    }
}

#[test]
fn g9_revoke_revokes_the_refresh_token_then_the_access_token_and_empties_doppler_in_one_write() {
    let h = harness(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        "Revoked acme: refresh token and access token revoked at the provider; tokens removed from Doppler (the project/config of the service token)"
    );
    run.assert_no_leak(&[&at, &rt, CLIENT_SECRET]);

    // RFC 7009 §2.1: form body, token + hint, the provider's client authentication (post).
    let requests = h.auth.revoke_requests();
    assert_eq!(requests.len(), 2);
    for (req, (token, hint)) in requests
        .iter()
        .zip([(&rt, "refresh_token"), (&at, "access_token")])
    {
        assert_eq!(req.param("token"), Some(token.as_str()));
        assert_eq!(req.param("token_type_hint"), Some(hint));
        assert_eq!(req.param("client_id"), Some(CLIENT_ID));
        assert_eq!(req.param("client_secret"), Some(CLIENT_SECRET));
        assert!(req.authorization.is_none());
        assert!(req
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded"));
    }
    assert!(!h.auth.is_live_refresh_token(&rt));
    assert!(!h.auth.is_live_access_token(&at));
    assert_eq!(h.auth.grants_revoked_by_request(), 1);

    // Doppler: the token secrets are empty, the lease released, the client credentials kept;
    // 1 read, 1 lease write, 1 write.
    for name in [
        "ACME_ACCESS_TOKEN",
        "ACME_REFRESH_TOKEN",
        "ACME_TOKEN_EXPIRES_AT",
    ] {
        assert_eq!(h.secret(name).as_deref(), Some(""), "{name}");
    }
    assert!(h.lease_is_free(), "{:?}", h.secret("ACME_REFRESH_LEASE"));
    assert_eq!(h.secret("ACME_CLIENT_ID").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        h.secret("ACME_CLIENT_SECRET").as_deref(),
        Some(CLIENT_SECRET)
    );
    assert_eq!((h.doppler.reads(), h.doppler.writes()), (1, 2));
    let last = h.doppler.requests().pop().unwrap();
    assert!(
        last.body.contains("originalValue"),
        "the clearing write is a compare-and-swap on the refresh token and the lease"
    );

    // Afterwards: nothing usable; a second revoke has nothing to do.
    h.run(&["token", "--provider", "acme"])
        .assert_error(1, "oauth-pkce authorize --provider acme");
    let run = h.run(&["revoke", "--provider", "acme", "--json"]);
    run.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["nothing_stored"], true);
    assert_eq!(json["doppler_cleared"], false);
    assert_eq!(h.auth.revoke_requests().len(), 2, "nothing sent again");
}

#[test]
fn client_secret_basic_goes_in_the_authorization_header() {
    let h = harness(AsConfig::basic());
    let (_, rt) = h.store_grant(3600);
    let run = h.run(&["revoke", "--provider", "acme", "--json"]);
    run.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["revoked_at_provider"],
        serde_json::json!(["refresh_token", "access_token"])
    );
    assert_eq!(json["doppler_cleared"], true);
    let req = &h.auth.revoke_requests()[0];
    assert!(req.authorization.as_deref().unwrap().starts_with("Basic "));
    assert_eq!(req.param("client_secret"), None);
    assert!(!h.auth.is_live_refresh_token(&rt));
}

#[test]
fn g9_a_revocation_endpoint_that_fails_leaves_doppler_as_it_was_and_exits_5() {
    let h = harness(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);

    // Refused (RFC 6749 §5.2 error): not retried.
    h.auth.push_revoke_fault(
        fault(
            401,
            r#"{"error":"invalid_client","error_description":"unknown client"}"#,
            &[],
        ),
        1,
    );
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_error(
        5,
        "did not revoke the refresh token: invalid_client (unknown client)",
    );
    assert!(
        run.stderr.contains("nothing was removed from Doppler")
            && run.stderr.contains("--local-only"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    run.assert_no_leak(&[&at, &rt]);
    assert_eq!(h.auth.revoke_requests().len(), 1);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));
    assert_eq!(h.secret("ACME_ACCESS_TOKEN").as_deref(), Some(at.as_str()));
    assert!(h.lease_is_free(), "lease released");
    assert!(h.auth.is_live_refresh_token(&rt));

    // 503 with Retry-After (RFC 7009 §2.2.1): retried within the budget, then reported; the
    // client "must assume the token still exists", so Doppler keeps it.
    let before = h.auth.revoke_requests().len();
    // Exactly the attempts of one logical request (http::MAX_ATTEMPTS).
    h.auth
        .push_revoke_fault(fault(503, "{}", &[("Retry-After", "0")]), 4);
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_error(5, "HTTP 503");
    assert_eq!(h.auth.revoke_requests().len() - before, 4, "retried");
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));

    // One 503, then success: retried and done.
    h.auth
        .push_revoke_fault(fault(503, "{}", &[("Retry-After", "1")]), 1);
    h.run(&["revoke", "--provider", "acme"]).assert_code(0);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(""));
    assert!(!h.auth.is_live_refresh_token(&rt));
}

#[test]
fn an_unreachable_revocation_endpoint_is_a_provider_error() {
    let h = Harness::new(AsConfig::jobber());
    // A port nothing listens on (the fake AS's own port, once it is gone, is not reliable).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/revoke", closed.local_addr().unwrap());
    drop(closed);
    h.write_provider("acme", &format!("revocation_url = \"{url}\"\n"));
    let (_, rt) = h.store_grant(3600);
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_error(5, "could not be reached");
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));
}

#[test]
fn local_only_and_providers_without_an_endpoint_only_empty_doppler() {
    let h = harness(AsConfig::jobber());
    let (_, rt) = h.store_grant(3600);
    let run = h.run(&["revoke", "--provider", "acme", "--local-only"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("not revoked at the provider (--local-only)"),
        "{}",
        run.stdout
    );
    assert!(h.auth.revoke_requests().is_empty());
    assert!(
        h.auth.is_live_refresh_token(&rt),
        "the provider was not asked"
    );
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(""));

    // No revocation_url: Doppler is emptied with a warning that the grant stays live.
    h.write_provider("acme", "");
    let (_, rt) = h.store_grant(3600);
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("warning: Acme has no revocation endpoint"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("no revocation_url"), "{}", run.stdout);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(""));
    assert!(h.auth.is_live_refresh_token(&rt));
}

#[test]
fn a_read_only_doppler_token_fails_before_the_provider_is_asked() {
    let h = harness(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);
    let run = Running::spawn(h.cmd().env("DOPPLER_TOKEN", RO_TOKEN).args([
        "revoke",
        "--provider",
        "acme",
    ]))
    .finish();
    run.assert_error(6, "cannot write");
    assert!(h.auth.revoke_requests().is_empty());
    assert!(h.auth.is_live_refresh_token(&rt));
    assert_eq!(h.secret("ACME_ACCESS_TOKEN").as_deref(), Some(at.as_str()));
}

#[test]
fn a_missing_client_id_is_a_configuration_error_and_changes_nothing() {
    let h = harness(AsConfig::jobber());
    let (_, rt) = h.store_grant(3600);
    h.set_secret("ACME_CLIENT_ID", "");
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_error(3, "ACME_CLIENT_ID");
    assert!(h.auth.revoke_requests().is_empty());
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));
    assert!(h.lease_is_free(), "lease released");
}

#[test]
fn only_an_access_token_stored_is_revoked_alone() {
    let h = harness(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);
    h.set_secret("ACME_REFRESH_TOKEN", "");
    h.run(&["revoke", "--provider", "acme"]).assert_code(0);
    let requests = h.auth.revoke_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].param("token_type_hint"), Some("access_token"));
    assert!(!h.auth.is_live_access_token(&at));
    assert!(
        h.auth.is_live_refresh_token(&rt),
        "only the access token was revoked"
    );
    assert_eq!(h.secret("ACME_ACCESS_TOKEN").as_deref(), Some(""));
}

/// Issue 17: Notion's and QuickBooks' revocation takes `{"token": …}` as JSON
/// (`revocation_body = "json"`), with the client in the Basic header.
#[test]
fn a_json_revocation_body_for_providers_that_document_one() {
    let h = Harness::new(AsConfig {
        revoke_json: true,
        ..AsConfig::basic()
    });
    h.authorized();
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    h.write_provider(
        "acme",
        &format!(
            "revocation_url = \"{}\"\nrevocation_body = \"json\"\n",
            h.auth.revoke_url()
        ),
    );
    h.run(&["revoke", "--provider", "acme"]).assert_code(0);
    let first = &h.auth.revoke_requests()[0];
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.param("token"), Some(rt.as_str()));
    assert_eq!(first.param("token_type_hint"), None);
    assert!(first
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic ")));
    assert!(
        !h.auth.is_live_refresh_token(&rt),
        "revoked at the provider"
    );
}

/// Issue 17: Notion wants a `Notion-Version` header on its token and revocation endpoints
/// (and a JSON revocation body): a provider file's `[token_headers]` sends it to each.
/// The tokens sent to the revocation endpoint since its `before`-th request.
fn tokens_sent_since(h: &Harness, before: usize) -> Vec<String> {
    h.auth.revoke_requests()[before..]
        .iter()
        .filter_map(|r| r.param("token").map(str::to_string))
        .collect()
}

#[test]
fn token_headers_go_to_the_token_and_revocation_endpoints() {
    let h = Harness::new(AsConfig {
        revoke_json: true,
        token_body: BodyFormat::Json,
        required_header: Some(("Notion-Version", "2026-03-11")),
        ..AsConfig::basic()
    });
    h.write_provider("acme", "token_request_format = \"json\"\n");
    let run = h.authorize(&[]);
    assert_ne!(run.code, 0, "refused without the header");
    assert!(
        run.stderr
            .contains("the Notion-Version header must be 2026-03-11"),
        "{}",
        run.stderr
    );

    h.write_provider(
        "acme",
        &format!(
            "token_request_format = \"json\"\nrevocation_url = \"{}\"\n\
             revocation_body = \"json\"\n[token_headers]\nNotion-Version = \"2026-03-11\"\n",
            h.auth.revoke_url()
        ),
    );
    h.authorized();
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    h.run(&["revoke", "--provider", "acme"]).assert_code(0);
    assert!(
        !h.auth.is_live_refresh_token(&rt),
        "revoked at the provider"
    );
    assert_eq!(h.auth.refreshes(), 1);
    assert!(h
        .auth
        .revoke_requests()
        .iter()
        .all(|r| r.required_header.is_some()));

    // Notion's preset: only the access token goes to the revocation endpoint.
    h.write_provider(
        "acme",
        &format!(
            "token_request_format = \"json\"\nrevocation_url = \"{}\"\n\
             revocation_body = \"json\"\nrevoke_refresh_token = false\n\
             [token_headers]\nNotion-Version = \"2026-03-11\"\n",
            h.auth.revoke_url()
        ),
    );
    h.authorized();
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    let before = h.auth.revoke_requests().len();
    h.run(&["revoke", "--provider", "acme"]).assert_code(0);
    assert_eq!(tokens_sent_since(&h, before), [at]);

    // Only a refresh token stored: nothing to send, so nothing is removed either (the refresh
    // token is the one way left to get an access token to revoke): exit 5, with the way out.
    h.authorized();
    let rt = h.secret("ACME_REFRESH_TOKEN").unwrap();
    h.set_secret("ACME_ACCESS_TOKEN", "");
    let before = h.auth.revoke_requests().len();
    let run = h.run(&["revoke", "--provider", "acme"]);
    run.assert_error(5, "revokes only access tokens and none is stored");
    assert!(
        run.stderr
            .contains("run `oauth-pkce refresh --provider acme`"),
        "{}",
        run.stderr
    );
    assert_eq!(h.auth.revoke_requests().len(), before);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(rt.as_str()));
    // As the hint says: a refresh, then revoke sends the new access token.
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    h.run(&["revoke", "--provider", "acme"]).assert_code(0);
    assert_eq!(tokens_sent_since(&h, before), [at]);
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").as_deref(), Some(""));
}
