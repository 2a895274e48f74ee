//! The OAuth edge's shared pieces: client authentication (RFC 6749 §2.3.1), written once for
//! every request oauth-pkce builds itself (the token endpoint's quirky bodies, RFC 7009
//! revocation; the oauth2 crate does the same for the requests it builds, `AuthType`), the
//! one reader of OAuth error answers (RFC 6749 §5.2 and the `message` shapes providers use),
//! and the provider-quirks adapter every token-endpoint request is sent through.

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::http::{self, Http, TransportError};
use crate::provider::{ClientAuth, Provider, TokenRequestFormat};
use crate::token::ClientCredentials;

/// An OAuth error answer, terminal-safe: `error` (at most 64 characters) and
/// `error_description` (at most 256).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) error: String,
    pub(crate) description: Option<String>,
}

/// Codes a provider may send as `message` instead of `error` (Twitch's device flow).
const MESSAGE_CODES: &[&str] = &[
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_grant",
];

/// Reads an OAuth error from a body, whatever its HTTP status (GitHub and Slack answer errors
/// with 200): RFC 6749's `{"error", "error_description"}`, or `{"message": …}` (Twitch:
/// `Invalid refresh token`; Jobber: `The provided refresh token is not valid.`), where a known
/// code is the error and a refused refresh token reads as `invalid_grant`. The body itself is
/// never shown.
pub(crate) fn parse_error(body: &[u8]) -> Option<OAuthError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<String>,
        error_description: Option<String>,
        message: Option<String>,
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        // Plain text: only a refused refresh token said in words is read from it.
        let text = std::str::from_utf8(body).ok()?.trim();
        return (text.len() <= 1024 && refused_refresh(text)).then(|| refused(text));
    };
    error_of(answer.error, answer.error_description, answer.message)
}

/// An OAuth error from its fields, however a server filled them: RFC 6749's `error` (a code,
/// or a sentence saying the refresh token was refused), else `message`.
pub(crate) fn error_of(
    error: Option<String>,
    description: Option<String>,
    message: Option<String>,
) -> Option<OAuthError> {
    let safe = |t: &str, max| crate::text::terminal_safe(t, max);
    if let Some(error) = error.filter(|e| !e.is_empty()) {
        if error.contains(' ') && refused_refresh(&error) {
            return Some(refused(&error));
        }
        return Some(OAuthError {
            error: safe(&error, 64),
            description: description.map(|d| safe(&d, 256)),
        });
    }
    let message = message.filter(|m| !m.is_empty())?;
    if MESSAGE_CODES.contains(&message.as_str()) {
        return Some(OAuthError {
            error: message,
            description: None,
        });
    }
    if refused_refresh(&message) {
        return Some(refused(&message));
    }
    Some(OAuthError {
        error: "error".into(),
        description: Some(safe(&message, 256)),
    })
}

/// A refused refresh token said in words (Jobber: "The provided refresh token is not valid.",
/// Twitch: "Invalid refresh token").
fn refused_refresh(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("refresh token") && (lower.contains("invalid") || lower.contains("not valid"))
}

fn refused(text: &str) -> OAuthError {
    OAuthError {
        error: "invalid_grant".into(),
        description: Some(crate::text::terminal_safe(text, 256)),
    }
}

/// Largest token-endpoint response accepted.
const BODY_LIMIT: usize = 64 * 1024;

/// Where the client's credentials go in one form request.
pub(crate) struct ClientAuthentication {
    /// `Authorization: Basic …`, for `client_secret_basic` with a secret.
    pub(crate) header: Option<SecretString>,
    /// Form fields: `client_id`, and `client_secret` for `client_secret_post`.
    pub(crate) form: Vec<(&'static str, SecretString)>,
}

/// How `auth` sends `credentials`. A public client (`none`), or a secret-less one, sends only
/// its `client_id` in the body; `client_secret_basic` form-urlencodes each part, then base64.
pub(crate) fn client_authentication(
    auth: ClientAuth,
    credentials: &ClientCredentials,
) -> ClientAuthentication {
    let id = || {
        (
            "client_id",
            SecretString::from(credentials.client_id.clone()),
        )
    };
    match (auth, &credentials.client_secret) {
        (ClientAuth::ClientSecretBasic, Some(secret)) => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                enc(&credentials.client_id),
                enc(secret.expose_secret())
            );
            ClientAuthentication {
                header: Some(SecretString::from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))),
                form: Vec::new(),
            }
        }
        (ClientAuth::ClientSecretPost, Some(secret)) => ClientAuthentication {
            header: None,
            form: vec![id(), ("client_secret", secret.clone())],
        },
        _ => ClientAuthentication {
            header: None,
            form: vec![id()],
        },
    }
}

// ---- provider quirks at the HTTP edge --------------------------------------------------
// Every token-endpoint request (the oauth2 crate's and ours) goes through `send`: a JSON
// request body for providers that want one, form-encoded or nested answers made standard.

/// Lets the oauth2 crate send through [`Http`] with the provider's quirks (a named type, so
/// the futures are `Send`).
pub(crate) struct Adapter {
    http: Http,
    provider: Provider,
    /// A grant sent once: the time it may take in all (`None`: a repeatable request).
    once: Option<std::time::Duration>,
}

impl Adapter {
    /// For requests that may be repeated (device authorization and polls).
    pub(crate) fn new(http: &Http, provider: &Provider) -> Adapter {
        Adapter {
            http: http.clone(),
            provider: provider.clone(),
            once: None,
        }
    }

    /// For a grant that is spent when it arrives (a code exchange, a refresh): resent only
    /// when it provably never reached the server, over at most `limit` in all (at most
    /// [`http::GRANT_TIMEOUT`]), and a 5xx answer is an error that says the request was sent
    /// (its outcome is unknown).
    pub(crate) fn once(http: &Http, provider: &Provider, limit: std::time::Duration) -> Adapter {
        Adapter {
            once: Some(limit.min(http::GRANT_TIMEOUT)),
            ..Adapter::new(http, provider)
        }
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Adapter {
    type Error = TransportError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = std::result::Result<oauth2::HttpResponse, TransportError>,
                > + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(&self.http, &self.provider, request, self.once))
    }
}

/// Sends one oauth2 request through our client: retries (for a grant sent `once`, only when
/// it never arrived), timeouts, no redirects, capped body; and adapts request and answer to
/// the provider's quirks.
pub(crate) async fn send(
    http: &Http,
    provider: &Provider,
    request: oauth2::HttpRequest,
    once: Option<std::time::Duration>,
) -> std::result::Result<oauth2::HttpResponse, TransportError> {
    let (mut parts, mut body) = request.into_parts();
    if provider.token_request_format == TokenRequestFormat::Json {
        body = form_to_json(&body);
        parts.headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in &provider.token_headers {
        // Checked when the file was read: a token name and printable ASCII.
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::try_from(name.as_str()),
            reqwest::header::HeaderValue::try_from(value.as_str()),
        ) {
            parts.headers.insert(name, value);
        }
    }
    let client = http.client().map_err(|e| TransportError {
        message: e.to_string(),
        sent: false,
    })?;
    let deadline = once.map(|limit| std::time::Instant::now() + limit);
    let build = || {
        let request = client
            .request(parts.method.clone(), parts.uri.to_string())
            .headers(parts.headers.clone())
            .body(body.clone());
        match deadline {
            // Each attempt ends by the deadline: a resend shortens, never extends, the wait.
            Some(deadline) => request.timeout(
                deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .max(std::time::Duration::from_millis(1)),
            ),
            None => request,
        }
    };
    let response = match deadline {
        Some(deadline) => http.send_write_by(build, deadline).await?,
        None => http.send(build).await?,
    };
    let status = response.status();
    let mut headers = response.headers().clone();
    let mut bytes = http::read_capped(response, BODY_LIMIT)
        .await
        .map_err(|e| TransportError::after_sending(e.to_string()))?;
    if once.is_some() && status.is_server_error() {
        let said = parse_error(&bytes)
            .map(|e| match e.description {
                Some(d) => format!(": {} ({d})", e.error),
                None => format!(": {}", e.error),
            })
            .unwrap_or_default();
        return Err(TransportError::after_sending(format!(
            "HTTP {}{said}",
            status.as_u16()
        )));
    }
    adapt_response(provider, &mut headers, &mut bytes);
    let mut out = oauth2::HttpResponse::new(bytes);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// A form body as a JSON object of strings (`a=1&b=2` → `{"a":"1","b":"2"}`).
pub(crate) fn form_to_json(form: &[u8]) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(form)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::Value::Object(object).to_string().into_bytes()
}

/// Turns the provider's answer into what the oauth2 crate reads: a form-encoded body becomes
/// JSON (GitHub answers forms unless asked for JSON), and with `token_response_path` the
/// nested object holding `access_token` becomes the body (Slack's `authed_user`). Anything
/// else is left as it is.
pub(crate) fn adapt_response(
    provider: &Provider,
    headers: &mut reqwest::header::HeaderMap,
    body: &mut Vec<u8>,
) {
    use reqwest::header::{HeaderValue, CONTENT_TYPE};
    let form_encoded = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if form_encoded {
        *body = form_to_json(body);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(path) = &provider.token_response_path {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let nested = path
            .split('.')
            .try_fold(&value, |v, key| v.get(key))
            .filter(|v| v.get("access_token").is_some_and(|a| a.is_string()));
        if let Some(nested) = nested {
            *body = nested.to_string().into_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(secret: Option<&str>) -> ClientCredentials {
        ClientCredentials {
            client_id: "id:1".into(),
            client_secret: secret.map(SecretString::from),
        }
    }

    #[test]
    fn one_reader_for_every_shape_of_oauth_error() {
        let e = |error: &str, d: Option<&str>| {
            Some(OAuthError {
                error: error.into(),
                description: d.map(Into::into),
            })
        };
        let rfc = br#"{"error":"invalid_grant","error_description":"spent\u001b[2J"}"#;
        assert_eq!(parse_error(rfc), e("invalid_grant", Some("spent?[2J")));
        let twitch = br#"{"status":400,"message":"Invalid refresh token"}"#;
        assert_eq!(
            parse_error(twitch),
            e("invalid_grant", Some("Invalid refresh token"))
        );
        let jobber = br#"{"message":"The provided refresh token is not valid."}"#;
        assert_eq!(
            parse_error(jobber),
            e(
                "invalid_grant",
                Some("The provided refresh token is not valid.")
            )
        );
        let pending = br#"{"status":400,"message":"authorization_pending"}"#;
        assert_eq!(parse_error(pending), e("authorization_pending", None));
        let other = br#"{"message":"rate limited"}"#;
        assert_eq!(parse_error(other), e("error", Some("rate limited")));
        assert_eq!(parse_error(br#"{"access_token":"x"}"#), None);
        assert_eq!(parse_error(b"<html>"), None);
        // Jobber's refusal whatever its shape: a sentence as `error`, or plain text.
        let jobber_error = br#"{"error":"The provided refresh token is not valid."}"#;
        assert_eq!(
            parse_error(jobber_error),
            e(
                "invalid_grant",
                Some("The provided refresh token is not valid.")
            )
        );
        assert_eq!(
            parse_error(b"The provided refresh token is not valid.\n"),
            e(
                "invalid_grant",
                Some("The provided refresh token is not valid.")
            )
        );
        assert_eq!(parse_error(b"Bad request"), None);
    }

    fn names(a: &ClientAuthentication) -> Vec<&str> {
        a.form.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn basic_encodes_each_part_then_base64_and_sends_nothing_in_the_body() {
        let a = client_authentication(ClientAuth::ClientSecretBasic, &credentials(Some("s&t")));
        // base64("id%3A1:s%26t")
        let expected = base64::engine::general_purpose::STANDARD.encode("id%3A1:s%26t");
        assert_eq!(
            a.header.as_ref().map(|h| h.expose_secret().to_string()),
            Some(format!("Basic {expected}"))
        );
        assert!(a.form.is_empty());
    }

    #[test]
    fn post_sends_both_in_the_body_and_public_clients_only_their_id() {
        let post = client_authentication(ClientAuth::ClientSecretPost, &credentials(Some("s")));
        assert!(post.header.is_none());
        assert_eq!(names(&post), ["client_id", "client_secret"]);
        for auth in [ClientAuth::None, ClientAuth::ClientSecretBasic] {
            let a = client_authentication(auth, &credentials(None));
            assert!(a.header.is_none());
            assert_eq!(names(&a), ["client_id"]);
        }
        // A secret stored for a public client is never sent.
        let none = client_authentication(ClientAuth::None, &credentials(Some("s")));
        assert_eq!(names(&none), ["client_id"]);
    }
}
