//! The demo's authorization server: consent page, approval, token endpoint, `[check]` API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde_json::json;

use oauth_pkce::bin::html_escape;
use oauth_pkce::bin::now;
use oauth_pkce::bin::{is_valid_verifier, random_token, s256_challenge};

use super::{json_response, lock, pairs, ACCESS_TTL, CLIENT_ID};

pub(super) struct AuthServer {
    issuer: String,
    client_secret: String,
    state: Mutex<AuthState>,
}

impl AuthServer {
    /// A server that names itself `issuer` and knows one confidential client.
    pub(super) fn new(issuer: String, client_secret: String) -> AuthServer {
        AuthServer {
            issuer,
            client_secret,
            state: Mutex::default(),
        }
    }
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
pub(super) async fn consent(
    State(auth): State<Arc<AuthServer>>,
    RawQuery(query): RawQuery,
) -> Response {
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
pub(super) async fn approve(State(auth): State<Arc<AuthServer>>, body: Bytes) -> Response {
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
pub(super) async fn token(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
pub(super) async fn me(State(auth): State<Arc<AuthServer>>, headers: HeaderMap) -> Response {
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
