//! `oauth-pkce demo`: the whole cycle on this machine with nothing but the binary — no Doppler
//! account, no provider app. It starts two small servers on 127.0.0.1, in this process:
//!
//! * an authorization server: a consent page at `GET /authorize` (client id, a loopback
//!   redirect URI with a port, `state` and an S256 challenge required), `POST /approve`
//!   (redirects with `code`, `state` and `iss`), `POST /token` (`client_secret_post`;
//!   single-use codes bound to their challenge and redirect URI, the verifier checked; refresh
//!   tokens rotated, a spent one presented again revoking the grant) and `GET /api/me` (the
//!   provider's `[check]`);
//! * a Doppler-compatible store: `GET` and `POST /v3/configs/config/secrets` with the bearer
//!   token, the `secrets=` filter, `change_requests` and the `originalValue` compare-and-swap
//!   (all or nothing, 409 on a mismatch), in memory.
//!
//! [`Demo::ctx`] is then an ordinary [`Context`]: the provider definition (parsed and validated
//! like any file) points at the first server, `DOPPLER_API_HOST` (resolved by
//! [`DopplerSettings::resolve`] like any other) at the second, and locks and journals go to a
//! temporary directory, so `authorize`, `status`, `token` and `refresh` run their real code.
//! Besides `oauth_pkce::callback`, this is the only module that listens on a socket: only on
//! 127.0.0.1, only while a demo runs.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};
use url::form_urlencoded;

use oauth_pkce::bin::html_escape;
use oauth_pkce::bin::now;
use oauth_pkce::bin::{is_valid_verifier, random_token, s256_challenge};
use oauth_pkce::Http;
use oauth_pkce::Provider;
use oauth_pkce::StateDir;
use oauth_pkce::{env, Context};
use oauth_pkce::{DopplerSettings, SettingsInputs};
use oauth_pkce::{Error, Result};

const CLIENT_ID: &str = "oauth-pkce-demo";
/// The store's project and config, as `status` and the summaries name them.
pub(crate) const PROJECT: &str = "demo-in-memory";
pub(crate) const CONFIG: &str = "local";
const ACCESS_TTL: i64 = 3600;

/// The running demo servers and a context that uses them. Dropping it stops the servers and
/// removes the temporary state directory.
pub(crate) struct Demo {
    pub(crate) ctx: Context,
    /// The authorization server's base URL (also its issuer).
    pub(crate) server_url: String,
    /// The store's base URL (`DOPPLER_API_HOST`).
    pub(crate) store_url: String,
    servers: Vec<tokio::task::JoinHandle<()>>,
    state_dir: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

impl Demo {
    /// Starts both servers on 127.0.0.1 (ports chosen by the OS) and builds the context.
    pub(crate) async fn start() -> Result<Demo> {
        let failed = |e: std::io::Error| {
            Error::Config(format!("cannot start the demo's servers on 127.0.0.1: {e}"))
        };
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (auth_listener, store_listener) =
            (bind().await.map_err(failed)?, bind().await.map_err(failed)?);
        let server_url = format!("http://{}", auth_listener.local_addr().map_err(failed)?);
        let store_url = format!("http://{}", store_listener.local_addr().map_err(failed)?);
        // The callback's port: one the OS says is free now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(failed)?
            .port();

        let client_secret = random_token().expose_secret().to_string();
        let doppler_token = format!("dp.st.demo.{}", random_token().expose_secret());
        let auth = Arc::new(AuthServer {
            issuer: server_url.clone(),
            client_secret: client_secret.clone(),
            state: Mutex::default(),
        });
        let auth_app = Router::new()
            .route("/authorize", get(consent))
            .route("/approve", post(approve))
            .route("/token", post(token))
            .route("/api/me", get(me))
            .with_state(auth);
        let store = Arc::new(Store {
            token: doppler_token.clone(),
            secrets: Mutex::new(BTreeMap::from([
                ("DEMO_CLIENT_ID".to_string(), CLIENT_ID.to_string()),
                ("DEMO_CLIENT_SECRET".to_string(), client_secret),
            ])),
        });
        let store_app = Router::new()
            .route("/v3/configs/config/secrets", get(read).post(write))
            .with_state(store);
        let serve = |listener, app| async move {
            let _ = axum::serve(listener, app).await;
        };
        let servers = vec![
            tokio::spawn(serve(auth_listener, auth_app)),
            tokio::spawn(serve(store_listener, store_app)),
        ];

        let provider = Provider::parse(
            &format!(
                r#"name = "demo"
display_name = "oauth-pkce demo (local)"
authorization_url = "{server_url}/authorize"
token_url = "{server_url}/token"
issuer = "{server_url}"
require_iss = true
scopes = ["profile"]
client_auth = "client_secret_post"
secret_prefix = "DEMO"
redirect_host = "127.0.0.1"
ports = "{port}"
refresh_token_rotation = "yes"
limitations = "Lives only as long as `oauth-pkce demo` runs."
[check]
url = "{server_url}/api/me"
"#
            ),
            "the demo's built-in definition",
        )?;
        let settings = DopplerSettings::resolve(&SettingsInputs {
            vars: HashMap::from([
                (env::DOPPLER_TOKEN.to_string(), doppler_token),
                (env::DOPPLER_API_HOST.to_string(), store_url.clone()),
                (env::DOPPLER_PROJECT.to_string(), PROJECT.to_string()),
                (env::DOPPLER_CONFIG.to_string(), CONFIG.to_string()),
            ]),
            ..SettingsInputs::default()
        })?;
        // No proxy and no extra CA from the environment: every request stays on loopback.
        let http = Http::with_network(&oauth_pkce::NetworkSettings::default())?;
        let state_path = std::env::temp_dir().join(format!(
            "oauth-pkce-demo-{}-{}",
            std::process::id(),
            &random_token().expose_secret()[..8]
        ));
        oauth_pkce::bin::private_dir(&state_path)?;
        let state_dir = StateDir::at(&state_path);
        Ok(Demo {
            ctx: Context::new(http, settings, provider, state_dir),
            server_url,
            store_url,
            servers,
            state_dir: state_path,
        })
    }

    /// Plays the browser (for `demo --no-browser`): opens the authorization URL, approves on
    /// the consent page, and follows the redirect to the callback, as top-level navigations.
    pub(crate) async fn play_browser(&self, authorization_url: &url::Url) -> Result<()> {
        let fail = |what: &str| Error::Authorization(format!("the demo's browser: {what}"));
        let client = self.ctx.http.client();
        let navigate = |r: reqwest::RequestBuilder| {
            r.header("Sec-Fetch-Dest", "document")
                .header("Sec-Fetch-Mode", "navigate")
        };
        let page = navigate(client.get(authorization_url.as_str()))
            .send()
            .await
            .map_err(|_| fail("the consent page did not load"))?
            .text()
            .await
            .map_err(|_| fail("the consent page did not load"))?;
        let request = page
            .split("name=\"request\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| fail("no consent form on the page"))?;
        let answer = navigate(client.post(format!("{}/approve", self.server_url)))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("request={request}&decision=approve"))
            .send()
            .await
            .map_err(|_| fail("approving failed"))?;
        let location = answer
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| fail("approving did not redirect"))?
            .to_string();
        let callback = navigate(client.get(location))
            .send()
            .await
            .map_err(|_| fail("the callback could not be reached"))?;
        if !callback.status().is_success() {
            return Err(fail(&format!(
                "the callback answered {}",
                callback.status()
            )));
        }
        Ok(())
    }
}

// ---- the authorization server ---------------------------------------------------------------

struct AuthServer {
    issuer: String,
    client_secret: String,
    state: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    /// Consent pages shown and not yet answered, by request id.
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
    /// refresh token → (grant, spent)
    refresh_tokens: HashMap<String, (usize, bool)>,
    /// access token → (grant, expires at)
    access_tokens: HashMap<String, (usize, i64)>,
    /// Whether each grant was revoked.
    revoked: Vec<bool>,
}

struct Pending {
    redirect_uri: url::Url,
    state: String,
    challenge: String,
}

struct Code {
    challenge: String,
    redirect_uri: String,
    used: bool,
    grant: Option<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Query or form pairs; `None` when a name repeats.
fn pairs(input: &[u8]) -> Option<HashMap<String, String>> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(input) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(map)
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\"><h1>{t}</h1>{body}</body></html>",
        t = html_escape(title)
    );
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (status, headers, page).into_response()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (status, headers, body.to_string()).into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    let status = if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// `GET /authorize`: checks the request and shows the consent page.
async fn consent(State(auth): State<Arc<AuthServer>>, RawQuery(query): RawQuery) -> Response {
    let checked = (|| {
        let p =
            pairs(query.as_deref().unwrap_or("").as_bytes()).ok_or("a parameter appears twice")?;
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if get("response_type") != Some("code") {
            return Err("response_type must be code");
        }
        if get("client_id") != Some(CLIENT_ID) {
            return Err("unknown client_id");
        }
        let redirect_uri = get("redirect_uri")
            .and_then(|r| url::Url::parse(r).ok())
            .filter(|u| {
                u.scheme() == "http" && oauth_pkce::bin::is_loopback_url(u) && u.port().is_some()
            })
            .ok_or("redirect_uri must be http on a loopback host with a port")?;
        let state = get("state").ok_or("state is required")?;
        let challenge = get("code_challenge").unwrap_or("");
        if get("code_challenge_method") != Some("S256")
            || challenge.len() != 43
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("an S256 code_challenge is required");
        }
        Ok(Pending {
            redirect_uri,
            state: state.to_string(),
            challenge: challenge.to_string(),
        })
    })();
    let pending = match checked {
        Ok(p) => p,
        Err(why) => {
            return html(
                StatusCode::BAD_REQUEST,
                "Invalid authorization request",
                &format!("<p>{}</p>", html_escape(why)),
            )
        }
    };
    let id = random_token().expose_secret().to_string();
    lock(&auth.state).pending.insert(id.clone(), pending);
    let button = |value: &str, label: &str| {
        format!("<button name=\"decision\" value=\"{value}\" style=\"font-size:1.1em;margin-right:1em\">{label}</button>")
    };
    html(
        StatusCode::OK,
        "oauth-pkce demo: sign in",
        &format!(
            "<p>This is the demo's own authorization server, on this machine. The app \
             <b>{CLIENT_ID}</b> asks for the scope <b>profile</b> of the account <b>demo-user</b>.</p>\
             <form method=\"post\" action=\"/approve\"><input type=\"hidden\" name=\"request\" value=\"{id}\">{}{}</form>",
            button("approve", "Approve"),
            button("deny", "Deny")
        ),
    )
}

/// `POST /approve`: the consent answer; redirects to the client with a code or an error.
async fn approve(State(auth): State<Arc<AuthServer>>, body: Bytes) -> Response {
    let form = pairs(&body).unwrap_or_default();
    let mut state = lock(&auth.state);
    let Some(pending) = form.get("request").and_then(|id| state.pending.remove(id)) else {
        return html(
            StatusCode::BAD_REQUEST,
            "Unknown request",
            "<p>This sign-in was already answered, or never started.</p>",
        );
    };
    let mut location = pending.redirect_uri.clone();
    if form.get("decision").map(String::as_str) == Some("approve") {
        let code = random_token().expose_secret().to_string();
        state.codes.insert(
            code.clone(),
            Code {
                challenge: pending.challenge,
                redirect_uri: pending.redirect_uri.to_string(),
                used: false,
                grant: None,
            },
        );
        location.query_pairs_mut().append_pair("code", &code);
    } else {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "the user denied the demo's request");
    }
    location
        .query_pairs_mut()
        .append_pair("state", &pending.state)
        .append_pair("iss", &auth.issuer);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// `POST /token`: the code exchange (PKCE checked) and the refresh (rotation).
async fn token(State(auth): State<Arc<AuthServer>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(p) = pairs(&body) else {
        return oauth_error("invalid_request", "a parameter appears twice");
    };
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let authenticated = headers.get(header::AUTHORIZATION).is_none()
        && get("client_id") == Some(CLIENT_ID)
        && get("client_secret") == Some(auth.client_secret.as_str());
    if !authenticated {
        return oauth_error(
            "invalid_client",
            "client_secret_post with the demo's credentials is required",
        );
    }
    let mut state = lock(&auth.state);
    let grant = match get("grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri), Some(verifier)) =
                (get("code"), get("redirect_uri"), get("code_verifier"))
            else {
                return oauth_error(
                    "invalid_request",
                    "code, redirect_uri and code_verifier are required",
                );
            };
            let Some(entry) = state.codes.get_mut(code) else {
                return oauth_error("invalid_grant", "unknown code");
            };
            if entry.used {
                // A code presented twice revokes what it gave (RFC 6749 §4.1.2).
                if let Some(g) = entry.grant {
                    state.revoked[g] = true;
                }
                return oauth_error("invalid_grant", "the code was already used");
            }
            entry.used = true;
            if entry.redirect_uri != redirect_uri
                || !is_valid_verifier(verifier)
                || s256_challenge(verifier) != entry.challenge
            {
                return oauth_error(
                    "invalid_grant",
                    "PKCE verification or redirect_uri mismatch",
                );
            }
            let g = state.revoked.len();
            state.revoked.push(false);
            if let Some(entry) = state.codes.get_mut(code) {
                entry.grant = Some(g);
            }
            g
        }
        Some("refresh_token") => {
            let Some(&(g, spent)) =
                get("refresh_token").and_then(|rt| state.refresh_tokens.get(rt))
            else {
                return oauth_error("invalid_grant", "unknown refresh token");
            };
            if spent || state.revoked[g] {
                // Reuse of a rotated-away token revokes the whole grant (RFC 9700 §4.14.2).
                state.revoked[g] = true;
                return oauth_error(
                    "invalid_grant",
                    "the refresh token was already used; the grant is revoked",
                );
            }
            if let Some(entry) =
                get("refresh_token").and_then(|rt| state.refresh_tokens.get_mut(rt))
            {
                entry.1 = true;
            }
            g
        }
        _ => {
            return oauth_error(
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            )
        }
    };
    let access = format!("demo-at-{}", random_token().expose_secret());
    let refresh = format!("demo-rt-{}", random_token().expose_secret());
    state
        .access_tokens
        .insert(access.clone(), (grant, now() + ACCESS_TTL));
    state.refresh_tokens.insert(refresh.clone(), (grant, false));
    json_response(
        StatusCode::OK,
        json!({
            "access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL,
            "refresh_token": refresh, "scope": "profile",
        }),
    )
}

/// `GET /api/me`: 200 for a live access token (the provider's `[check]`).
async fn me(State(auth): State<Arc<AuthServer>>, headers: HeaderMap) -> Response {
    let state = lock(&auth.state);
    let live = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.access_tokens.get(t))
        .is_some_and(|&(g, exp)| !state.revoked[g] && now() < exp);
    if live {
        json_response(
            StatusCode::OK,
            json!({ "sub": "demo-user", "name": "Demo User" }),
        )
    } else {
        json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_token" }),
        )
    }
}

// ---- the Doppler-compatible store -----------------------------------------------------------

struct Store {
    token: String,
    secrets: Mutex<BTreeMap<String, String>>,
}

fn doppler_error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "messages": [message], "success": false }))
}

/// The bearer token and, when given, the project and config must be the demo's.
fn admit(store: &Store, headers: &HeaderMap, query: &HashMap<String, String>) -> Option<Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(store.token.as_str()) {
        return Some(doppler_error(
            StatusCode::UNAUTHORIZED,
            "Invalid auth token",
        ));
    }
    let other = |k: &str, want: &str| query.get(k).is_some_and(|v| !v.is_empty() && v != want);
    (other("project", PROJECT) || other("config", CONFIG))
        .then(|| doppler_error(StatusCode::NOT_FOUND, "Could not find requested config"))
}

fn secrets_body<'a>(secrets: impl Iterator<Item = (&'a String, &'a String)>) -> Value {
    let map: serde_json::Map<String, Value> = secrets
        .map(|(k, v)| (k.clone(), json!({ "raw": v, "computed": v, "note": "" })))
        .collect();
    json!({ "secrets": map, "success": true })
}

async fn read(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = pairs(query.as_deref().unwrap_or("").as_bytes()).unwrap_or_default();
    if let Some(refused) = admit(&store, &headers, &query) {
        return refused;
    }
    let wanted: Option<Vec<&str>> = query.get("secrets").map(|s| s.split(',').collect());
    let secrets = lock(&store.secrets);
    let body = secrets_body(
        secrets
            .iter()
            .filter(|(k, _)| wanted.as_ref().is_none_or(|w| w.contains(&k.as_str()))),
    );
    json_response(StatusCode::OK, body)
}

/// `change_requests` with `originalValue` preconditions, checked all before any is applied.
async fn write(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = pairs(query.as_deref().unwrap_or("").as_bytes()).unwrap_or_default();
    if let Some(refused) = admit(&store, &headers, &query) {
        return refused;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return doppler_error(StatusCode::BAD_REQUEST, "Invalid JSON body");
    };
    let Some(changes) = body["change_requests"].as_array() else {
        return doppler_error(StatusCode::BAD_REQUEST, "change_requests is required");
    };
    let mut secrets = lock(&store.secrets);
    let mut updates = Vec::new();
    for change in changes {
        let (Some(name), Some(value)) = (change["name"].as_str(), change["value"].as_str()) else {
            return doppler_error(
                StatusCode::BAD_REQUEST,
                "each change needs a name and a value",
            );
        };
        if let Some(original) = change.get("originalValue").and_then(Value::as_str) {
            if secrets.get(name).map(String::as_str) != Some(original) {
                let message = format!("The value of secret '{name}' does not match originalValue");
                return doppler_error(StatusCode::CONFLICT, &message);
            }
        }
        updates.push((name.to_string(), value.to_string()));
    }
    for (name, value) in &updates {
        secrets.insert(name.clone(), value.clone());
    }
    let changed: Vec<&String> = updates.iter().map(|(n, _)| n).collect();
    let body = secrets_body(secrets.iter().filter(|(k, _)| changed.contains(k)));
    json_response(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's servers refuse what a strict server refuses.
    #[tokio::test]
    async fn the_demo_servers_are_strict() {
        let demo = Demo::start().await.unwrap();
        let client = demo.ctx.http.client();
        let base = &demo.server_url;
        let redirect = format!(
            "http://127.0.0.1:{}/callback",
            demo.ctx.provider.ports.first
        );
        let verifier = random_token();
        let challenge = s256_challenge(verifier.expose_secret());
        // A code for `challenge`, through the consent page.
        let code = || async {
            let url = format!("{base}/authorize?response_type=code&client_id={CLIENT_ID}&state=s&code_challenge_method=S256&code_challenge={challenge}&redirect_uri={redirect}");
            let page = client.get(&url).send().await.unwrap().text().await.unwrap();
            let id = page
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            let answer = client
                .post(format!("{base}/approve"))
                .body(format!("request={id}&decision=approve"))
                .send()
                .await
                .unwrap();
            let location = answer.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_string();
            let location = url::Url::parse(&location).unwrap();
            assert!(location
                .query_pairs()
                .any(|(k, v)| k == "iss" && v == *base));
            location
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned()
        };
        let secret = demo
            .ctx
            .store
            .doppler()
            .read(&["DEMO_CLIENT_SECRET".into()])
            .await
            .unwrap()["DEMO_CLIENT_SECRET"]
            .expose_secret()
            .to_string();
        let post = |body: String| {
            client
                .post(format!("{base}/token"))
                .body(format!(
                    "client_id={CLIENT_ID}&client_secret={secret}&{body}"
                ))
                .send()
        };
        let exchange = |code: String, verifier: String| {
            post(format!("grant_type=authorization_code&code={code}&redirect_uri={redirect}&code_verifier={verifier}"))
        };
        let json = |r: reqwest::Response| async move {
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };

        // A wrong verifier fails, and spends the code.
        let c = code().await;
        let (status, body) = json(
            exchange(c.clone(), random_token().expose_secret().into())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let (status, _) = json(exchange(c, verifier.expose_secret().into()).await.unwrap()).await;
        assert_eq!(status, 400);

        // The right one works once; presenting the code again revokes the grant.
        let c = code().await;
        let (status, tokens) = json(
            exchange(c.clone(), verifier.expose_secret().into())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let me = |at: String| client.get(format!("{base}/api/me")).bearer_auth(at).send();
        let at = tokens["access_token"].as_str().unwrap().to_string();
        assert_eq!(me(at.clone()).await.unwrap().status(), 200);
        let (status, _) = json(exchange(c, verifier.expose_secret().into()).await.unwrap()).await;
        assert_eq!(status, 400);
        assert_eq!(me(at).await.unwrap().status(), 401);

        // Refresh tokens rotate; the spent one presented again revokes the grant.
        let (_, tokens) = json(
            exchange(code().await, verifier.expose_secret().into())
                .await
                .unwrap(),
        )
        .await;
        let rt1 = tokens["refresh_token"].as_str().unwrap().to_string();
        let (status, rotated) = json(
            post(format!("grant_type=refresh_token&refresh_token={rt1}"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let rt2 = rotated["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt1, rt2);
        let (status, _) = json(
            post(format!("grant_type=refresh_token&refresh_token={rt1}"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = json(
            post(format!("grant_type=refresh_token&refresh_token={rt2}"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "the grant was revoked on reuse");

        // The store: a compare-and-swap that does not match changes nothing.
        let changes = |original: &str| {
            vec![
                oauth_pkce::bin::Change {
                    name: "A".into(),
                    value: "1".to_string().into(),
                    original: None,
                    exists: false,
                },
                oauth_pkce::bin::Change {
                    name: "DEMO_CLIENT_ID".into(),
                    value: "x".to_string().into(),
                    original: Some(original.to_string().into()),
                    exists: true,
                },
            ]
        };
        let e = demo
            .ctx
            .store
            .doppler()
            .write(&changes("not-it"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("409"), "{e}");
        assert!(demo
            .ctx
            .store
            .doppler()
            .read(&["A".into()])
            .await
            .unwrap()
            .is_empty());
        demo.ctx
            .store
            .doppler()
            .write(&changes(CLIENT_ID))
            .await
            .unwrap();
    }
}
