//! A Doppler-compatible fake API server for the integration tests.
//!
//! It speaks the slice of the Doppler v3 API that the `doppler` CLI and `oauth-pkce` use for
//! secrets, as described in `reference/doppler-api.md`: list, names, download, single get and
//! delete, update (both the `change_requests` and the `secrets` map form, with the per-secret
//! `originalValue` compare-and-swap) and `/v3/me`. Where that page marks a behaviour as a
//! guess (status codes and messages never seen from live Doppler), this server uses its guess
//! and says `[guess]`. `doppler_fidelity.rs` checks the fake against the real CLI.
//!
//! The server binds `127.0.0.1:0` and runs a single-threaded tokio runtime on its own
//! thread, so tests stay synchronous. Every request is recorded before anything else
//! happens; tests can queue faults (a status with a JSON or HTML body) and add latency.
//! Errors are always `{"messages":[...],"success":false}` as `application/json`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::server::Background;

/// What a service token may do with its one config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, without the `?`; empty when there was none.
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
}

/// A canned response served instead of normal handling (see [`FakeDoppler::push_fault`]).
#[derive(Clone, Debug)]
pub struct Fault {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Fault {
    /// A Doppler-style JSON error: `{"messages":[message],"success":false}`.
    pub fn json(status: u16, message: &str) -> Fault {
        let body = error_body(message);
        Fault {
            status,
            body,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// An HTML error page, as a proxy or load balancer in front of the API would send.
    pub fn html(status: u16) -> Fault {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason());
        let body = format!(
            "<html><body><h1>{status} {}</h1></body></html>\n",
            reason.unwrap_or("")
        );
        Fault {
            status,
            body,
            content_type: "text/html",
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A running fake Doppler API. Dropping it stops the server.
pub struct FakeDoppler {
    url: String,
    inner: Arc<Mutex<Inner>>,
    _server: Background,
}

impl FakeDoppler {
    /// Binds 127.0.0.1:0 and serves from a tokio runtime on a background thread. The socket
    /// is listening when this returns.
    pub fn start() -> FakeDoppler {
        let listener = Background::bind();
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        FakeDoppler {
            url,
            inner,
            _server: Background::router("fake-doppler", listener, app),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A service token (the caller passes the full `dp.st.…` string) scoped to one
    /// project and config, which are created if absent.
    pub fn add_service_token(&self, token: &str, project: &str, config: &str, access: Access) {
        let mut inner = self.lock();
        inner.config_mut(project, config);
        let (project, config) = (project.to_owned(), config.to_owned());
        inner.tokens.insert(
            token.to_owned(),
            TokenKind::Service {
                project,
                config,
                access,
            },
        );
    }

    /// A personal (`dp.pt.`), CLI (`dp.ct.`) or service-account (`dp.sa.`) token: read and
    /// write access to every project and config, which requests must name.
    pub fn add_personal_token(&self, token: &str) {
        let kind = match token.get(..6) {
            Some("dp.ct.") => "cli",
            Some("dp.sa.") => "service_account",
            _ => "personal",
        };
        self.lock()
            .tokens
            .insert(token.to_owned(), TokenKind::User { kind });
    }

    /// Creates the project and config if absent.
    pub fn add_config(&self, project: &str, config: &str) {
        self.lock().config_mut(project, config);
    }

    /// Sets a secret's raw value (creating the config, and the secret as `masked`, if absent).
    pub fn set_secret(&self, project: &str, config: &str, name: &str, value: &str) {
        upsert(self.lock().config_mut(project, config), name, value);
    }

    /// Removes a secret.
    pub fn delete_secret(&self, project: &str, config: &str, name: &str) {
        self.lock().config_mut(project, config).remove(name);
    }

    /// Sets the visibility (`masked`, `unmasked`, `restricted`) of an existing secret.
    pub fn set_visibility(&self, project: &str, config: &str, name: &str, visibility: &str) {
        let mut inner = self.lock();
        let secret = inner.config_mut(project, config).get_mut(name);
        secret.expect("set_visibility: no such secret").visibility = visibility.to_owned();
    }

    /// The raw (stored, unexpanded) value of a secret.
    pub fn secret(&self, project: &str, config: &str, name: &str) -> Option<String> {
        self.stored(project, config, name).map(|s| s.raw)
    }

    pub fn visibility(&self, project: &str, config: &str, name: &str) -> Option<String> {
        self.stored(project, config, name).map(|s| s.visibility)
    }

    /// Every request received so far, in order (including those answered with a fault).
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// How many requests had this method and path (the query is ignored).
    pub fn count(&self, method: &str, path: &str) -> usize {
        let inner = self.lock();
        inner
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// GETs of secret values or names: list, single secret, download and names.
    pub fn reads(&self) -> usize {
        ["secrets", "secret", "secrets/download", "secrets/names"]
            .iter()
            .map(|endpoint| self.count("GET", &format!("/v3/configs/config/{endpoint}")))
            .sum()
    }

    /// POSTs to the update endpoint. `DELETE /v3/configs/config/secret` is not counted.
    pub fn writes(&self) -> usize {
        self.count("POST", "/v3/configs/config/secrets")
    }

    /// Writes that carry tokens (any `*_ACCESS_TOKEN` change): a sign-in's preflight, which
    /// writes only the lease, is not one.
    pub fn token_writes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/v3/configs/config/secrets")
            .filter(|r| r.body.contains("_ACCESS_TOKEN\""))
            .count()
    }

    /// The next `times` requests whose path is `path` (any path for `None`) get `fault`
    /// instead of normal handling. Faults are matched in the order they were pushed.
    pub fn push_fault(&self, path: Option<&str>, fault: Fault, times: usize) {
        self.push_fault_on(None, path, 0, fault, times);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Like [`FakeDoppler::push_fault`], for requests with `method` (any for `None`), letting
    /// the first `skip` matching requests through.
    pub fn push_fault_on(
        &self,
        method: Option<&str>,
        path: Option<&str>,
        skip: usize,
        fault: Fault,
        times: usize,
    ) {
        if times > 0 {
            self.lock().faults.push_back(FaultRule {
                method: method.map(str::to_owned),
                path: path.map(str::to_owned),
                skip,
                fault,
                times,
            });
        }
    }

    /// Delays every response by `delay`. The request takes effect at once; only the answer
    /// is late, so a client that times out on a write cannot tell whether it was applied.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// How the update endpoint treats preconditions and batches from now on.
    pub fn set_semantics(&self, semantics: Semantics) {
        self.lock().semantics = semantics;
    }

    /// The `n`-th write from now (1: the next) is applied, then its answer is lost: the
    /// client gets a proxy's `502` instead.
    pub fn lose_answer_of_write(&self, n: usize) {
        let mut inner = self.lock();
        let at = inner.writes_seen + n;
        inner.lose_answers.push(at);
    }

    /// From the `n`-th write from now on (1: the next, its answer included), Doppler's clock
    /// (its `Date`) is `seconds` ahead: a clock that jumps, as one behind a load balancer
    /// whose servers disagree may seem to.
    pub fn jump_clock_at_write(&self, n: usize, seconds: i64) {
        let mut inner = self.lock();
        inner.clock_jump = Some((inner.writes_seen + n, seconds));
    }

    /// At most `per_minute` secret reads per token in any 60 s; more get `429` with
    /// `Retry-After` and `X-RateLimit-*` (Doppler's Developer plan allows 120).
    pub fn set_read_limit(&self, per_minute: usize) {
        self.lock().read_limit = Some(per_minute);
    }

    /// Answer a read-only token's writes with `status` instead of 403 (Doppler may well use
    /// 400 for a permission refusal, `reference/doppler-api.md`).
    pub fn set_read_only_status(&self, status: u16) {
        self.lock().read_only_status = Some(status);
    }

    /// Reads refused with 429 so far.
    pub fn rate_limited(&self) -> usize {
        self.lock().limited
    }

    fn stored(&self, project: &str, config: &str, name: &str) -> Option<Secret> {
        let inner = self.lock();
        inner.projects.get(project)?.get(config)?.get(name).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

// ---------------------------------------------------------------------------------------------
// State

/// The managed secrets Doppler adds to every config (on by default, `include_managed_secrets`).
const MANAGED: [&str; 3] = ["DOPPLER_CONFIG", "DOPPLER_ENVIRONMENT", "DOPPLER_PROJECT"];
const VISIBILITIES: [&str; 3] = ["masked", "unmasked", "restricted"];
const VALUE_TYPES: &str = "string json json5 boolean integer decimal email url uuidv4 cuid2 \
                           ulid datetime8601 date8601 yaml";

#[derive(Clone, Debug)]
enum TokenKind {
    Service {
        project: String,
        config: String,
        access: Access,
    },
    /// `kind` is the `/v3/me` type: `personal`, `cli` or `service_account`.
    User { kind: &'static str },
}

#[derive(Clone, Debug)]
struct Secret {
    raw: String,
    visibility: String,
    value_type: String,
}

impl Secret {
    fn new(raw: &str) -> Secret {
        let (raw, visibility) = (raw.to_owned(), "masked".to_owned());
        Secret {
            raw,
            visibility,
            value_type: "string".to_owned(),
        }
    }
}

type Secrets = BTreeMap<String, Secret>;

/// Sets the raw value, keeping visibility and type; a new secret is a `masked` string.
fn upsert(secrets: &mut Secrets, name: &str, raw: &str) {
    let secret = secrets
        .entry(name.to_owned())
        .or_insert_with(|| Secret::new(raw));
    secret.raw = raw.to_owned();
}

/// A queued fault: which requests it matches, how many matching ones to let through first,
/// and how many to answer with `fault`.
struct FaultRule {
    method: Option<String>,
    path: Option<String>,
    skip: usize,
    fault: Fault,
    times: usize,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, TokenKind>,
    /// project → config → secrets.
    projects: BTreeMap<String, BTreeMap<String, Secrets>>,
    requests: Vec<Recorded>,
    faults: VecDeque<FaultRule>,
    delay: Duration,
    semantics: Semantics,
    /// Writes (POST …/secrets) seen, and the ones whose answer is lost after they applied.
    writes_seen: usize,
    lose_answers: Vec<usize>,
    /// From which write on Doppler's `Date` is how many seconds ahead.
    clock_jump: Option<(usize, i64)>,
    /// Secret reads allowed per token per minute (`None`: unlimited), and when each was made.
    read_limit: Option<usize>,
    /// The status a read-only token's write gets (`None`: 403).
    read_only_status: Option<u16>,
    reads_at: HashMap<String, Vec<std::time::Instant>>,
    limited: usize,
}

/// The readings of Doppler's update endpoint that its documentation leaves open
/// (`reference/doppler-api.md` §5): the fake plays any of them. All `false` is the fake's
/// default guess: `""` enforced, 409 on a failed precondition, all-or-nothing batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Semantics {
    /// `originalValue: ""` is no precondition at all (Doppler's TUI sends it for new secrets).
    pub empty_original_ignored: bool,
    /// A failed precondition skips that change and the answer is 200, not 409.
    pub skip_with_200: bool,
    /// Each change is applied on its own: one that fails does not undo or stop the others.
    pub per_change: bool,
}

impl Semantics {
    /// Every combination.
    pub fn all() -> Vec<Semantics> {
        (0..8)
            .map(|bits| Semantics {
                empty_original_ignored: bits & 1 != 0,
                skip_with_200: bits & 2 != 0,
                per_change: bits & 4 != 0,
            })
            .collect()
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panicking test must not poison the server for the assertions that follow.
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn config_mut(&mut self, project: &str, config: &str) -> &mut Secrets {
        let configs = self.projects.entry(project.to_owned()).or_default();
        configs.entry(config.to_owned()).or_default()
    }

    fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self.faults.iter().position(|r| {
            r.path.as_deref().is_none_or(|p| p == path)
                && r.method.as_deref().is_none_or(|m| m == method)
        })?;
        let rule = &mut self.faults[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

// ---------------------------------------------------------------------------------------------
// Request handling

/// A Doppler error, answered as `{"messages":[message],"success":false}`.
struct ApiError {
    status: u16,
    message: String,
}

/// `fail!(404, "Could not find requested project '{p}'")` builds an [`ApiError`].
macro_rules! fail {
    ($status:expr, $($message:tt)+) => {
        ApiError { status: $status, message: format!($($message)+) }
    };
}

type Reply = Result<Response, ApiError>;

/// A request whose token is known.
struct Request {
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
    token: String,
    kind: TokenKind,
}

impl Request {
    /// A query parameter; an empty value counts as absent (the CLI sends `project=&config=`).
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Personal and CLI tokens read `restricted` secrets as `null`.
    fn hides_restricted(&self) -> bool {
        matches!(self.kind, TokenKind::User { .. })
    }

    /// The `secrets=A,B` filter of list and download.
    fn wants(&self, name: &str) -> bool {
        self.param("secrets")
            .is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut response, delay, request_id, ahead) = {
        let mut inner = lock(&inner);
        inner.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            body: String::from_utf8_lossy(&body).into_owned(),
            authorization: header(&headers, "authorization").map(str::to_owned),
        });
        let request_id = format!("fake-{:08}", inner.requests.len());
        let is_write = method == Method::POST && uri.path() == "/v3/configs/config/secrets";
        let response = match inner.take_fault(method.as_str(), uri.path()) {
            Some(mut fault) => {
                // `{REQUEST}` in a fault's body: the request as received, echoed back.
                let request = format!(
                    "authorization: {}; query: {}; body: {}",
                    header(&headers, "authorization").unwrap_or("-"),
                    uri.query().unwrap_or(""),
                    String::from_utf8_lossy(&body)
                );
                let escaped = serde_json::to_string(&request).expect("a string serializes");
                fault.body = fault
                    .body
                    .replace("{REQUEST}", &escaped[1..escaped.len() - 1]);
                fault_response(&fault)
            }
            None => match inner.rate_limit(&method, &uri, &headers) {
                Some(limited) => limited,
                None => {
                    let answer = inner
                        .route(&method, &uri, headers, body)
                        .unwrap_or_else(|e| {
                            reply(e.status, "application/json", error_body(&e.message))
                        });
                    if is_write {
                        inner.writes_seen += 1;
                        let n = inner.writes_seen;
                        if let Some(i) = inner.lose_answers.iter().position(|&w| w == n) {
                            inner.lose_answers.remove(i);
                            fault_response(&Fault::html(502))
                        } else {
                            answer
                        }
                    } else {
                        answer
                    }
                }
            },
        };
        let ahead = match inner.clock_jump {
            Some((from, seconds)) if inner.writes_seen >= from => seconds,
            _ => 0,
        };
        (response, inner.delay, request_id, ahead)
    };
    let headers = response.headers_mut();
    headers.insert("x-request-id", request_id.parse().expect("request id"));
    // Doppler's clock, the one every machine shares (an HTTP-date).
    let date = (chrono::Utc::now() + chrono::Duration::seconds(ahead))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    headers.insert("date", date.parse().expect("an HTTP date"));
    tokio::time::sleep(delay).await;
    response
}

impl Inner {
    /// Doppler's per-token limit on secret reads [docs]: a sliding minute here.
    fn rate_limit(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        let limit = self.read_limit?;
        if method != Method::GET || !uri.path().starts_with("/v3/configs/config/secret") {
            return None;
        }
        let now = std::time::Instant::now();
        let minute = Duration::from_secs(60);
        let reads = self
            .reads_at
            .entry(token(headers).unwrap_or_default())
            .or_default();
        reads.retain(|t| now.duration_since(*t) < minute);
        if reads.len() < limit {
            reads.push(now);
            return None;
        }
        self.limited += 1;
        let wait = minute
            .saturating_sub(now.duration_since(reads[0]))
            .as_secs()
            + 1;
        let reset = chrono::Utc::now().timestamp() + wait as i64;
        let mut response = reply(
            429,
            "application/json",
            error_body("You have exceeded the rate limit"),
        );
        let h = response.headers_mut();
        for (name, value) in [
            ("retry-after", wait.to_string()),
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-reset", reset.to_string()),
        ] {
            h.insert(name, value.parse().expect("a header value"));
        }
        Some(response)
    }

    fn route(&mut self, method: &Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> Reply {
        let token = token(&headers).unwrap_or_default();
        let kind = self.tokens.get(&token).cloned();
        let kind = kind.ok_or_else(|| fail!(401, "Invalid Auth token"))?;
        let query = uri.query().unwrap_or("").as_bytes();
        let query = url::form_urlencoded::parse(query).into_owned().collect();
        let req = Request {
            query,
            headers,
            body,
            token,
            kind,
        };
        match (method.as_str(), uri.path()) {
            ("GET", "/v3/me") => Ok(me(&req)),
            ("GET", "/v3/configs/config/secrets") => self.list(&req),
            ("GET", "/v3/configs/config/secrets/names") => self.names(&req),
            ("GET", "/v3/configs/config/secrets/download") => self.download(&req),
            ("GET", "/v3/configs/config/secret") => self.get_one(&req),
            ("DELETE", "/v3/configs/config/secret") => self.delete_one(&req),
            ("POST", "/v3/configs/config/secrets") => self.update(&req),
            (method, path) => Err(fail!(404, "The fake has no endpoint {method} {path}")),
        }
    }

    /// Which project and config a request addresses (doc §2).
    fn resolve(
        &self,
        req: &Request,
        project: Option<&str>,
        config: Option<&str>,
    ) -> Result<(String, String), ApiError> {
        let no_access = "This token does not have access to requested";
        match &req.kind {
            // [3p] an explicit different project or config is refused; [guess] with 400.
            TokenKind::Service {
                project: own_project,
                config: own_config,
                ..
            } => {
                if let Some(p) = project.filter(|p| p != own_project) {
                    return Err(fail!(400, "{no_access} project '{p}'"));
                }
                if let Some(c) = config.filter(|c| c != own_config) {
                    return Err(fail!(400, "{no_access} config '{c}'"));
                }
                Ok((own_project.clone(), own_config.clone()))
            }
            // [guess] 400 for a missing name, 404 for an unknown one.
            TokenKind::User { .. } => {
                let project = project.ok_or_else(|| fail!(400, "You must specify a project"))?;
                let configs = self.projects.get(project);
                let configs = configs
                    .ok_or_else(|| fail!(404, "Could not find requested project '{project}'"))?;
                let config = config.ok_or_else(|| fail!(400, "You must specify a config"))?;
                if !configs.contains_key(config) {
                    return Err(fail!(404, "Could not find requested config '{config}'"));
                }
                Ok((project.to_owned(), config.to_owned()))
            }
        }
    }

    fn resolve_query(&self, req: &Request) -> Result<(String, String), ApiError> {
        self.resolve(req, req.param("project"), req.param("config"))
    }

    /// The config's secrets plus, unless `include_managed_secrets=false`, the managed ones.
    fn view(&self, req: &Request, project: &str, config: &str) -> Secrets {
        let mut secrets = self.projects[project][config].clone();
        if req.param("include_managed_secrets") != Some("false") {
            // [guess] environment = config name up to the first `_`; visibility unmasked.
            let environment = config.split('_').next().unwrap_or(config);
            for (name, value) in MANAGED.into_iter().zip([config, environment, project]) {
                let secret = Secret {
                    visibility: "unmasked".to_owned(),
                    ..Secret::new(value)
                };
                secrets.insert(name.to_owned(), secret);
            }
        }
        secrets
    }

    fn list(&self, req: &Request) -> Reply {
        let (project, config) = self.resolve_query(req)?;
        let view = self.view(req, &project, &config);
        let secrets = secret_objects(&view, req, |name| req.wants(name));
        Ok(ok_json(json!({"secrets": secrets, "success": true})))
    }

    fn names(&self, req: &Request) -> Reply {
        let (project, config) = self.resolve_query(req)?;
        let names: Vec<String> = self.view(req, &project, &config).into_keys().collect();
        Ok(ok_json(json!({"names": names, "success": true})))
    }

    /// A flat map of computed values, rendered by the server (doc §3.4), with an ETag.
    fn download(&self, req: &Request) -> Reply {
        let (project, config) = self.resolve_query(req)?;
        let view = self.view(req, &project, &config);
        let hide = req.hides_restricted();
        let values: BTreeMap<&str, String> = view
            .iter()
            .filter(|(name, _)| req.wants(name))
            // A restricted secret read with a user token comes back empty (doc §2).
            .map(|(name, s)| (name.as_str(), computed(s, &view, hide).unwrap_or_default()))
            .collect();
        // The fake renders three of Doppler's formats. [guess] the env quoting.
        let (body, content_type) = match req.param("format").unwrap_or("json") {
            "json" => (
                serde_json::to_string(&values).expect("json"),
                "application/json",
            ),
            "env" => (render_env(&values, true), "text/plain"),
            "env-no-quotes" => (render_env(&values, false), "text/plain"),
            other => return Err(fail!(400, "The fake does not render format '{other}'")),
        };
        // The CLI keeps the ETag and sends If-None-Match; 304 means "use your fallback file".
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = format!("\"{:016x}\"", hasher.finish());
        let unchanged = header(&req.headers, "if-none-match") == Some(etag.as_str());
        let (status, body) = if unchanged {
            (304, String::new())
        } else {
            (200, body)
        };
        let mut response = reply(status, content_type, body);
        response
            .headers_mut()
            .insert("etag", etag.parse().expect("etag"));
        Ok(response)
    }

    /// `GET …/secret?name=`: a missing secret is 200 with every field `null` [tf].
    fn get_one(&self, req: &Request) -> Reply {
        let (project, config) = self.resolve_query(req)?;
        let name = req
            .param("name")
            .ok_or_else(|| fail!(400, "You must specify a name"))?;
        let view = self.view(req, &project, &config);
        let value = match view.get(name) {
            Some(secret) => secret_object(secret, &view, req.hides_restricted()),
            None => json!({
                "raw": null, "computed": null, "note": null,
                "rawVisibility": null, "computedVisibility": null,
                "rawValueType": null, "computedValueType": null,
            }),
        };
        Ok(ok_json(
            json!({"name": name, "value": value, "success": true}),
        ))
    }

    /// `DELETE …/secret?name=` → 204. [guess] Deleting an absent secret is a no-op, like a
    /// `null` in the map form of the update.
    fn delete_one(&mut self, req: &Request) -> Reply {
        let (project, config) = self.resolve_query(req)?;
        require_write(req, self.read_only_status)?;
        let name = req
            .param("name")
            .ok_or_else(|| fail!(400, "You must specify a name"))?;
        self.config_mut(&project, &config).remove(name);
        let response = Response::builder().status(204).body(Body::empty());
        Ok(response.expect("empty response"))
    }

    /// `POST …/secrets`: applies the changes as [`Semantics`] says (by default every change or
    /// none), then answers with the config's secrets.
    fn update(&mut self, req: &Request) -> Reply {
        let body: Value =
            serde_json::from_slice(&req.body).map_err(|e| fail!(400, "Invalid JSON body: {e}"))?;
        let body = body
            .as_object()
            .ok_or_else(|| fail!(400, "The body must be a JSON object"))?;
        // The CLI sends project/config in the query, the OpenAPI spec in the body: query first.
        let body_project = str_field(body, "project")?.filter(|p| !p.is_empty());
        let body_config = str_field(body, "config")?.filter(|c| !c.is_empty());
        let project = req.param("project").or(body_project);
        let config = req.param("config").or(body_config);
        let (project, config) = self.resolve(req, project, config)?;
        require_write(req, self.read_only_status)?;

        let mut next = self.projects[&project][&config].clone();
        match (body.get("change_requests"), body.get("secrets")) {
            (Some(_), Some(_)) => {
                return Err(fail!(
                    400,
                    "You cannot use both 'secrets' and 'change_requests'"
                ));
            }
            (Some(Value::Array(changes)), None) => {
                let semantics = self.semantics;
                let mut failed = None;
                for change in changes {
                    // Per change: each on its own copy of what is there now.
                    let mut attempt = next.clone();
                    match apply_change(&mut attempt, change, semantics) {
                        Ok(()) => next = attempt,
                        Err(e) if e.status == 409 => {
                            failed.get_or_insert(e);
                            if !semantics.per_change {
                                break;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                match (failed, semantics) {
                    (None, _) => {}
                    // All or nothing: a failed precondition applies none of the changes.
                    (Some(e), s) if !s.per_change && !s.skip_with_200 => return Err(e),
                    (Some(_), s) if !s.per_change => {
                        next = self.projects[&project][&config].clone();
                    }
                    (Some(e), s) if !s.skip_with_200 => {
                        *self.config_mut(&project, &config) = next;
                        return Err(e);
                    }
                    (Some(_), _) => {}
                }
            }
            // The map form: a string sets the value, `null` deletes.
            (None, Some(Value::Object(map))) => {
                for (name, value) in map {
                    check_name(name)?;
                    match value {
                        Value::Null => {
                            next.remove(name);
                        }
                        Value::String(value) => upsert(&mut next, name, value),
                        _ => {
                            return Err(fail!(
                                400,
                                "The value of '{name}' must be a string or null"
                            ))
                        }
                    }
                }
            }
            _ => {
                return Err(fail!(
                    400,
                    "You must specify 'secrets' or 'change_requests'"
                ))
            }
        }
        *self.config_mut(&project, &config) = next;

        // [guess] the managed secrets are part of the answer, as in the list.
        let view = self.view(req, &project, &config);
        let secrets = secret_objects(&view, req, |_| true);
        Ok(ok_json(json!({"secrets": secrets, "success": true})))
    }
}

/// Applies one change request to `secrets` (a scratch copy: an error discards all of them).
///
/// Preconditions (`originalValue`, `originalVisibility`, `originalValueType`) are compared
/// with the stored secret named `originalName` (default: `name`). Decisions, all [guess]:
/// - `null` or an absent key means "no precondition", as a client's optional field sends;
/// - a precondition on a secret that does not exist always fails, even `originalValue: ""`,
///   since an absent secret is not the same as an empty one;
/// - failure is `409 The value of secret 'X' does not match originalValue`.
fn apply_change(
    secrets: &mut Secrets,
    change: &Value,
    semantics: Semantics,
) -> Result<(), ApiError> {
    let change = change
        .as_object()
        .ok_or_else(|| fail!(400, "A change must be an object"))?;
    let name = str_field(change, "name")?.ok_or_else(|| fail!(400, "A change needs a 'name'"))?;
    check_name(name)?;
    let original_name = str_field(change, "originalName")?.unwrap_or(name);
    let current = secrets.get(original_name).cloned();

    let original_type = match change.get("originalValueType") {
        Some(Value::Null) | None => None,
        Some(t) => Some(value_type(t)?),
    };
    let (raw, visibility, current_type) = match &current {
        Some(s) => (
            Some(s.raw.as_str()),
            Some(s.visibility.as_str()),
            Some(s.value_type.as_str()),
        ),
        None => (None, None, None),
    };
    let preconditions = [
        (
            "value",
            "originalValue",
            str_field(change, "originalValue")?
                .filter(|v| !(semantics.empty_original_ignored && v.is_empty())),
            raw,
        ),
        (
            "visibility",
            "originalVisibility",
            str_field(change, "originalVisibility")?,
            visibility,
        ),
        ("type", "originalValueType", original_type, current_type),
    ];
    for (what, field, expected, actual) in preconditions {
        if expected.is_some() && expected != actual {
            let message = format!("The {what} of secret '{original_name}' does not match {field}");
            return Err(fail!(409, "{message}"));
        }
    }

    if change.get("shouldDelete") == Some(&Value::Bool(true)) {
        secrets.remove(original_name);
        return Ok(());
    }
    // `value: null` keeps the current value, which a new secret does not have. [guess] 400.
    let mut secret = match (current, str_field(change, "value")?) {
        (Some(secret), None) => secret,
        (Some(secret), Some(value)) => Secret {
            raw: value.to_owned(),
            ..secret
        },
        (None, Some(value)) => Secret::new(value),
        (None, None) => return Err(fail!(400, "Secret '{name}' does not exist: give a value")),
    };
    if let Some(visibility) = str_field(change, "visibility")? {
        if !VISIBILITIES.contains(&visibility) {
            return Err(fail!(400, "Invalid visibility '{visibility}'"));
        }
        secret.visibility = visibility.to_owned();
    }
    if let Some(t) = change.get("valueType").filter(|t| !t.is_null()) {
        secret.value_type = value_type(t)?.to_owned();
    }
    if original_name != name {
        if secrets.contains_key(name) {
            return Err(fail!(400, "Secret '{name}' already exists"));
        }
        secrets.remove(original_name);
    }
    secrets.insert(name.to_owned(), secret);
    Ok(())
}

/// Names match `^[A-Z_][A-Z0-9_]*$` [docs]; the managed names are Doppler's. [guess] messages.
fn check_name(name: &str) -> Result<(), ApiError> {
    let first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    let rest = name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !(first && rest) {
        return Err(fail!(
            400,
            "Invalid secret name '{name}': use A-Z, 0-9 and _, not 0-9 first"
        ));
    }
    if MANAGED.contains(&name) {
        return Err(fail!(
            400,
            "Secret '{name}' is managed by Doppler and cannot be changed"
        ));
    }
    Ok(())
}

fn require_write(req: &Request, status: Option<u16>) -> Result<(), ApiError> {
    match req.kind {
        // [guess] the real status and message were never observed: 403, or as set.
        TokenKind::Service {
            access: Access::Read,
            ..
        } => Err(fail!(
            status.unwrap_or(403),
            "This token does not have write access"
        )),
        _ => Ok(()),
    }
}

/// `{"type": "json"}` → `"json"`, checked against the known types.
fn value_type(value: &Value) -> Result<&str, ApiError> {
    let t = value.get("type").and_then(Value::as_str).unwrap_or("");
    match VALUE_TYPES.split_whitespace().find(|known| *known == t) {
        Some(_) => Ok(t),
        None => Err(fail!(400, "Invalid value type {value}")),
    }
}

/// A string field of a JSON object: absent or `null` is `None`, any other type is a 400.
fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(fail!(400, "'{key}' must be a string")),
    }
}

fn me(req: &Request) -> Response {
    let kind = match req.kind {
        TokenKind::Service { .. } => "service_token",
        TokenKind::User { kind } => kind,
    };
    // Like the documented "dp.ct...b8aked": the first 5 and the last 6 characters.
    let chars: Vec<char> = req.token.chars().collect();
    let head: String = chars.iter().take(5).collect();
    let tail: String = chars[chars.len().saturating_sub(6)..].iter().collect();
    ok_json(json!({
        "slug": format!("fake-{kind}"),
        "name": "Fake Doppler token",
        "created_at": "2024-01-01T00:00:00.000Z",
        "last_seen_at": "2024-01-02T00:00:00.000Z",
        "type": kind,
        "token_preview": format!("{head}...{tail}"),
        "workplace": {"slug": "fakeworkplace", "name": "Fake Workplace"},
        "success": true,
    }))
}

// ---------------------------------------------------------------------------------------------
// Wire formats

/// The secret objects of `view` whose name passes `keep`.
fn secret_objects(
    view: &Secrets,
    req: &Request,
    keep: impl Fn(&str) -> bool,
) -> Map<String, Value> {
    let hide = req.hides_restricted();
    let kept = view.iter().filter(|(name, _)| keep(name));
    kept.map(|(name, secret)| (name.clone(), secret_object(secret, view, hide)))
        .collect()
}

/// The secret object of doc §3.1; `raw` and `computed` are `null` when hidden.
fn secret_object(secret: &Secret, view: &Secrets, hide_restricted: bool) -> Value {
    let hidden = hide_restricted && secret.visibility == "restricted";
    json!({
        "raw": if hidden { None } else { Some(&secret.raw) },
        "computed": computed(secret, view, hide_restricted),
        "note": "",
        "rawVisibility": secret.visibility,
        "computedVisibility": secret.visibility,
        "rawValueType": {"type": secret.value_type},
        "computedValueType": {"type": secret.value_type},
    })
}

/// The value with `${NAME}` references to the same config expanded, one level deep; other
/// references (unknown names, `${project.config.NAME}`) stay as written. `None` if hidden.
fn computed(secret: &Secret, view: &Secrets, hide_restricted: bool) -> Option<String> {
    if hide_restricted && secret.visibility == "restricted" {
        return None;
    }
    let mut out = String::new();
    let mut rest = secret.raw.as_str();
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        match view.get(&rest[start + 2..start + len]) {
            Some(other) => out.push_str(&other.raw),
            None => out.push_str(&rest[start..=start + len]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// `NAME="value"` lines (quotes, backslashes and newlines escaped), or `NAME=value`.
fn render_env(values: &BTreeMap<&str, String>, quoted: bool) -> String {
    let line = |(name, value): (&&str, &String)| {
        if quoted {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{value}\"\n")
        } else {
            format!("{name}={value}\n")
        }
    };
    values.iter().map(line).collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token from `Authorization: Bearer`, `Authorization: Basic` (token as the user name,
/// empty password) or the legacy `api-key` header.
fn token(headers: &HeaderMap) -> Option<String> {
    let Some(authorization) = header(headers, "authorization") else {
        return header(headers, "api-key").map(str::to_owned);
    };
    let (scheme, credentials) = authorization.split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(credentials.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        Some(
            decoded
                .split_once(':')
                .map_or(decoded.as_str(), |(user, _)| user)
                .to_owned(),
        )
    } else {
        None
    }
}

fn error_body(message: &str) -> String {
    json!({"messages": [message], "success": false}).to_string()
}

fn ok_json(body: Value) -> Response {
    reply(200, "application/json", body.to_string())
}

fn reply(status: u16, content_type: &str, body: String) -> Response {
    let response = Response::builder()
        .status(status)
        .header("content-type", content_type);
    response.body(Body::from(body)).expect("valid response")
}

fn fault_response(fault: &Fault) -> Response {
    let mut response = reply(fault.status, fault.content_type, fault.body.clone());
    for (name, value) in &fault.headers {
        let name: HeaderName = name.parse().expect("fault header name");
        response
            .headers_mut()
            .append(name, value.parse().expect("fault header value"));
    }
    response
}
