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

mod apis;
mod authorize;
mod device;
mod revoke;
mod token;

use apis::{graphql, slack_auth_test, twitch_validate, userinfo};
use authorize::authorize;
use device::device;
use revoke::revoke;
use token::token;

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
    /// A server that knows nothing of PKCE (RFC 7636): neither requires nor checks it.
    pub no_pkce: bool,
    /// Sent with every refresh token as `refresh_token_expires_in` (GitHub App user tokens).
    pub refresh_token_expires_in: Option<u64>,
    /// Sent with every token answer as `warning` (Jobber).
    pub warning: Option<String>,
    /// `POST /revoke` takes `{"token": …}` as JSON (Notion, QuickBooks), not a form.
    pub revoke_json: bool,
    /// `Some((name, value))`: a refresh token is issued only when the authorization request had
    /// `name=value` (for `scope`: `value` among the scopes) — Google `access_type=offline`,
    /// Dropbox `token_access_type=offline`, Microsoft/Atlassian `offline_access`.
    pub refresh_token_requires: Option<(&'static str, &'static str)>,
    /// A refresh must carry `redirect_uri`, equal to the authorization's (GitLab's docs).
    pub refresh_requires_redirect_uri: bool,
    /// `Some((name, value))`: token, device and revocation requests without this header
    /// (Notion: `Notion-Version`) are refused with 400 `invalid_request`.
    pub required_header: Option<(&'static str, &'static str)>,
    /// Spotify: a refresh returns a new refresh token (the old one dies) only every other
    /// time, and none otherwise (the old one stays good).
    pub rotate_sometimes: bool,
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
            no_pkce: false,
            refresh_token_expires_in: None,
            warning: None,
            revoke_json: false,
            refresh_token_requires: None,
            refresh_requires_redirect_uri: false,
            required_header: None,
            rotate_sometimes: false,
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
    /// The value of the header `AsConfig::required_header` names, as received.
    pub required_header: Option<String>,
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
    /// [`Self::is_live_access_token`] for another server (a fake API) to ask on its own thread.
    pub fn access_token_check(&self) -> impl Fn(&str) -> bool + Send + 'static {
        let shared = self.shared.clone();
        move |at| lock(&shared).at_live(at)
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
}

// ---------------------------------------------------------------------------------------------
// Handlers: one module per endpoint (authorize, token, device, revoke, apis).

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

/// A misconfigured gateway's habit: `{REQUEST}` in a fault's body becomes the request as
/// received (its `Authorization` header and raw body), JSON-string-escaped.
pub const ECHO_REQUEST: &str = "{REQUEST}";

fn echo(body: &str, authorization: Option<&str>, raw: &[u8]) -> String {
    let request = format!(
        "authorization: {}; body: {}",
        authorization.unwrap_or("-"),
        String::from_utf8_lossy(raw)
    );
    let escaped = serde_json::to_string(&request).expect("a string serializes");
    body.replace(ECHO_REQUEST, &escaped[1..escaped.len() - 1])
}

fn fault_response(fault: &TokenFault, authorization: Option<&str>, raw: &[u8]) -> Response {
    let mut builder = Response::builder()
        .status(fault.status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store");
    for (name, value) in &fault.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(echo(&fault.body, authorization, raw).into())
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
