//! Self-tests of the test support: the fake authorization server is as strict as the
//! integration tests assume (a fake that accepts anything proves nothing), and the raw HTTP
//! client and the scripted browser do what they say.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::support::browser;
use crate::support::fake_as::{self, AsConfig, ClientAuth, FakeAuthServer, TokenFault};
use crate::support::http::{self, Response};

const REDIRECT: &str = "http://127.0.0.1:43999/callback";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn authorize_url(server: &FakeAuthServer, params: &[(&str, &str)]) -> String {
    format!("{}?{}", server.authorize_url(), http::form_body(params))
}

/// A valid authorization request's parameters for this redirect URI, state and challenge.
fn valid_params<'a>(
    redirect_uri: &'a str,
    state: &'a str,
    challenge: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", fake_as::CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("scope", "read write"),
    ]
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).expect("Location is a URL");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs `/authorize` for `REDIRECT`: (code, verifier).
fn get_code(server: &FakeAuthServer) -> (String, String) {
    let (verifier, challenge) = fake_as::pkce_pair();
    let location = browser::location_of(&authorize_url(
        server,
        &valid_params(REDIRECT, "st", &challenge),
    ));
    (
        query_param(&location, "code").expect("code in Location"),
        verifier,
    )
}

fn post_form(
    server: &FakeAuthServer,
    headers: &[(&str, &str)],
    pairs: &[(&str, &str)],
) -> Response {
    http::request("POST", &server.token_url(), headers, http::form_body(pairs))
}

fn basic_header(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// A token request authenticated the way `cfg` requires.
fn token_call(server: &FakeAuthServer, cfg: &AsConfig, params: &[(&str, &str)]) -> Response {
    let mut pairs = params.to_vec();
    let mut headers = vec![FORM, ("Accept", "application/json")];
    let basic;
    match cfg.auth {
        ClientAuth::Post => {
            pairs.push(("client_id", &cfg.client_id));
            pairs.push(("client_secret", cfg.client_secret.as_deref().unwrap()));
        }
        ClientAuth::None => pairs.push(("client_id", &cfg.client_id)),
        ClientAuth::Basic => {
            basic = basic_header(&cfg.client_id, cfg.client_secret.as_deref().unwrap());
            headers.push(("Authorization", &basic));
        }
    }
    post_form(server, &headers, &pairs)
}

fn exchange(server: &FakeAuthServer, cfg: &AsConfig, code: &str, verifier: &str) -> Response {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    token_call(server, cfg, &params)
}

fn refresh(server: &FakeAuthServer, cfg: &AsConfig, rt: &str) -> Response {
    token_call(
        server,
        cfg,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
}

#[track_caller]
fn assert_oauth_error(response: &Response, status: u16, error: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.json()["error"], error, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

fn field(response: &Response, name: &str) -> String {
    response.json()[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {}", response.body))
        .to_string()
}

fn userinfo(server: &FakeAuthServer, at: &str) -> u16 {
    http::get(
        &server.userinfo_url(),
        &[("Authorization", &format!("Bearer {at}"))],
    )
    .status
}

#[test]
fn fake_as_code_flow_issues_jobber_like_tokens() {
    let cfg = AsConfig::jobber();
    let server = FakeAuthServer::start(cfg.clone());
    let (code, verifier) = get_code(&server);
    assert!(code.starts_with("CODE-SENTINEL-"), "{code}");

    let response = exchange(&server, &cfg, &code, &verifier);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let body = response.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    assert!(
        body.get("expires_in").is_none(),
        "Jobber sends no expires_in: {body}"
    );
    let (at, rt) = (
        field(&response, "access_token"),
        field(&response, "refresh_token"),
    );
    assert!(rt.starts_with("RT-SENTINEL-"), "{rt}");

    let claims = fake_as::decode_jwt_claims(&at).expect("the access token is a JWT");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().expect("numeric exp");
    assert!(
        (now + 3590..=now + 3610).contains(&exp),
        "exp {exp}, now {now}"
    );
    assert!(claims["jti"].as_str().unwrap().starts_with("AT-SENTINEL-"));

    assert!(server.is_live_access_token(&at) && server.is_live_refresh_token(&rt));
    assert_eq!(userinfo(&server, &at), 200);
    assert_eq!(userinfo(&server, "AT-SENTINEL-unknown"), 401);
    assert_eq!(server.code_exchanges(), 1);
    let sent = &server.token_requests()[0];
    assert_eq!(
        sent.field_names(),
        [
            "client_id",
            "client_secret",
            "code",
            "code_verifier",
            "grant_type",
            "redirect_uri"
        ]
    );
    assert_eq!(
        server.authorize_requests()[0]
            .iter()
            .find(|(k, _)| k == "scope")
            .unwrap()
            .1,
        "read write"
    );
    assert!(server.minted().contains(&code) && server.minted().contains(&rt));
}

#[test]
fn fake_as_refuses_a_wrong_or_malformed_verifier() {
    let cfg = AsConfig::public();
    let server = FakeAuthServer::start(cfg.clone());
    let (code, verifier) = get_code(&server);
    let (other, _) = fake_as::pkce_pair();
    assert_oauth_error(
        &exchange(&server, &cfg, &code, &other),
        400,
        "invalid_grant",
    );
    // The code is spent by the failed attempt: the right verifier is too late.
    assert_oauth_error(
        &exchange(&server, &cfg, &code, &verifier),
        400,
        "invalid_grant",
    );

    let (code, verifier) = get_code(&server);
    assert_oauth_error(
        &exchange(&server, &cfg, &code, &verifier[..42]),
        400,
        "invalid_request",
    );
    assert_eq!(server.code_exchanges(), 3);
    assert!(!server.grant_revoked());
}

#[test]
fn fake_as_code_reuse_revokes_the_tokens_it_minted() {
    let cfg = AsConfig::jobber();
    let server = FakeAuthServer::start(cfg.clone());
    let (code, verifier) = get_code(&server);
    let first = exchange(&server, &cfg, &code, &verifier);
    assert_eq!(first.status, 200, "{}", first.body);
    let (at, rt) = (
        field(&first, "access_token"),
        field(&first, "refresh_token"),
    );

    assert_oauth_error(
        &exchange(&server, &cfg, &code, &verifier),
        400,
        "invalid_grant",
    );
    assert!(server.grant_revoked());
    assert!(!server.is_live_access_token(&at) && !server.is_live_refresh_token(&rt));
    assert_eq!(userinfo(&server, &at), 401);
    assert_oauth_error(&refresh(&server, &cfg, &rt), 400, "invalid_grant");
}

#[test]
fn fake_as_requires_the_same_redirect_uri() {
    let cfg = AsConfig::public();
    let server = FakeAuthServer::start(cfg.clone());
    let (code, verifier) = get_code(&server);
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:43999/callback/"),
        ("code_verifier", verifier.as_str()),
    ];
    assert_oauth_error(&token_call(&server, &cfg, &params), 400, "invalid_grant");
}

#[test]
fn fake_as_replay_of_a_rotated_refresh_token_revokes_the_grant() {
    let cfg = AsConfig::jobber();
    let server = FakeAuthServer::start(cfg.clone());
    let (at1, rt1) = server.issue_grant();

    let second = refresh(&server, &cfg, &rt1);
    assert_eq!(second.status, 200, "{}", second.body);
    let rt2 = field(&second, "refresh_token");
    assert_ne!(rt1, rt2);
    assert!(!server.is_live_refresh_token(&rt1) && server.is_live_refresh_token(&rt2));
    assert!(
        server.is_live_access_token(&at1),
        "earlier access tokens live on until they expire"
    );

    let third = refresh(&server, &cfg, &rt2);
    assert_eq!(third.status, 200, "{}", third.body);
    let (at3, rt3) = (
        field(&third, "access_token"),
        field(&third, "refresh_token"),
    );
    assert!(
        !server.grant_revoked(),
        "using each new RT once is fine (G2)"
    );

    assert_oauth_error(&refresh(&server, &cfg, &rt1), 400, "invalid_grant");
    assert!(server.grant_revoked());
    assert!(!server.is_live_refresh_token(&rt3) && !server.is_live_access_token(&at3));
    assert_oauth_error(&refresh(&server, &cfg, &rt3), 400, "invalid_grant");
    assert_oauth_error(
        &refresh(&server, &cfg, "RT-SENTINEL-unknown"),
        400,
        "invalid_grant",
    );
    assert_eq!(server.refreshes(), 5);
}

#[test]
fn fake_as_refresh_without_rotation_or_without_a_new_refresh_token() {
    let cfg = AsConfig::basic();
    let server = FakeAuthServer::start(cfg.clone());
    let (_, rt) = server.issue_grant();
    let response = refresh(&server, &cfg, &rt);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(field(&response, "refresh_token"), rt);
    assert_eq!(response.json()["expires_in"], 3600);

    let cfg = AsConfig {
        refresh_returns_refresh_token: false,
        omit_token_type: true,
        ..AsConfig::public()
    };
    let server = FakeAuthServer::start(cfg.clone());
    let (_, rt) = server.issue_grant();
    let response = refresh(&server, &cfg, &rt);
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert!(
        body.get("refresh_token").is_none() && body.get("token_type").is_none(),
        "{body}"
    );
    assert!(field(&response, "access_token").starts_with("AT-SENTINEL-"));
    assert!(server.is_live_refresh_token(&rt));

    let cfg = AsConfig::public().with_access_ttl(0);
    let server = FakeAuthServer::start(cfg.clone());
    let (at, rt) = server.issue_grant();
    assert!(
        !server.is_live_access_token(&at),
        "a zero lifetime expires at once"
    );
    assert_eq!(refresh(&server, &cfg, &rt).json()["expires_in"], 0);
}

/// A refresh of `rt` with these extra headers and form fields, and no other authentication.
fn refresh_as(
    server: &FakeAuthServer,
    headers: &[(&str, &str)],
    rt: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    pairs.extend_from_slice(extra);
    let mut all = vec![FORM];
    all.extend_from_slice(headers);
    post_form(server, &all, &pairs)
}

#[test]
fn fake_as_accepts_only_the_configured_client_authentication() {
    let (id, secret) = (fake_as::CLIENT_ID, fake_as::CLIENT_SECRET);
    let basic = basic_header(id, secret);
    let header = [("Authorization", basic.as_str())];
    let in_body = [("client_id", id), ("client_secret", secret)];
    let refused = |r: Response| assert_oauth_error(&r, 401, "invalid_client");

    // client_secret_post: a Basic header is refused, even with the right body as well.
    let server = FakeAuthServer::start(AsConfig::jobber());
    let (_, rt) = server.issue_grant();
    let response = refresh_as(&server, &header, &rt, &[]);
    assert!(response.header("www-authenticate").is_some());
    refused(response);
    refused(refresh_as(&server, &header, &rt, &in_body));
    refused(refresh_as(
        &server,
        &[],
        &rt,
        &[("client_id", id), ("client_secret", "wrong")],
    ));
    refused(refresh_as(&server, &[], &rt, &[("client_id", id)]));
    assert!(
        server.is_live_refresh_token(&rt),
        "a refused client rotates nothing"
    );
    assert_eq!(refresh_as(&server, &[], &rt, &in_body).status, 200);

    // none: any secret is refused.
    let server = FakeAuthServer::start(AsConfig::public());
    let (_, rt) = server.issue_grant();
    refused(refresh_as(&server, &[], &rt, &in_body));
    refused(refresh_as(&server, &header, &rt, &[("client_id", id)]));
    assert_eq!(
        refresh_as(&server, &[], &rt, &[("client_id", id)]).status,
        200
    );

    // client_secret_basic: the header only, with RFC 6749 §2.3.1 form-encoding.
    let cfg = AsConfig {
        client_id: "id:with/odd chars".into(),
        client_secret: Some("s3cr+et/=&:%é".into()),
        ..AsConfig::basic()
    };
    let server = FakeAuthServer::start(cfg.clone());
    let (_, rt) = server.issue_grant();
    let (id, secret) = (
        cfg.client_id.as_str(),
        cfg.client_secret.as_deref().unwrap(),
    );
    let encoded = basic_header(id, secret);
    let good = [("Authorization", encoded.as_str())];
    let unencoded = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    refused(refresh_as(
        &server,
        &[],
        &rt,
        &[("client_id", id), ("client_secret", secret)],
    ));
    refused(refresh_as(
        &server,
        &[("Authorization", &unencoded)],
        &rt,
        &[],
    ));
    refused(refresh_as(
        &server,
        &good,
        &rt,
        &[("client_secret", secret)],
    ));
    refused(refresh_as(
        &server,
        &good,
        &rt,
        &[("client_id", "someone-else")],
    ));
    assert_eq!(
        refresh_as(&server, &good, &rt, &[("client_id", id)]).status,
        200
    );
    assert_eq!(refresh_as(&server, &good, &rt, &[]).status, 200);
    assert_eq!(server.refreshes(), 6);
}

/// `params` with `name` removed, then set to `value` if given.
fn replaced<'a>(
    params: &[(&'a str, &'a str)],
    name: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = params.iter().filter(|(k, _)| *k != name).copied().collect();
    out.extend(value.map(|v| (name, v)));
    out
}

#[test]
fn fake_as_authorize_rejects_bad_requests_without_redirecting() {
    let server = FakeAuthServer::start(AsConfig::jobber());
    let (_, challenge) = fake_as::pkce_pair();
    let valid = valid_params(REDIRECT, "st", &challenge);
    let with = |name, value| replaced(&valid, name, value);
    let mut duplicated = valid.clone();
    duplicated.push(("code_challenge_method", "S256"));
    let cases = [
        with("state", None),
        with("state", Some("")),
        with("code_challenge_method", None),
        with("code_challenge_method", Some("plain")),
        with("code_challenge_method", Some("s256")),
        with(
            "code_challenge",
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"),
        ),
        with(
            "code_challenge",
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"),
        ),
        with("response_type", Some("token")),
        with("client_id", Some("someone-else")),
        with("redirect_uri", None),
        with("redirect_uri", Some("https://127.0.0.1:43999/callback")),
        with("redirect_uri", Some("http://evil.example:43999/callback")),
        with("redirect_uri", Some("http://127.0.0.1/callback")),
        with("redirect_uri", Some("http://127.0.0.1:43999/callback#frag")),
        duplicated,
    ];
    for params in &cases {
        let response = browser::open(&authorize_url(&server, params));
        assert_eq!(response.status, 400, "accepted {params:?}");
        assert!(response.header("location").is_none());
        assert!(
            response.body.starts_with("invalid authorization request"),
            "{}",
            response.body
        );
    }
    assert!(server.minted().is_empty(), "no code for a bad request");
    assert_eq!(server.authorize_requests().len(), cases.len());

    // The RFC 7636 Appendix B challenge, [::1] and localhost are all fine.
    for redirect in ["http://[::1]:43999/cb", "http://localhost:43999/cb"] {
        let ok = valid_params(
            redirect,
            "st",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        );
        assert!(browser::location_of(&authorize_url(&server, &ok)).starts_with(redirect));
    }
}

#[test]
fn fake_as_deny_mode_redirects_with_error_and_the_exact_state() {
    let server = FakeAuthServer::start(AsConfig::jobber());
    server.set_deny(true);
    let (_, challenge) = fake_as::pkce_pair();
    let state = "a b+c/=&%é~";
    let redirect = "http://localhost:43999/cb?keep=1";
    let location = browser::location_of(&authorize_url(
        &server,
        &valid_params(redirect, state, &challenge),
    ));
    assert!(
        location.starts_with("http://localhost:43999/cb?keep=1&"),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some(state));
    assert_eq!(query_param(&location, "code"), None);

    server.set_deny(false);
    let location = browser::location_of(&authorize_url(
        &server,
        &valid_params(redirect, state, &challenge),
    ));
    assert_eq!(query_param(&location, "state").as_deref(), Some(state));
    assert_eq!(query_param(&location, "keep").as_deref(), Some("1"));
    assert!(query_param(&location, "code").is_some());
}

#[test]
fn fake_as_token_endpoint_is_strict_about_the_request_shape() {
    let cfg = AsConfig::public();
    let server = FakeAuthServer::start(cfg.clone());
    let (_, rt) = server.issue_grant();
    let auth = [
        ("client_id", fake_as::CLIENT_ID),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let body = http::form_body(&auth);

    let json = http::request(
        "POST",
        &server.token_url(),
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_oauth_error(&json, 400, "invalid_request");
    let in_query = format!("{}?{}", server.token_url(), body);
    assert_oauth_error(
        &http::request("POST", &in_query, &[FORM], &body),
        400,
        "invalid_request",
    );
    let twice = format!("{body}&refresh_token={rt}");
    assert_oauth_error(
        &http::request("POST", &server.token_url(), &[FORM], twice),
        400,
        "invalid_request",
    );
    let odd_grant = [
        ("client_id", fake_as::CLIENT_ID),
        ("grant_type", "password"),
    ];
    assert_oauth_error(
        &post_form(&server, &[FORM], &odd_grant),
        400,
        "unsupported_grant_type",
    );
    assert_oauth_error(
        &post_form(&server, &[FORM], &[("client_id", fake_as::CLIENT_ID)]),
        400,
        "invalid_request",
    );
    assert_eq!(http::get(&server.token_url(), &[]).status, 405);

    assert_eq!(
        server.token_requests().len(),
        5,
        "refused requests are recorded too"
    );
    assert_eq!(
        server.token_requests()[1].query.as_deref(),
        Some(body.as_str())
    );
    assert!(server.is_live_refresh_token(&rt));
    let charset = http::request(
        "POST",
        &server.token_url(),
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )],
        &body,
    );
    assert_eq!(charset.status, 200, "{}", charset.body);
}

#[test]
fn fake_as_programmed_faults_and_delay() {
    let cfg = AsConfig::jobber();
    let server = FakeAuthServer::start(cfg.clone());
    let (_, rt1) = server.issue_grant();
    server.push_token_fault(503, r#"{"error":"temporarily_unavailable"}"#, 2);
    for _ in 0..2 {
        let response = refresh(&server, &cfg, &rt1);
        assert_eq!(
            (response.status, response.json()["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
    }
    assert!(
        server.is_live_refresh_token(&rt1),
        "an unprocessed fault rotates nothing"
    );

    // A lost response: the AS rotated, the client never saw RT2, and replaying RT1 kills the grant.
    let lost = TokenFault {
        status: 502,
        body: "<html>bad gateway RT1-SENTINEL</html>".into(),
        headers: vec![("Retry-After".into(), "1".into())],
        after_processing: true,
    };
    server.push_fault(lost, 1);
    let response = refresh(&server, &cfg, &rt1);
    assert_eq!(
        (response.status, response.header("retry-after")),
        (502, Some("1"))
    );
    assert!(!server.is_live_refresh_token(&rt1));
    assert_oauth_error(&refresh(&server, &cfg, &rt1), 400, "invalid_grant");
    assert!(server.grant_revoked());
    assert_eq!(server.refreshes(), 4);

    let (_, rt) = server.issue_grant();
    server.set_token_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(refresh(&server, &cfg, &rt).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// A one-shot loopback "app": answers one request with a chunked page and hands back the
/// request head it received.
fn one_shot_callback() -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let page =
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n\
                    6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
        stream.write_all(page.as_bytes()).unwrap();
        String::from_utf8(head).unwrap()
    });
    (port, handle)
}

#[test]
fn browser_follows_the_redirect_to_the_loopback_callback() {
    let server = FakeAuthServer::start(AsConfig::jobber());
    let (port, app) = one_shot_callback();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let (_, challenge) = fake_as::pkce_pair();
    let response = browser::follow_authorization(&authorize_url(
        &server,
        &valid_params(&redirect, "xyz", &challenge),
    ));
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "hello world")
    );
    let head = app.join().unwrap();
    assert!(
        head.starts_with("GET /callback?code=CODE-SENTINEL-"),
        "{head}"
    );
    assert!(head.contains("&state=xyz HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(
        head.contains("Sec-Fetch-Mode: navigate\r\n") && head.contains("Connection: close\r\n"),
        "{head}"
    );
}

#[test]
fn http_raw_and_connection_errors() {
    let server = FakeAuthServer::start(AsConfig::jobber());
    let addr = server.url().trim_start_matches("http://").to_string();
    let not_found = http::raw(
        &addr,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
    let garbage = http::raw(&addr, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    assert!(http::try_request("GET", &url, &[], "").is_err());
}
