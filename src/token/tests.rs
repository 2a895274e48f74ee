//! Token responses, expiries, the provider-quirks adapter, authorization URLs.

use super::*;
use crate::oauth::{adapt_response, form_to_json};

fn jwt(payload: &str) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

#[test]
fn jwt_exp_is_read() {
    assert_eq!(
        jwt_exp(&jwt(r#"{"exp":1700000000,"sub":"x"}"#)),
        Some(1700000000)
    );
    assert_eq!(jwt_exp(&jwt(r#"{"sub":"x"}"#)), None);
    assert_eq!(jwt_exp("not-a-jwt"), None);
    assert_eq!(jwt_exp("a.b.c.d"), None);
}

fn parse(json: &str) -> Result<TokenSet> {
    token_set(serde_json::from_str(json).unwrap())
}

#[test]
fn rfc6749_example_response_parses_and_ignores_unknown_fields() {
    let t = parse(r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#).unwrap();
    assert_eq!(t.access_token.expose_secret(), "2YotnFZFEjr1zCsicMWpAA");
    assert_eq!(
        t.refresh_token.unwrap().expose_secret(),
        "tGzv3JOkF0XG5Qx2TlKWIA"
    );
    assert_eq!(t.expiry_source, ExpirySource::ExpiresIn);
    assert!((t.expires_at.unwrap() - now() - 3600).abs() <= 1);
}

#[test]
fn expiry_falls_back_to_jwt_then_unknown() {
    let at = jwt(r#"{"exp":2000000000}"#);
    let t = parse(&format!(r#"{{"access_token":"{at}"}}"#)).unwrap();
    assert_eq!(
        (t.expires_at, t.expiry_source),
        (Some(2000000000), ExpirySource::JwtExp)
    );
    assert!(t.refresh_token.is_none());
    let t = parse(r#"{"access_token":"opaque","token_type":"bearer"}"#).unwrap();
    assert_eq!(
        (t.expires_at, t.expiry_source),
        (None, ExpirySource::Unknown)
    );
}

#[test]
fn expires_in_as_string_and_absurd_values_are_handled() {
    let t = parse(r#"{"access_token":"a","expires_in":"120"}"#).unwrap();
    assert!((t.expires_at.unwrap() - now() - 120).abs() <= 1);
    let t = parse(r#"{"access_token":"a","expires_in":99999999999}"#).unwrap();
    assert!(t.expires_at.unwrap() - now() <= MAX_EXPIRES_IN as i64 + 1);
}

#[test]
fn empty_access_token_is_refused() {
    assert!(matches!(
        parse(r#"{"access_token":""}"#),
        Err(Error::ProviderResponse(_))
    ));
    assert!(matches!(
        parse("{\"access_token\":\"a\\nb\"}"),
        Err(Error::ProviderResponse(_))
    ));
}

#[test]
fn challenge_round_trips_into_oauth2() {
    let c = challenge_of("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(c.as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(c.method().as_str(), "S256");
}

fn provider(extra: &str) -> Provider {
    Provider::parse(
        &format!(
            "name = \"acme\"\ndisplay_name = \"Acme\"\n\
             authorization_url = \"https://acme.example/authorize\"\n\
             token_url = \"https://acme.example/token\"\n\
             client_auth = \"none\"\nsecret_prefix = \"ACME\"\n{extra}"
        ),
        "acme.toml",
    )
    .unwrap()
}

fn adapted(p: &Provider, content_type: &str, body: &str) -> (String, String) {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::CONTENT_TYPE, content_type.parse().unwrap());
    let mut body = body.as_bytes().to_vec();
    adapt_response(p, &mut headers, &mut body);
    (
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string(),
        String::from_utf8(body).unwrap(),
    )
}

#[test]
fn form_encoded_answers_become_json() {
    let (ct, body) = adapted(
        &provider(""),
        "application/x-www-form-urlencoded; charset=utf-8",
        "access_token=gho_abc&scope=repo%2Cgist&token_type=bearer",
    );
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["access_token"], "gho_abc");
    assert_eq!(v["scope"], "repo,gist");
    let (_, body) = adapted(
        &provider(""),
        "application/x-www-form-urlencoded",
        "error=bad_verification_code&error_description=The+code+passed+is+incorrect",
    );
    assert!(
        body.contains(r#""error":"bad_verification_code""#),
        "{body}"
    );
    // JSON stays as it is.
    let json = r#"{"access_token":"a"}"#;
    assert_eq!(adapted(&provider(""), "application/json", json).1, json);
}

#[test]
fn token_response_path_picks_the_nested_tokens_when_present() {
    let slack = provider("token_response_path = \"authed_user\"\n");
    let exchange = r#"{"ok":true,"access_token":"xoxb-bot","authed_user":{"id":"U1","access_token":"xoxp-user","refresh_token":"xoxe-1","expires_in":43200}}"#;
    let (_, body) = adapted(&slack, "application/json", exchange);
    let t = token_set(serde_json::from_str(&body).unwrap()).unwrap();
    assert_eq!(t.access_token.expose_secret(), "xoxp-user");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "xoxe-1");
    // A refresh answers at the top level; an error has no tokens at all.
    for top in [
        r#"{"ok":true,"access_token":"xoxp-2","refresh_token":"xoxe-2"}"#,
        r#"{"ok":false,"error":"invalid_code"}"#,
        r#"{"ok":true,"access_token":"a","authed_user":{"id":"U1"}}"#,
    ] {
        assert_eq!(adapted(&slack, "application/json", top).1, top);
    }
    let deep = provider("token_response_path = \"a.b\"\n");
    let (_, body) = adapted(
        &deep,
        "application/json",
        r#"{"a":{"b":{"access_token":"x"}}}"#,
    );
    assert_eq!(body, r#"{"access_token":"x"}"#);
}

#[test]
fn form_bodies_become_json_objects_of_strings() {
    let json = form_to_json(b"grant_type=authorization_code&code=a%2Bb&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcallback");
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["grant_type"], "authorization_code");
    assert_eq!(v["code"], "a+b");
    assert_eq!(v["redirect_uri"], "http://127.0.0.1:3000/callback");
}

#[test]
fn camel_case_token_responses_parse() {
    let t =
        parse(r#"{"accessToken":"at","refreshToken":"rt","expiresIn":1800,"tokenType":"bearer"}"#)
            .unwrap();
    assert_eq!(t.access_token.expose_secret(), "at");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt");
    assert!((t.expires_at.unwrap() - now() - 1800).abs() <= 1);
}

#[test]
fn scopes_use_the_provider_parameter_and_separator() {
    let http = Http::with_network(&Default::default()).unwrap();
    let creds = ClientCredentials {
        client_id: "id".into(),
        client_secret: None,
    };
    let state = SecretString::from("s".repeat(43));
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let url_of = |p: &Provider, scopes: &[&str]| {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        TokenEndpoint::new(p, &creds, &http)
            .authorization_url("http://127.0.0.1:3000/callback", &scopes, challenge, &state)
            .unwrap()
    };
    let param = |u: &url::Url, k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    let u = url_of(&provider(""), &["a", "b"]);
    assert_eq!(param(&u, "scope").as_deref(), Some("a b"));
    let slack = provider("scope_parameter = \"user_scope\"\nscope_separator = \",\"\n");
    let u = url_of(&slack, &["users:read", "chat:write"]);
    assert_eq!(
        param(&u, "user_scope").as_deref(),
        Some("users:read,chat:write")
    );
    assert_eq!(param(&u, "scope"), None);
    let u = url_of(&provider(""), &[]);
    assert_eq!(param(&u, "scope"), None);
    assert_eq!(param(&u, "code_challenge_method").as_deref(), Some("S256"));
}

#[test]
fn debug_of_secret_types_is_redacted() {
    let t = parse(
        r#"{"access_token":"AT-SENTINEL-1234567890","refresh_token":"RT-SENTINEL-1234567890"}"#,
    )
    .unwrap();
    let d = format!("{t:?}");
    assert!(!d.contains("SENTINEL"), "{d}");
    let c = ClientCredentials {
        client_id: "id".into(),
        client_secret: Some(SecretString::from("CS-SENTINEL")),
    };
    assert!(!format!("{c:?}").contains("CS-SENTINEL"));
    let r: ProviderTokenResponse =
        serde_json::from_str(r#"{"access_token":"AT-SENTINEL-1","refresh_token":"RT-SENTINEL-2"}"#)
            .unwrap();
    assert!(!format!("{r:?}").contains("SENTINEL"));
}

/// A public client of a provider whose token endpoint is `http://127.0.0.1:{port}/token`.
fn loopback_token_endpoint(port: u16) -> (Provider, Http, ClientCredentials) {
    let p = Provider {
        token_url: format!("http://127.0.0.1:{port}/token").parse().unwrap(),
        ..provider("")
    };
    let http = Http::with_network(&Default::default()).unwrap();
    let creds = ClientCredentials {
        client_id: "id".into(),
        client_secret: None,
    };
    (p, http, creds)
}

/// A refresh awaits its answer no longer than it is told (the lease's time left), however
/// long the grant timeout: a server that takes the request and never answers is given up on.
#[tokio::test]
async fn a_refresh_waits_for_its_answer_only_as_long_as_it_is_told() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, reads, never answers (held open until the test ends).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (p, http, creds) = loopback_token_endpoint(port);
    let endpoint = TokenEndpoint::new(&p, &creds, &http);
    let rt = SecretString::from("RT-FAKE");
    // Far below the grant's 60 s: this bound only catches a wait that ignored the limit.
    let guard = std::time::Duration::from_secs(20);
    let refresh = endpoint.refresh(&rt, std::time::Duration::from_millis(500));
    let outcome = tokio::time::timeout(guard, refresh).await;
    let err = outcome
        .expect("gave up at the limit, not the grant timeout")
        .unwrap_err();
    assert!(
        matches!(err, Error::RefreshUncertain { .. }),
        "sent, then no answer: uncertain, {err:?}"
    );
}

/// A refresh refused with 429 is resent only while a whole attempt still fits before its
/// deadline (the lease): with 3 s and a 1 s `Retry-After`, it is not resent, and the answer
/// is the unsent one (the refresh token was not spent).
#[tokio::test]
async fn a_refresh_is_not_resent_when_too_little_of_its_time_is_left() {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let (p, http, creds) = loopback_token_endpoint(port);
    let rt = SecretString::from("RT-FAKE");
    let endpoint = TokenEndpoint::new(&p, &creds, &http);
    let err = endpoint
        .refresh(&rt, std::time::Duration::from_secs(3))
        .await
        .unwrap_err();
    assert_eq!(seen.load(Ordering::SeqCst), 1, "not resent: {err:?}");
    assert!(!matches!(err, Error::RefreshUncertain { .. }), "{err:?}");
}
