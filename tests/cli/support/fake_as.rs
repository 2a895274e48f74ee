//! A strict fake OAuth 2.0 authorization server for the integration tests.
//!
//! `FakeAuthServer::start` binds `127.0.0.1:0` and serves, on its own tokio runtime in a
//! background thread:
//!
//! * `GET /authorize` — checks the request as a strict AS would (`response_type=code`, the
//!   configured `client_id`, a loopback `http` `redirect_uri` with a port, a non-empty `state`,
//!   exactly one `code_challenge_method=S256`, a 43-character base64url `code_challenge`, no
//!   parameter twice). A bad request gets a 400 text page and no redirect; a good one a
//!   `302` to `redirect_uri?code=CODE-SENTINEL-…&state=<state>` (or `error=access_denied`
//!   in deny mode).
//! * `POST /token` — form body only; exactly one client authentication method, the one
//!   configured; single-use codes bound to challenge, `redirect_uri` and client; S256
//!   verification; refresh with optional rotation and reuse detection that revokes the whole
//!   grant (RFC 6749 §4.1.2, §10.4; RFC 9700 §4.14.2). Errors are RFC 6749 §5.2 JSON.
//! * `POST /device` — the device authorization endpoint (RFC 8628 §3.1/§3.2): client
//!   authenticated as at `/token`; answers a `DEVICE-SENTINEL-…` device code, a user code and a
//!   verification URI as [`DeviceConfig`] says. `POST /token` with the device-code grant then
//!   answers the configured script (`authorization_pending`, `slow_down`, …) poll by poll, adds
//!   5 s to the interval on each `slow_down`, answers `slow_down` (and counts it) to a poll that
//!   comes before the interval has passed, and mints a grant on approval (single use).
//! * `POST /revoke` — RFC 7009: form body, the configured client authentication (401
//!   `invalid_client` otherwise), `token` required; 200 with an empty body for any token,
//!   known or not. A refresh token revokes its whole grant (every token of it stops working);
//!   an access token only itself. Faults can be queued (`push_revoke_fault`).
//! * `GET /userinfo` — `{"sub":"user-1"}` for a live bearer access token, else 401.
//! * `POST /graphql` — Jobber's GraphQL shape: JSON body, `X-JOBBER-GRAPHQL-VERSION` required
//!   (400 without), bearer token (401 if not live), `{"data":{"account":{…}}}`.
//! * `POST /api/auth.test` — Slack's shape: always HTTP 200, `"ok"` says whether the token works.
//! * `GET /validate` — Twitch's shape: `Authorization: OAuth <token>` (401 with `Bearer`).
//!
//! Provider quirks are modes of [`AsConfig`], all off by default (so the presets above behave
//! as plain RFC 6749 servers): scopes in another parameter or joined by commas, JSON request
//! bodies, form-encoded / nested / camelCase answers, errors answered with HTTP 200 or in
//! Twitch's shape, exactly-registered redirect URIs, `localhost` refused, refresh tokens only
//! for an "offline" request, and `redirect_uri` required on refresh. The presets named after a
//! provider (`github()`, `slack()`, …) turn on that provider's quirks.
//!
//! Every request is recorded and counted before anything is decided, so a test can assert
//! what the client sent even when the fake refused it. Minted values are recognisable
//! sentinels (`AT-SENTINEL-…`, `RT-SENTINEL-…`, `CODE-SENTINEL-…`; a JWT access token carries
//! its sentinel in the `jti` claim) for leak scans: `minted()` lists them all.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use url::{form_urlencoded, Host, Url};

use super::server::Background;

/// Client id of every preset.
pub const CLIENT_ID: &str = "fake-client-id";
/// Client secret of the confidential presets (a sentinel, for leak scans).
pub const CLIENT_SECRET: &str = "CLIENT-SECRET-SENTINEL-7d1e0c5a9b3f4286";
/// The `sub` that `/userinfo` and JWT access tokens name.
pub const SUBJECT: &str = "user-1";

/// How the client must authenticate at the token endpoint: the only method the fake accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_post`: `client_id` and `client_secret` in the body, no `Authorization`.
    Post,
    /// `client_secret_basic`: `Authorization: Basic base64(urlencode(id):urlencode(secret))`
    /// (RFC 6749 §2.3.1); `client_id` may also be in the body, `client_secret` may not.
    Basic,
    /// `none`: a public client; `client_id` in the body and no secret anywhere.
    None,
}

/// What the fake provider is like.
#[derive(Clone, Debug)]
pub struct AsConfig {
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret: Option<String>,
    /// The only method accepted; any other gets 401 `{"error":"invalid_client"}`.
    pub auth: ClientAuth,
    /// A new refresh token on every refresh; the old one dies at once.
    pub rotate_refresh_tokens: bool,
    /// `Some(n)`: responses carry `"expires_in": n`; `None`: they omit it.
    pub expires_in: Option<u64>,
    /// The access token is an unsigned-but-well-formed JWT with `exp = now + access_ttl`.
    pub jwt_access_tokens: bool,
    /// Access-token lifetime in seconds (JWT `exp`, and when `is_live_access_token` ends).
    /// The presets send it as `expires_in` too: change both, or use `with_access_ttl`.
    pub access_ttl: u64,
    pub omit_token_type: bool,
    /// `false`: refresh responses have no `refresh_token` (the old one stays live).
    pub refresh_returns_refresh_token: bool,

    // ---- provider quirks (all off in the plain presets) -----------------------------------
    /// The `/authorize` parameter carrying the scopes (Slack: `user_scope`). When it is not
    /// `scope`, a `scope` parameter is refused (Slack: desktop redirects get no bot scopes).
    pub scope_parameter: &'static str,
    /// What joins scopes (Slack, Linear: `,`). With `,`, a scope value with a space is refused.
    pub scope_separator: char,
    /// The only token-request body accepted.
    pub token_body: BodyFormat,
    /// How successful token answers look.
    pub response_style: ResponseStyle,
    /// How token-endpoint errors look.
    pub error_style: ErrorStyle,
    /// `Some`: only these redirect URIs are accepted, byte for byte (Jobber: one callback URL).
    pub registered_redirect_uris: Option<Vec<String>>,
    /// `redirect_uri` with host `localhost` is refused (Spotify).
    pub reject_localhost_redirect: bool,
    /// `Some((name, value))`: a refresh token is issued only when the authorization request had
    /// `name=value` (for `scope`: `value` among the scopes) — Google `access_type=offline`,
    /// Dropbox `token_access_type=offline`, Microsoft/Atlassian `offline_access`.
    pub refresh_token_requires: Option<(&'static str, &'static str)>,
    /// A refresh must carry `redirect_uri`, equal to the authorization's (GitLab's docs).
    pub refresh_requires_redirect_uri: bool,
}

/// Token-request bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` only (RFC 6749).
    Form,
    /// `application/json` only, an object of strings (Atlassian, Notion).
    Json,
}

/// Successful token answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseStyle {
    /// RFC 6749 JSON.
    Json,
    /// Form-encoded unless the request said `Accept: application/json` (GitHub).
    FormUnlessJsonAccepted,
    /// Form-encoded whatever the request asked.
    Form,
    /// Code exchange: the user's tokens under `authed_user`, next to `"ok": true` and a
    /// top-level bot token that is not the user's (Slack, with bot scopes granted too);
    /// refresh: the user's tokens at the top level.
    SlackNested,
    /// `accessToken`, `refreshToken`, `expiresIn`, `tokenType` (HubSpot's newer reference).
    CamelCase,
}

/// Token-endpoint errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// RFC 6749 §5.2: 400/401 with `error` and `error_description`.
    Rfc6749,
    /// HTTP 200 with `error` (GitHub): `bad_verification_code`, `bad_refresh_token`.
    GitHub,
    /// HTTP 200 with `{"ok":false,"error":…}` (Slack): `invalid_code`, `invalid_refresh_token`.
    Slack,
    /// 400 with `{"status":400,"message":…}` (Twitch): "Invalid refresh token".
    Twitch,
}

impl Default for AsConfig {
    /// The Jobber preset.
    fn default() -> AsConfig {
        AsConfig::jobber()
    }
}

impl AsConfig {
    /// Like Jobber: confidential, `client_secret_post`, JWT access tokens, no `expires_in`,
    /// refresh tokens rotated with the old one invalid at once.
    pub fn jobber() -> AsConfig {
        AsConfig {
            client_id: CLIENT_ID.to_string(),
            client_secret: Some(CLIENT_SECRET.to_string()),
            auth: ClientAuth::Post,
            rotate_refresh_tokens: true,
            expires_in: None,
            jwt_access_tokens: true,
            access_ttl: 3600,
            omit_token_type: false,
            refresh_returns_refresh_token: true,
            scope_parameter: "scope",
            scope_separator: ' ',
            token_body: BodyFormat::Form,
            response_style: ResponseStyle::Json,
            error_style: ErrorStyle::Rfc6749,
            registered_redirect_uris: None,
            reject_localhost_redirect: false,
            refresh_token_requires: None,
            refresh_requires_redirect_uri: false,
        }
    }

    /// GitHub OAuth App with expiring tokens: confidential `client_secret_post`, answers
    /// form-encoded unless asked for JSON, errors as HTTP 200, rotating refresh tokens, 8 h.
    pub fn github() -> AsConfig {
        AsConfig {
            response_style: ResponseStyle::FormUnlessJsonAccepted,
            error_style: ErrorStyle::GitHub,
            ..AsConfig::basic_like(ClientAuth::Post, 28800, true)
        }
    }

    /// Slack with PKCE on: public client, `user_scope` joined by commas, the user token under
    /// `authed_user`, errors as `200 {"ok":false}`, rotating refresh tokens, 12 h.
    pub fn slack() -> AsConfig {
        AsConfig {
            scope_parameter: "user_scope",
            scope_separator: ',',
            response_style: ResponseStyle::SlackNested,
            error_style: ErrorStyle::Slack,
            ..AsConfig::public().with_access_ttl(43200)
        }
    }

    /// Atlassian: confidential `client_secret_post` in a JSON body, a refresh token only with
    /// the `offline_access` scope, rotating refresh tokens.
    pub fn atlassian() -> AsConfig {
        AsConfig {
            token_body: BodyFormat::Json,
            refresh_token_requires: Some(("scope", "offline_access")),
            ..AsConfig::basic_like(ClientAuth::Post, 3600, true)
        }
    }

    /// Notion: HTTP Basic client credentials and a JSON body, rotating refresh tokens.
    pub fn notion() -> AsConfig {
        AsConfig {
            token_body: BodyFormat::Json,
            ..AsConfig::basic_like(ClientAuth::Basic, 3600, true)
        }
    }

    /// Google (Desktop client): confidential post, a refresh token only with
    /// `access_type=offline`, a refresh answers no new refresh token.
    pub fn google() -> AsConfig {
        AsConfig {
            refresh_token_requires: Some(("access_type", "offline")),
            refresh_returns_refresh_token: false,
            ..AsConfig::basic_like(ClientAuth::Post, 3599, false)
        }
    }

    /// Spotify: public client, `localhost` redirect URIs refused, rotating refresh tokens.
    pub fn spotify() -> AsConfig {
        AsConfig {
            reject_localhost_redirect: true,
            ..AsConfig::public()
        }
    }

    /// GitLab (non-confidential app): public client, refresh needs the authorization's
    /// `redirect_uri`, rotating refresh tokens, 2 h.
    pub fn gitlab() -> AsConfig {
        AsConfig {
            refresh_requires_redirect_uri: true,
            ..AsConfig::public().with_access_ttl(7200)
        }
    }

    /// Salesforce (public External Client App): no `expires_in`, opaque access token.
    pub fn salesforce() -> AsConfig {
        AsConfig {
            expires_in: None,
            ..AsConfig::public()
        }
    }

    /// HubSpot's 2026-03 reference: camelCase answers, confidential post, 30 min.
    pub fn hubspot() -> AsConfig {
        AsConfig {
            response_style: ResponseStyle::CamelCase,
            ..AsConfig::basic_like(ClientAuth::Post, 1800, false)
        }
    }

    /// Twitch: confidential post, errors as `{"status":400,"message":…}`.
    pub fn twitch() -> AsConfig {
        AsConfig {
            error_style: ErrorStyle::Twitch,
            ..AsConfig::basic_like(ClientAuth::Post, 14400, true)
        }
    }

    /// Opaque tokens with `expires_in`, the given client authentication and rotation.
    fn basic_like(auth: ClientAuth, ttl: u64, rotate: bool) -> AsConfig {
        AsConfig {
            auth,
            rotate_refresh_tokens: rotate,
            expires_in: Some(ttl),
            access_ttl: ttl,
            jwt_access_tokens: false,
            ..AsConfig::jobber()
        }
    }

    /// A public client (`none`), opaque tokens, `expires_in: 3600`, rotation.
    pub fn public() -> AsConfig {
        AsConfig {
            client_secret: None,
            auth: ClientAuth::None,
            expires_in: Some(3600),
            jwt_access_tokens: false,
            ..AsConfig::jobber()
        }
    }

    /// Confidential, `client_secret_basic`, opaque tokens, `expires_in: 3600`, no rotation
    /// (a refresh answers the same refresh token again).
    pub fn basic() -> AsConfig {
        AsConfig {
            auth: ClientAuth::Basic,
            rotate_refresh_tokens: false,
            expires_in: Some(3600),
            jwt_access_tokens: false,
            ..AsConfig::jobber()
        }
    }

    /// Sets `access_ttl`, and `expires_in` to match unless it is omitted.
    pub fn with_access_ttl(mut self, seconds: u64) -> AsConfig {
        self.access_ttl = seconds;
        if self.expires_in.is_some() {
            self.expires_in = Some(seconds);
        }
        self
    }
}

/// One answer to a device-code poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceAnswer {
    Pending,
    SlowDown,
    Approve,
    Deny,
    Expire,
}

/// How the device flow behaves.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    pub user_code: String,
    /// `None`: `{url}/device-verify`.
    pub verification_uri: Option<String>,
    /// Also send `verification_uri_complete` (the verification URI with `?user_code=`).
    pub complete: bool,
    pub expires_in: u64,
    /// `None`: no `interval` member (the client must use 5 s).
    pub interval: Option<u64>,
    /// The answers to the first polls, in order.
    pub script: Vec<DeviceAnswer>,
    /// The answer to every poll after the script.
    pub then: DeviceAnswer,
}

impl Default for DeviceConfig {
    fn default() -> DeviceConfig {
        DeviceConfig {
            user_code: "WDJB-MJHT".into(),
            verification_uri: None,
            complete: true,
            expires_in: 60,
            interval: Some(1),
            script: Vec::new(),
            then: DeviceAnswer::Approve,
        }
    }
}

struct DeviceEntry {
    polls: usize,
    interval: Duration,
    last_poll: Option<std::time::Instant>,
    used: bool,
}

/// One `POST /token` as received.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The form body, in order, decoded once.
    pub form: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// The raw query string of the request URL (it should have none).
    pub query: Option<String>,
}

impl TokenRequest {
    /// The first value of a form field.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The form field names, sorted (to assert the exact field set).
    pub fn field_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.form.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// A programmed answer for `POST /token`.
#[derive(Clone, Debug)]
pub struct TokenFault {
    pub status: u16,
    /// Sent as is, with `Content-Type: application/json`.
    pub body: String,
    /// Extra response headers, e.g. `Retry-After`.
    pub headers: Vec<(String, String)>,
    /// `false`: the request is recorded but not processed (no code spent, no rotation).
    /// `true`: it is processed as usual and only the answer is replaced — a lost response.
    pub after_processing: bool,
}

/// One request to a token-check endpoint, as received.
#[derive(Clone, Debug)]
pub struct CheckRequest {
    pub path: String,
    pub method: String,
    pub authorization: Option<String>,
    /// Every header, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl CheckRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The fake server; it stops when dropped.
pub struct FakeAuthServer {
    url: String,
    shared: Shared,
    _server: Background,
}

type Shared = Arc<Mutex<Inner>>;

impl FakeAuthServer {
    /// Binds `127.0.0.1:0` and serves on a background thread.
    pub fn start(cfg: AsConfig) -> FakeAuthServer {
        assert!(
            cfg.auth == ClientAuth::None || cfg.client_secret.is_some(),
            "a confidential client needs a client_secret"
        );
        let listener = Background::bind();
        let url = format!(
            "http://{}",
            listener.local_addr().expect("fake AS: local addr")
        );
        let shared: Shared = Arc::new(Mutex::new(Inner {
            cfg,
            issuer: url.clone(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/device", post(device))
            .route("/revoke", post(revoke))
            .route("/userinfo", get(userinfo))
            .route("/graphql", post(graphql))
            .route("/api/auth.test", get(slack_auth_test).post(slack_auth_test))
            .route("/validate", get(twitch_validate))
            .with_state(shared.clone());
        FakeAuthServer {
            url,
            shared,
            _server: Background::router("fake-as", listener, app),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.url)
    }
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url)
    }
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.url)
    }
    /// Every `POST /revoke`, in order.
    pub fn revoke_requests(&self) -> Vec<TokenRequest> {
        self.lock().revoke_requests.clone()
    }
    /// The next `times` `POST /revoke` answer this instead (nothing is revoked).
    pub fn push_revoke_fault(&self, fault: TokenFault, times: usize) {
        let mut inner = self.lock();
        inner
            .revoke_faults
            .extend(std::iter::repeat_n(fault, times));
    }
    /// Grants revoked through `/revoke` (not by reuse detection).
    pub fn grants_revoked_by_request(&self) -> usize {
        self.lock().revoked_by_request
    }
    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.url)
    }

    /// Deny mode: `/authorize` (once the request is valid) redirects with
    /// `error=access_denied&error_description=…&state=<state>`.
    pub fn set_deny(&self, deny: bool) {
        self.lock().deny = deny;
    }
    /// Every `POST /token`, in order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().token_requests.clone()
    }
    /// `POST /token` with `grant_type=authorization_code`, accepted or not.
    pub fn code_exchanges(&self) -> usize {
        self.lock().code_exchanges
    }
    /// `POST /token` with `grant_type=refresh_token`, accepted or not.
    pub fn refreshes(&self) -> usize {
        self.lock().refreshes
    }
    /// Query pairs of each `GET /authorize`, decoded once.
    pub fn authorize_requests(&self) -> Vec<Vec<(String, String)>> {
        self.lock().authorize_requests.clone()
    }
    pub fn userinfo_requests(&self) -> usize {
        self.lock().userinfo_requests
    }

    /// Mint a live grant without the browser (for refresh tests): (access_token, refresh_token).
    pub fn issue_grant(&self) -> (String, String) {
        let mut inner = self.lock();
        let grant = inner.new_grant(None, None);
        let at = inner.mint_access_token(grant);
        let rt = inner.mint_refresh_token(grant);
        (at, rt)
    }
    /// True once reuse detection (a code or a rotated-away refresh token presented again)
    /// revoked a grant.
    pub fn grant_revoked(&self) -> bool {
        self.lock().grant_revoked
    }
    pub fn is_live_refresh_token(&self, rt: &str) -> bool {
        self.lock().rt_live(rt)
    }
    pub fn is_live_access_token(&self, at: &str) -> bool {
        self.lock().at_live(at)
    }
    /// The next `times` `POST /token` answer `status` with this (JSON) body, unprocessed.
    pub fn push_token_fault(&self, status: u16, body: &str, times: usize) {
        let fault = TokenFault {
            status,
            body: body.to_string(),
            headers: Vec::new(),
            after_processing: false,
        };
        self.push_fault(fault, times);
    }
    /// The general form of `push_token_fault` (headers, lost responses).
    pub fn push_fault(&self, fault: TokenFault, times: usize) {
        let mut inner = self.lock();
        inner.faults.extend(std::iter::repeat_n(fault, times));
    }
    /// The device flow's behaviour from now on.
    pub fn set_device(&self, cfg: DeviceConfig) {
        self.lock().device_cfg = cfg;
    }
    pub fn device_url(&self) -> String {
        format!("{}/device", self.url)
    }
    /// Every `POST /device`, in order.
    pub fn device_requests(&self) -> Vec<TokenRequest> {
        self.lock().device_requests.clone()
    }
    /// When each device-code poll arrived, in order.
    pub fn device_polls(&self) -> Vec<std::time::Instant> {
        self.lock().device_polls.clone()
    }
    /// Polls that came before the current interval had passed.
    pub fn early_polls(&self) -> usize {
        self.lock().early_polls
    }
    /// Every `POST /token` answer is held back this long. The request is decided (code spent,
    /// token rotated) when it arrives; only the answer is late, as with a slow network.
    pub fn set_token_delay(&self, d: Duration) {
        self.lock().token_delay = d;
    }
    /// Every code and token value minted so far (for leak scans).
    pub fn minted(&self) -> Vec<String> {
        self.lock().minted.clone()
    }
    /// Accept only these redirect URIs from now on (the harness knows its ports only after
    /// the fake started).
    pub fn set_registered_redirect_uris(&self, uris: Vec<String>) {
        self.lock().cfg.registered_redirect_uris = Some(uris);
    }
    /// Every request to `/graphql`, `/api/auth.test` and `/validate`, in order.
    pub fn check_requests(&self) -> Vec<CheckRequest> {
        self.lock().check_requests.clone()
    }
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.url)
    }
    pub fn slack_auth_test_url(&self) -> String {
        format!("{}/api/auth.test", self.url)
    }
    pub fn twitch_validate_url(&self) -> String {
        format!("{}/validate", self.url)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.shared)
    }
}

/// base64url(SHA-256(verifier)), no padding: the S256 challenge (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh (verifier, S256 challenge) pair.
pub fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = s256(&verifier);
    (verifier, challenge)
}

/// The claims of a JWT (payload decoded, signature not checked); `None` if not a JWT.
pub fn decode_jwt_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

// ---------------------------------------------------------------------------------------------
// State

struct Grant {
    scope: Option<String>,
    revoked: bool,
    /// The authorization's redirect URI (none for `issue_grant`).
    redirect_uri: Option<String>,
}

/// A code is bound to its challenge and redirect URI; to its client implicitly, as a server
/// knows one client and authenticates it before looking at the code.
struct CodeEntry {
    challenge: String,
    redirect_uri: String,
    scope: Option<String>,
    /// The authorization request qualified for a refresh token (`refresh_token_requires`).
    offline: bool,
    used: bool,
    /// The grant minted from this code, once exchanged.
    grant: Option<usize>,
}

struct RefreshEntry {
    grant: usize,
    /// Rotated away: presenting it again is reuse.
    spent: bool,
}

struct AccessEntry {
    grant: usize,
    expires_at: u64,
}

#[derive(Default)]
struct Inner {
    cfg: AsConfig,
    issuer: String,
    deny: bool,
    authorize_requests: Vec<Vec<(String, String)>>,
    token_requests: Vec<TokenRequest>,
    code_exchanges: usize,
    refreshes: usize,
    userinfo_requests: usize,
    codes: HashMap<String, CodeEntry>,
    refresh_tokens: HashMap<String, RefreshEntry>,
    access_tokens: HashMap<String, AccessEntry>,
    grants: Vec<Grant>,
    grant_revoked: bool,
    faults: VecDeque<TokenFault>,
    revoke_requests: Vec<TokenRequest>,
    revoke_faults: VecDeque<TokenFault>,
    revoked_by_request: usize,
    token_delay: Duration,
    minted: Vec<String>,
    check_requests: Vec<CheckRequest>,
    device_cfg: DeviceConfig,
    device_codes: HashMap<String, DeviceEntry>,
    device_requests: Vec<TokenRequest>,
    device_polls: Vec<std::time::Instant>,
    early_polls: usize,
}

/// An RFC 6749 §5.2 error response.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

fn oauth_error(error: &'static str, description: impl Into<String>) -> OAuthError {
    let status = match error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let description = description.into();
    OAuthError {
        status,
        error,
        description,
    }
}

fn invalid_request(description: impl Into<String>) -> OAuthError {
    oauth_error("invalid_request", description)
}

fn invalid_client(description: &str) -> OAuthError {
    oauth_error("invalid_client", description)
}

fn invalid_grant(description: &str) -> OAuthError {
    oauth_error("invalid_grant", description)
}

impl Inner {
    fn new_grant(&mut self, scope: Option<String>, redirect_uri: Option<String>) -> usize {
        self.grants.push(Grant {
            scope,
            revoked: false,
            redirect_uri,
        });
        self.grants.len() - 1
    }

    fn revoke(&mut self, grant: usize) {
        self.grants[grant].revoked = true;
        self.grant_revoked = true;
    }

    fn rt_live(&self, rt: &str) -> bool {
        self.refresh_tokens
            .get(rt)
            .is_some_and(|e| !e.spent && !self.grants[e.grant].revoked)
    }

    fn at_live(&self, at: &str) -> bool {
        self.access_tokens
            .get(at)
            .is_some_and(|e| !self.grants[e.grant].revoked && now_secs() < e.expires_at)
    }

    fn mint_access_token(&mut self, grant: usize) -> String {
        let jti = sentinel("AT");
        let iat = now_secs();
        let exp = iat + self.cfg.access_ttl;
        let at = if self.cfg.jwt_access_tokens {
            let claims = json!({
                "iss": self.issuer, "sub": SUBJECT, "aud": self.cfg.client_id,
                "client_id": self.cfg.client_id, "iat": iat, "exp": exp, "jti": jti,
            });
            fake_jwt(&claims)
        } else {
            jti
        };
        self.access_tokens.insert(
            at.clone(),
            AccessEntry {
                grant,
                expires_at: exp,
            },
        );
        self.minted.push(at.clone());
        at
    }

    fn mint_refresh_token(&mut self, grant: usize) -> String {
        let rt = sentinel("RT");
        self.refresh_tokens.insert(
            rt.clone(),
            RefreshEntry {
                grant,
                spent: false,
            },
        );
        self.minted.push(rt.clone());
        rt
    }

    /// `Ok(Location)` for a valid authorization request, `Err(reason)` for a 400 page.
    fn authorize(&mut self, pairs: &[(String, String)]) -> Result<String, String> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(format!("parameter `{name}` appears more than once"));
            }
        }
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if param("response_type") != Some("code") {
            return Err("response_type must be `code`".into());
        }
        if param("client_id") != Some(self.cfg.client_id.as_str()) {
            return Err("unknown client_id".into());
        }
        let redirect_uri = param("redirect_uri").ok_or("redirect_uri is missing")?;
        let mut location = loopback_redirect(redirect_uri)?;
        if let Some(registered) = &self.cfg.registered_redirect_uris {
            if !registered.iter().any(|r| r == redirect_uri) {
                return Err(format!(
                    "redirect_uri_mismatch: {redirect_uri} is not a registered callback URL"
                ));
            }
        }
        if self.cfg.reject_localhost_redirect && location.host_str() == Some("localhost") {
            return Err("INVALID_CLIENT: localhost is not allowed as redirect URI".into());
        }
        let scope_parameter = self.cfg.scope_parameter;
        if scope_parameter != "scope" && param("scope").is_some() {
            return Err(format!(
                "`scope` is not allowed here (bot scopes); use `{scope_parameter}`"
            ));
        }
        let scope = param(scope_parameter).filter(|s| !s.is_empty());
        let separator = self.cfg.scope_separator;
        if separator != ' ' && scope.is_some_and(|s| s.contains(' ')) {
            return Err(format!(
                "invalid_scope: scopes are separated by `{separator}`"
            ));
        }
        let offline = match self.cfg.refresh_token_requires {
            None => true,
            Some(("scope", wanted)) => {
                scope.is_some_and(|s| s.split(separator).any(|x| x == wanted))
            }
            Some((name, wanted)) => param(name) == Some(wanted),
        };
        let state = param("state")
            .filter(|s| !s.is_empty())
            .ok_or("state is missing or empty")?;
        if param("code_challenge_method") != Some("S256") {
            return Err("code_challenge_method must be S256".into());
        }
        let challenge = param("code_challenge").unwrap_or_default();
        if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
            return Err("code_challenge must be 43 base64url characters".into());
        }
        if self.deny {
            location
                .query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair(
                    "error_description",
                    "The resource owner denied the request.",
                )
                .append_pair("state", state);
            return Ok(location.into());
        }
        let code = sentinel("CODE");
        self.codes.insert(
            code.clone(),
            CodeEntry {
                challenge: challenge.to_string(),
                redirect_uri: redirect_uri.to_string(),
                scope: scope.map(str::to_string),
                offline,
                used: false,
                grant: None,
            },
        );
        self.minted.push(code.clone());
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", state);
        Ok(location.into())
    }

    /// Decides one token request: the success JSON or an RFC 6749 §5.2 error.
    fn token(&mut self, req: &TokenRequest) -> Result<Value, OAuthError> {
        let media_type = req
            .content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .map(str::trim);
        let expected = match self.cfg.token_body {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        };
        if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(expected)) {
            return Err(invalid_request(format!("the body must be {expected}")));
        }
        if req.query.as_deref().is_some_and(|q| !q.is_empty()) {
            return Err(invalid_request(
                "parameters belong in the body, not the URL",
            ));
        }
        // RFC 6749 §3.2: no parameter twice; §3.1: an empty value counts as omitted.
        let mut params: HashMap<&str, &str> = HashMap::new();
        for (name, value) in &req.form {
            if req.form.iter().filter(|(n, _)| n == name).count() > 1 {
                return Err(invalid_request(format!(
                    "parameter `{name}` appears more than once"
                )));
            }
            if !value.is_empty() {
                params.insert(name, value);
            }
        }
        self.authenticate_client(req, &params)?;
        match params.get("grant_type").copied() {
            Some("authorization_code") => self.exchange_code(&params),
            Some("refresh_token") => self.refresh(&params),
            Some("urn:ietf:params:oauth:grant-type:device_code") => self.device_token(&params),
            Some(_) => Err(oauth_error(
                "unsupported_grant_type",
                "unsupported grant_type",
            )),
            None => Err(invalid_request("grant_type is missing")),
        }
    }

    fn authenticate_client(
        &self,
        req: &TokenRequest,
        params: &HashMap<&str, &str>,
    ) -> Result<(), OAuthError> {
        let cfg = &self.cfg;
        let body_id = params.get("client_id").copied();
        let body_secret = params.get("client_secret").copied();
        let secret = cfg.client_secret.as_deref();
        let ok = match cfg.auth {
            ClientAuth::Basic => {
                let Some((id, given)) = req.authorization.as_deref().and_then(parse_basic) else {
                    return Err(invalid_client("client_secret_basic is required"));
                };
                if body_secret.is_some() {
                    return Err(invalid_client("more than one client authentication method"));
                }
                id == cfg.client_id
                    && Some(given.as_str()) == secret
                    && body_id.is_none_or(|b| b == id)
            }
            ClientAuth::Post => {
                if req.authorization.is_some() {
                    return Err(invalid_client(
                        "client_secret_post is required, not a header",
                    ));
                }
                body_id == Some(cfg.client_id.as_str())
                    && body_secret.is_some()
                    && body_secret == secret
            }
            ClientAuth::None => {
                if req.authorization.is_some() || body_secret.is_some() {
                    return Err(invalid_client("a public client sends no secret"));
                }
                body_id == Some(cfg.client_id.as_str())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(invalid_client("client authentication failed"))
        }
    }

    fn exchange_code(&mut self, params: &HashMap<&str, &str>) -> Result<Value, OAuthError> {
        let required = |name: &str| {
            params
                .get(name)
                .copied()
                .ok_or_else(|| invalid_request(format!("{name} is missing")))
        };
        let (code, redirect_uri, verifier) = (
            required("code")?,
            required("redirect_uri")?,
            required("code_verifier")?,
        );
        let Some(entry) = self.codes.get_mut(code) else {
            return Err(invalid_grant("unknown authorization code"));
        };
        if entry.used {
            // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
            if let Some(grant) = entry.grant {
                self.revoke(grant);
            }
            return Err(invalid_grant("authorization code already used"));
        }
        // Any presentation spends the code, so a wrong verifier cannot be retried.
        entry.used = true;
        let (challenge, bound_uri, scope, offline) = (
            entry.challenge.clone(),
            entry.redirect_uri.clone(),
            entry.scope.clone(),
            entry.offline,
        );
        if bound_uri != redirect_uri {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
            return Err(invalid_request(
                "code_verifier must be 43-128 unreserved characters",
            ));
        }
        if s256(verifier) != challenge {
            return Err(invalid_grant("PKCE verification failed"));
        }
        let grant = self.new_grant(scope, Some(bound_uri));
        if let Some(entry) = self.codes.get_mut(code) {
            entry.grant = Some(grant);
        }
        let at = self.mint_access_token(grant);
        let rt = offline.then(|| self.mint_refresh_token(grant));
        Ok(self.token_body(grant, at, rt))
    }

    fn refresh(&mut self, params: &HashMap<&str, &str>) -> Result<Value, OAuthError> {
        let Some(rt) = params.get("refresh_token").copied() else {
            return Err(invalid_request("refresh_token is missing"));
        };
        let Some(entry) = self.refresh_tokens.get(rt) else {
            return Err(invalid_grant("unknown refresh token"));
        };
        let (grant, spent) = (entry.grant, entry.spent);
        if self.grants[grant].revoked {
            return Err(invalid_grant("refresh token revoked"));
        }
        if spent {
            // RFC 9700 §4.14.2: replay of a rotated-away token revokes the whole grant.
            self.revoke(grant);
            return Err(invalid_grant("refresh token already used; grant revoked"));
        }
        if self.cfg.refresh_requires_redirect_uri {
            let Some(given) = params.get("redirect_uri") else {
                return Err(invalid_request("redirect_uri is missing"));
            };
            if self.grants[grant]
                .redirect_uri
                .as_deref()
                .is_some_and(|bound| bound != *given)
            {
                return Err(invalid_grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
        }
        if let Some(requested) = params.get("scope") {
            let granted = self.grants[grant].scope.as_deref().unwrap_or_default();
            let sep = self.cfg.scope_separator;
            if !requested
                .split(sep)
                .all(|s| granted.split(sep).any(|g| g == s))
            {
                return Err(oauth_error(
                    "invalid_scope",
                    "scope exceeds the original grant",
                ));
            }
        }
        let at = self.mint_access_token(grant);
        let new_rt = match (
            self.cfg.refresh_returns_refresh_token,
            self.cfg.rotate_refresh_tokens,
        ) {
            (false, _) => None,
            (true, false) => Some(rt.to_string()),
            (true, true) => {
                if let Some(old) = self.refresh_tokens.get_mut(rt) {
                    old.spent = true;
                }
                Some(self.mint_refresh_token(grant))
            }
        };
        Ok(self.token_body(grant, at, new_rt))
    }

    /// `POST /device`: the device authorization response, once the client is authenticated.
    fn device_authorization(&mut self, req: &TokenRequest) -> Result<Value, OAuthError> {
        let params: HashMap<&str, &str> = req
            .form
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if self.cfg.auth != ClientAuth::Basic && !params.contains_key("client_id") {
            return Err(invalid_request("client_id is missing"));
        }
        self.authenticate_client(req, &params)?;
        let cfg = self.device_cfg.clone();
        let device_code = sentinel("DEVICE");
        self.minted.push(device_code.clone());
        self.device_codes.insert(
            device_code.clone(),
            DeviceEntry {
                polls: 0,
                interval: Duration::from_secs(cfg.interval.unwrap_or(5)),
                last_poll: None,
                used: false,
            },
        );
        let uri = cfg
            .verification_uri
            .clone()
            .unwrap_or_else(|| format!("{}/device-verify", self.issuer));
        let mut body = json!({
            "device_code": device_code,
            "user_code": cfg.user_code,
            "verification_uri": uri,
            "expires_in": cfg.expires_in,
        });
        if cfg.complete {
            body["verification_uri_complete"] = format!("{uri}?user_code={}", cfg.user_code).into();
        }
        if let Some(i) = cfg.interval {
            body["interval"] = i.into();
        }
        Ok(body)
    }

    /// A device-code poll (RFC 8628 §3.4/§3.5).
    fn device_token(&mut self, params: &HashMap<&str, &str>) -> Result<Value, OAuthError> {
        let Some(code) = params.get("device_code").copied() else {
            return Err(invalid_request("device_code is missing"));
        };
        let cfg = self.device_cfg.clone();
        let now = std::time::Instant::now();
        self.device_polls.push(now);
        let Some(entry) = self.device_codes.get_mut(code) else {
            return Err(invalid_grant("unknown device code"));
        };
        if entry.used {
            return Err(invalid_grant("device code already used"));
        }
        // A poll before the interval has passed (with 200 ms of slack for scheduling).
        let early = entry.last_poll.is_some_and(|last| {
            now.duration_since(last) + Duration::from_millis(200) < entry.interval
        });
        entry.last_poll = Some(now);
        if early {
            entry.interval += Duration::from_secs(5);
            self.early_polls += 1;
            return Err(oauth_error("slow_down", "polling too fast"));
        }
        let answer = cfg.script.get(entry.polls).copied().unwrap_or(cfg.then);
        entry.polls += 1;
        match answer {
            DeviceAnswer::Pending => Err(oauth_error("authorization_pending", "not yet approved")),
            DeviceAnswer::SlowDown => {
                entry.interval += Duration::from_secs(5);
                Err(oauth_error("slow_down", "polling too fast"))
            }
            DeviceAnswer::Deny => Err(oauth_error("access_denied", "the user refused")),
            DeviceAnswer::Expire => Err(oauth_error("expired_token", "the device code expired")),
            DeviceAnswer::Approve => {
                entry.used = true;
                let grant = self.new_grant(params.get("scope").map(|s| s.to_string()), None);
                let at = self.mint_access_token(grant);
                let rt = self.mint_refresh_token(grant);
                Ok(self.token_body(grant, at, Some(rt)))
            }
        }
    }

    fn token_body(
        &self,
        grant: usize,
        access_token: String,
        refresh_token: Option<String>,
    ) -> Value {
        let mut body = Map::new();
        body.insert("access_token".into(), access_token.into());
        if !self.cfg.omit_token_type {
            body.insert("token_type".into(), "Bearer".into());
        }
        if let Some(n) = self.cfg.expires_in {
            body.insert("expires_in".into(), n.into());
        }
        if let Some(rt) = refresh_token {
            body.insert("refresh_token".into(), rt.into());
        }
        if let Some(scope) = &self.grants[grant].scope {
            body.insert("scope".into(), scope.clone().into());
        }
        Value::Object(body)
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn authorize(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = parse_pairs(query.unwrap_or_default().as_bytes());
    let mut inner = lock(&shared);
    inner.authorize_requests.push(pairs.clone());
    match inner.authorize(&pairs) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(reason) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("invalid authorization request: {reason}\n"),
        )
            .into_response(),
    }
}

async fn token(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, delay) = {
        let mut inner = lock(&shared);
        let content_type = header_str(&headers, header::CONTENT_TYPE);
        let json_body = content_type.as_deref().is_some_and(|c| {
            c.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
        let req = TokenRequest {
            form: if json_body {
                json_pairs(&body)
            } else {
                parse_pairs(&body)
            },
            authorization: header_str(&headers, header::AUTHORIZATION),
            content_type,
            accept: header_str(&headers, header::ACCEPT),
            query,
        };
        let refreshing = req.param("grant_type") == Some("refresh_token");
        match req.param("grant_type") {
            Some("authorization_code") => inner.code_exchanges += 1,
            Some("refresh_token") => inner.refreshes += 1,
            _ => {}
        }
        inner.token_requests.push(req.clone());
        let response = match inner.faults.pop_front() {
            Some(fault) => {
                if fault.after_processing {
                    let _ = inner.token(&req);
                }
                fault_response(&fault)
            }
            None => match inner.token(&req) {
                Ok(body) => inner.success_response(&req, body, refreshing),
                Err(e) => inner.error_response(&req, e, refreshing),
            },
        };
        (response, inner.token_delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

async fn device(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = lock(&shared);
    let req = TokenRequest {
        form: parse_pairs(&body),
        authorization: header_str(&headers, header::AUTHORIZATION),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        accept: header_str(&headers, header::ACCEPT),
        query: None,
    };
    inner.device_requests.push(req.clone());
    match inner.device_authorization(&req) {
        Ok(body) => json_response(StatusCode::OK, &body, &[]),
        Err(e) => inner.error_response(&req, e, false),
    }
}

/// RFC 7009 §2.1: revoke `token` (refresh token: its grant; access token: itself); 200 for
/// any token, even an unknown one (§2.2).
async fn revoke(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let req = TokenRequest {
        form: parse_pairs(&body),
        authorization: header_str(&headers, header::AUTHORIZATION),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        accept: header_str(&headers, header::ACCEPT),
        query,
    };
    inner.revoke_requests.push(req.clone());
    if let Some(fault) = inner.revoke_faults.pop_front() {
        return fault_response(&fault);
    }
    let form_body = req.content_type.as_deref().is_some_and(|c| {
        c.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    let error = |e: OAuthError| {
        json_response(
            e.status,
            &json!({ "error": e.error, "error_description": e.description }),
            &[],
        )
    };
    if !form_body {
        return error(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params: HashMap<&str, &str> = req
        .form
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = inner.authenticate_client(&req, &params) {
        return error(e);
    }
    let Some(token) = params.get("token").copied() else {
        return error(invalid_request("token is missing"));
    };
    if let Some(entry) = inner.refresh_tokens.get(token) {
        let grant = entry.grant;
        if !inner.grants[grant].revoked {
            inner.grants[grant].revoked = true;
            inner.revoked_by_request += 1;
        }
    } else {
        inner.access_tokens.remove(token);
    }
    (StatusCode::OK, "").into_response()
}

async fn userinfo(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let mut inner = lock(&shared);
    inner.userinfo_requests += 1;
    let bearer = header_str(&headers, header::AUTHORIZATION).and_then(|h| {
        let (scheme, token) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    });
    if bearer.is_some_and(|t| inner.at_live(&t)) {
        json_response(StatusCode::OK, &json!({ "sub": SUBJECT }), &[])
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response()
    }
}

impl Inner {
    /// A successful token answer in the configured [`ResponseStyle`].
    fn success_response(&self, req: &TokenRequest, body: Value, refreshing: bool) -> Response {
        let wants_json = req
            .accept
            .as_deref()
            .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"));
        match self.cfg.response_style {
            ResponseStyle::Json => json_response(StatusCode::OK, &body, &[]),
            ResponseStyle::FormUnlessJsonAccepted if wants_json => {
                json_response(StatusCode::OK, &body, &[])
            }
            ResponseStyle::FormUnlessJsonAccepted | ResponseStyle::Form => {
                form_response(StatusCode::OK, &body)
            }
            ResponseStyle::CamelCase => {
                let renamed: Map<String, Value> = body
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (camel_case(k), v.clone()))
                    .collect();
                json_response(StatusCode::OK, &Value::Object(renamed), &[])
            }
            ResponseStyle::SlackNested if refreshing => {
                let mut top = body.as_object().cloned().unwrap_or_default();
                top.insert("ok".into(), true.into());
                top.insert("token_type".into(), "user".into());
                json_response(StatusCode::OK, &Value::Object(top), &[])
            }
            ResponseStyle::SlackNested => {
                let mut user = body.as_object().cloned().unwrap_or_default();
                user.insert("id".into(), "U0FAKE".into());
                user.insert("token_type".into(), "user".into());
                let answer = json!({
                    "ok": true,
                    "app_id": "A0FAKE",
                    "authed_user": Value::Object(user),
                    // Granted bot scopes put the bot token at the top level: not the user's.
                    "access_token": "xoxb-BOT-TOKEN-NOT-THE-USER-TOKEN",
                    "token_type": "bot",
                    "team": { "id": "T0FAKE", "name": "Fake" },
                });
                json_response(StatusCode::OK, &answer, &[])
            }
        }
    }

    /// An error answer in the configured [`ErrorStyle`].
    fn error_response(&self, req: &TokenRequest, e: OAuthError, refreshing: bool) -> Response {
        let bad_grant = e.error == "invalid_grant";
        match self.cfg.error_style {
            ErrorStyle::Rfc6749 => {
                let body = json!({ "error": e.error, "error_description": e.description });
                let challenge = [("www-authenticate", "Basic realm=\"fake-as\"")];
                let extra: &[(&str, &str)] = if e.status == StatusCode::UNAUTHORIZED {
                    &challenge
                } else {
                    &[]
                };
                json_response(e.status, &body, extra)
            }
            ErrorStyle::GitHub => {
                let error = match (bad_grant, refreshing) {
                    (true, false) => "bad_verification_code",
                    (true, true) => "bad_refresh_token",
                    _ => e.error,
                };
                let body = json!({ "error": error, "error_description": e.description });
                let wants_json = req
                    .accept
                    .as_deref()
                    .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"));
                if self.cfg.response_style == ResponseStyle::Form
                    || (self.cfg.response_style == ResponseStyle::FormUnlessJsonAccepted
                        && !wants_json)
                {
                    form_response(StatusCode::OK, &body)
                } else {
                    json_response(StatusCode::OK, &body, &[])
                }
            }
            ErrorStyle::Slack => {
                let error = match (bad_grant, refreshing) {
                    (true, false) => "invalid_code",
                    (true, true) => "invalid_refresh_token",
                    (false, _) if e.error == "invalid_client" => "invalid_client_id",
                    _ => e.error,
                };
                json_response(StatusCode::OK, &json!({ "ok": false, "error": error }), &[])
            }
            ErrorStyle::Twitch => {
                let message = if bad_grant && refreshing {
                    "Invalid refresh token".to_string()
                } else {
                    e.description.clone()
                };
                let status = e.status.as_u16();
                json_response(
                    e.status,
                    &json!({ "status": status, "message": message }),
                    &[],
                )
            }
        }
    }

    fn record_check(&mut self, path: &str, method: &str, headers: &HeaderMap, body: &[u8]) {
        self.check_requests.push(CheckRequest {
            path: path.into(),
            method: method.into(),
            authorization: header_str(headers, header::AUTHORIZATION),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }

    /// The token of `Authorization: {scheme} {token}`, if live.
    fn live_token(&self, headers: &HeaderMap, scheme: &str) -> Option<String> {
        let value = header_str(headers, header::AUTHORIZATION)?;
        let (given, token) = value.split_once(' ')?;
        (given.eq_ignore_ascii_case(scheme) && self.at_live(token.trim()))
            .then(|| token.trim().to_string())
    }
}

/// Jobber's GraphQL endpoint, for `{ account { id name } }`.
async fn graphql(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = lock(&shared);
    inner.record_check("/graphql", "POST", &headers, &body);
    let json_body = header_str(&headers, header::CONTENT_TYPE)
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"));
    let query = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("query").and_then(Value::as_str).map(str::to_string));
    if !json_body || query.is_none() {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "message": "the body must be JSON with a query" }),
            &[],
        );
    }
    if headers.get("x-jobber-graphql-version").is_none() {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "message": "X-JOBBER-GRAPHQL-VERSION header is required" }),
            &[],
        );
    }
    if inner.live_token(&headers, "Bearer").is_none() {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "message": "Access token expired" }),
            &[],
        );
    }
    json_response(
        StatusCode::OK,
        &json!({ "data": { "account": { "id": "ACCOUNT-1", "name": "Fake Co" } } }),
        &[],
    )
}

/// Slack's `auth.test`: HTTP 200 whatever happens; `ok` tells.
async fn slack_auth_test(
    State(shared): State<Shared>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    inner.record_check("/api/auth.test", method.as_str(), &headers, &body);
    let answer = if inner.live_token(&headers, "Bearer").is_some() {
        json!({ "ok": true, "user_id": "U0FAKE", "team_id": "T0FAKE" })
    } else {
        json!({ "ok": false, "error": "invalid_auth" })
    };
    json_response(StatusCode::OK, &answer, &[])
}

/// Twitch's validate endpoint: `Authorization: OAuth <token>`.
async fn twitch_validate(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let mut inner = lock(&shared);
    inner.record_check("/validate", "GET", &headers, b"");
    if inner.live_token(&headers, "OAuth").is_some() {
        json_response(
            StatusCode::OK,
            &json!({ "client_id": inner.cfg.client_id, "login": "fake", "expires_in": 3600 }),
            &[],
        )
    } else {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "status": 401, "message": "invalid access token" }),
            &[],
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A JSON object's members as form pairs (strings as they are, other values as JSON text).
fn json_pairs(body: &[u8]) -> Vec<(String, String)> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `snake_case` → `camelCase`.
fn camel_case(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON object answered form-encoded (GitHub's default).
fn form_response(status: StatusCode, body: &Value) -> Response {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in body.as_object().into_iter().flatten() {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        form.append_pair(k, &v);
    }
    Response::builder()
        .status(status)
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(form.finish().into())
        .expect("fake AS: form response")
}

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    // A panicking test thread must not take every later request down with it.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn json_response(status: StatusCode, body: &Value, extra: &[(&str, &str)]) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::PRAGMA, "no-cache");
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder
        .body(body.to_string().into())
        .expect("fake AS: response")
}

fn fault_response(fault: &TokenFault) -> Response {
    let mut builder = Response::builder()
        .status(fault.status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store");
    for (name, value) in &fault.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(fault.body.clone().into())
        .expect("fake AS: fault response")
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn parse_pairs(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// The redirect URI as a URL to append the response to, if it is a loopback `http` URI with
/// an explicit port and no fragment (RFC 8252 §7.3).
fn loopback_redirect(redirect_uri: &str) -> Result<Url, String> {
    let url = Url::parse(redirect_uri).map_err(|e| format!("redirect_uri is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        None => false,
    };
    let plain = url.username().is_empty() && url.password().is_none() && url.fragment().is_none();
    if url.scheme() != "http" || !loopback || url.port().is_none() || !plain {
        return Err("redirect_uri must be http://localhost|127.0.0.1|[::1]:PORT/...".into());
    }
    Ok(url)
}

/// `Basic base64(urlencode(id):urlencode(secret))` → (id, secret), RFC 6749 §2.3.1.
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// One `application/x-www-form-urlencoded` decode; `None` on a bad escape or bad UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn fake_jwt(claims: &Value) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // Not a real HMAC: nothing verifies it; it only has the right shape.
    let sig = Sha256::digest(format!("fake-as-unsigned.{input}"));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn sentinel(kind: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}-SENTINEL-{hex}")
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn is_unreserved(b: u8) -> bool {
    is_base64url(b) || b == b'.' || b == b'~'
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
