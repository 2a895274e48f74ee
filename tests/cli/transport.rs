//! F2/F3: no redirect is ever followed, and oversized bodies are refused, at the token endpoint
//! and at Doppler.

use crate::support::fake_as::{AsConfig, TokenFault};
use crate::support::fake_doppler::Fault;
use crate::support::Harness;

#[test]
fn f2_a_redirect_from_the_token_endpoint_is_not_followed() {
    let h = Harness::new(AsConfig::jobber());
    let (_, rt) = h.store_grant(10);
    let elsewhere = format!("{}/token", h.doppler.url());
    h.auth.push_fault(
        TokenFault {
            status: 307,
            body: String::new(),
            headers: vec![("Location".into(), elsewhere)],
            after_processing: false,
        },
        1,
    );
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_code(5);
    assert!(
        h.doppler.requests().iter().all(|r| r.path != "/token"),
        "the redirect was followed"
    );
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").unwrap(), rt);
}

#[test]
fn f2_a_redirect_from_doppler_is_not_followed() {
    let h = Harness::new(AsConfig::jobber());
    h.set_secret("ACME_ACCESS_TOKEN", "at");
    let elsewhere = format!("{}/v3/configs/config/secrets?stolen=1", h.auth.url());
    h.doppler.push_fault(
        None,
        Fault::json(302, "moved").with_header("Location", &elsewhere),
        1,
    );
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(6);
    assert_eq!(run.stdout, "");
    assert_eq!(h.doppler.requests().len(), 1);
}

#[test]
fn f3_an_oversized_token_response_is_refused_without_showing_it() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(10);
    let huge = format!(
        r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
        "A".repeat(100 * 1024)
    );
    h.auth.push_fault(
        TokenFault {
            status: 200,
            body: huge,
            headers: vec![],
            after_processing: false,
        },
        1,
    );
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(5, "larger than 65536 bytes");
    assert!(!run.stderr.contains("AAAAAAAA"));
}

#[test]
fn f4_a_token_response_with_an_empty_access_token_is_refused() {
    let h = Harness::new(AsConfig::jobber());
    let (_, rt) = h.store_grant(10);
    h.auth.push_fault(
        TokenFault {
            status: 200,
            body: r#"{"access_token":"","token_type":"Bearer"}"#.into(),
            headers: vec![],
            after_processing: false,
        },
        1,
    );
    h.run(&["refresh", "--provider", "acme"])
        .assert_error(5, "access token is empty");
    assert_eq!(h.secret("ACME_REFRESH_TOKEN").unwrap(), rt);
}
