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

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use url::form_urlencoded;

use oauth_pkce::bin::random_token;
use oauth_pkce::StateDir;
use oauth_pkce::{env, Context, DopplerSettings, Error, Http, Provider, Result, SettingsInputs};

mod auth;
mod store;

use auth::{approve, consent, me, token, AuthServer};
use store::{read, write, Store};

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
        let auth = Arc::new(AuthServer::new(server_url.clone(), client_secret.clone()));
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
        let fail = |what: &str| Error::Authorization {
            provider: "demo".into(),
            message: format!("the demo's browser: {what}"),
        };
        let client = self.ctx.http.client()?;
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

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Query or form pairs; `None` when a name repeats.
pub(super) fn pairs(input: &[u8]) -> Option<HashMap<String, String>> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(input) {
        if map.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(map)
}

pub(super) fn json_response(status: StatusCode, body: Value) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (status, headers, body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_pkce::bin::s256_challenge;

    /// The demo's servers refuse what a strict server refuses.
    #[tokio::test]
    async fn the_demo_servers_are_strict() {
        let demo = Demo::start().await.unwrap();
        let client = demo.ctx.http.client().unwrap();
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
            .expect("the demo runs on Doppler")
            .read(&["DEMO_CLIENT_SECRET".into()])
            .await
            .unwrap()
            .get("DEMO_CLIENT_SECRET")
            .unwrap()
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
            .expect("the demo runs on Doppler")
            .write(&changes("not-it"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("409"), "{e}");
        assert!(demo
            .ctx
            .store
            .doppler()
            .expect("the demo runs on Doppler")
            .read(&["A".into()])
            .await
            .unwrap()
            .is_empty());
        demo.ctx
            .store
            .doppler()
            .expect("the demo runs on Doppler")
            .write(&changes(CLIENT_ID))
            .await
            .unwrap();
    }
}
