//! The token endpoint: the authorization URL, the code exchange and the refresh, through the
//! `oauth2` crate with our own HTTP policy ([`crate::http`]: no redirects, timeouts, retries,
//! a 64 KiB body cap), and the [`TokenSet`] they produce with its expiry derived as docs/usage.md says:
//! `expires_in`, else the access token's JWT `exp`, else unknown.
//!
//! The device authorization grant (RFC 8628) is [`crate::device`]'s, on this endpoint.
//!
//! Provider quirks live at the edges of that path, in `send`: a JSON request body instead of
//! a form (`token_request_format`), a form-encoded answer read as JSON (GitHub without
//! `Accept: application/json`), tokens nested in the answer (`token_response_path`, Slack's
//! `authed_user`). Errors answered with HTTP 200 (GitHub, Slack) are read in `map_error`, by the
//! one OAuth error reader.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::http::{Http, TransportError};
use crate::oauth::Adapter;
use crate::provider::{ClientAuth, Provider};
use crate::text::terminal_safe;

/// `expires_in` values are clamped to this (a year): anything longer is a server bug.
const MAX_EXPIRES_IN: u64 = 366 * 24 * 3600;

/// Seconds since the Unix epoch, now, on this machine's clock (the one clock read here).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + crate::refresh::clock_offset()
}

/// What a successful exchange or refresh produced.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the response had no refresh token (the stored one is kept).
    pub refresh_token: Option<SecretString>,
    /// Unix seconds; `None` when neither `expires_in` nor a JWT `exp` said.
    pub expires_at: Option<i64>,
    /// Where `expires_at` came from.
    pub expiry_source: ExpirySource,
    /// When the refresh token itself dies (Unix seconds), from `refresh_token_expires_in`.
    pub refresh_expires_at: Option<i64>,
    /// A `warning` the provider sent with the tokens (Jobber), terminal-safe.
    pub warning: Option<String>,
}

impl TokenSet {
    /// The expiry moved onto the store's clock (`skew`: how far it is ahead of this machine's),
    /// when it was computed here from `expires_in`; a JWT `exp` is already absolute.
    pub(crate) fn on_store_clock(self, skew: i64) -> TokenSet {
        let expires_at = match self.expiry_source {
            ExpirySource::ExpiresIn => self.expires_at.map(|e| e + skew),
            _ => self.expires_at,
        };
        let refresh_expires_at = self.refresh_expires_at.map(|e| e + skew);
        TokenSet {
            expires_at,
            refresh_expires_at,
            ..self
        }
    }
}

impl TokenSet {
    /// The refresh token's expiry from the provider file's `refresh_token_lifetime`, when the
    /// answer did not carry one.
    pub(crate) fn with_lifetime_of(mut self, provider: &Provider, refreshing: bool) -> TokenSet {
        if self.refresh_expires_at.is_none() {
            self.refresh_expires_at = provider.refresh_token_expiry(refreshing, now());
        }
        self
    }
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("expiry_source", &self.expiry_source)
            .finish()
    }
}

/// Where an expiry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpirySource {
    ExpiresIn,
    JwtExp,
    Unknown,
}

/// The token response, lenient where providers differ: `token_type` may be missing (Bearer
/// assumed), `expires_in` may be a number or a numeric string, unknown fields are ignored.
/// camelCase names are accepted too (HubSpot's newer reference shows `accessToken`, …).
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct ProviderTokenResponse {
    #[serde(alias = "accessToken")]
    access_token: AccessToken,
    #[serde(default = "bearer", alias = "tokenType")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lenient_seconds", alias = "expiresIn")]
    expires_in: Option<u64>,
    #[serde(default, alias = "refreshToken")]
    refresh_token: Option<RefreshToken>,
    /// GitHub App user tokens and the OAuth 2.1 drafts; Intuit's `x_` name.
    #[serde(
        default,
        deserialize_with = "lenient_seconds",
        alias = "x_refresh_token_expires_in"
    )]
    refresh_token_expires_in: Option<u64>,
    /// Jobber sends one (e.g. rotation off, a replayed refresh token).
    #[serde(default, deserialize_with = "lenient_text")]
    warning: Option<String>,
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    })
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

impl oauth2::TokenResponse for ProviderTokenResponse {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<std::time::Duration> {
        self.expires_in.map(std::time::Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Client credentials as read from Doppler or the environment.
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// The provider's endpoints plus the client credentials.
pub(crate) struct TokenEndpoint<'a> {
    pub(crate) provider: &'a Provider,
    pub(crate) credentials: &'a ClientCredentials,
    pub(crate) http: &'a Http,
}

impl<'a> TokenEndpoint<'a> {
    pub(crate) fn new(
        provider: &'a Provider,
        credentials: &'a ClientCredentials,
        http: &'a Http,
    ) -> Self {
        TokenEndpoint {
            provider,
            credentials,
            http,
        }
    }

    pub(crate) fn client(&self, redirect_uri: Option<&str>) -> Result<OAuthClient> {
        let mut client = oauth2::Client::new(ClientId::new(self.credentials.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.provider.authorization_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.provider.token_url.clone()))
            .set_auth_type(match self.provider.client_auth {
                ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
                ClientAuth::ClientSecretPost | ClientAuth::None => AuthType::RequestBody,
            });
        if self.provider.client_auth != ClientAuth::None {
            if let Some(secret) = &self.credentials.client_secret {
                client =
                    client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
            }
        }
        if let Some(uri) = redirect_uri {
            client = client.set_redirect_uri(RedirectUrl::new(uri.to_string()).map_err(|_| {
                Error::Authorization {
                    provider: self.provider.name.clone(),
                    message: format!("bad redirect URI {uri}"),
                }
            })?);
        }
        Ok(client)
    }

    /// The authorization URL: `response_type=code`, client id, redirect URI, scopes, `state`,
    /// the S256 challenge, and the provider's extra parameters.
    pub(crate) fn authorization_url(
        &self,
        redirect_uri: &str,
        scopes: &[String],
        challenge: &str,
        state: &SecretString,
    ) -> Result<url::Url> {
        let client = self.client(Some(redirect_uri))?;
        let mut request =
            client.authorize_url(|| CsrfToken::new(state.expose_secret().to_string()));
        if self.provider.pkce {
            request = request.set_pkce_challenge(challenge_of(challenge));
        }
        // Scopes are joined here rather than by oauth2 (which always uses `scope` and spaces):
        // Slack wants `user_scope=a,b`, Linear `scope=a,b`.
        if !scopes.is_empty() {
            request = request.add_extra_param(
                self.provider.scope_parameter.clone(),
                scopes.join(&self.provider.scope_separator),
            );
        }
        for (k, v) in &self.provider.authorization_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        Ok(request.url().0)
    }

    /// Exchanges an authorization code (RFC 6749 §4.1.3 with the PKCE verifier).
    pub(crate) async fn exchange_code(
        &self,
        code: SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<TokenSet> {
        let client = self.client(Some(redirect_uri))?;
        let send = Adapter::once(self.http, self.provider, crate::http::GRANT_TIMEOUT);
        let mut request =
            client.exchange_code(AuthorizationCode::new(code.expose_secret().to_string()));
        if self.provider.pkce {
            request = request
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_string()));
        }
        let result = request.request_async(&send).await;
        self.finish(result, false)
    }

    /// Exchanges a refresh token (RFC 6749 §6), the answer awaited at most `limit`.
    pub(crate) async fn refresh(
        &self,
        refresh_token: &SecretString,
        limit: std::time::Duration,
    ) -> Result<TokenSet> {
        let client = self.client(None)?;
        let send = Adapter::once(self.http, self.provider, limit);
        let rt = RefreshToken::new(refresh_token.expose_secret().to_string());
        let mut request = client.exchange_refresh_token(&rt);
        if self.provider.refresh_sends_redirect_uri {
            // GitLab documents redirect_uri on refresh too. The port used at authorization is
            // not stored: this is the first of the range, the one a fallback warning names.
            request = request.add_extra_param(
                "redirect_uri",
                self.provider.redirect_uri(self.provider.ports.first),
            );
        }
        let result = request.request_async(&send).await;
        self.finish(result, true)
    }

    fn finish(
        &self,
        result: std::result::Result<
            ProviderTokenResponse,
            RequestTokenError<TransportError, BasicErrorResponse>,
        >,
        refreshing: bool,
    ) -> Result<TokenSet> {
        let response = result.map_err(|e| self.map_error(e, refreshing))?;
        token_set(response).map(|t| t.with_lifetime_of(self.provider, refreshing))
    }

    pub(crate) fn map_error(
        &self,
        e: RequestTokenError<TransportError, BasicErrorResponse>,
        refreshing: bool,
    ) -> Error {
        let refused = |error: String, description: Option<String>| {
            if refreshing && REFRESH_REFUSED.contains(&error.as_str()) {
                Error::RefreshRefused {
                    provider: self.provider.name.clone(),
                    error: match description {
                        Some(d) => format!("{error} ({d})"),
                        None => error,
                    },
                }
            } else {
                Error::TokenEndpoint {
                    provider: self.provider.name.clone(),
                    error,
                    description,
                }
            }
        };
        match e {
            RequestTokenError::ServerResponse(r) => {
                // The one OAuth error reader, which knows refusals said in words.
                match crate::oauth::error_of(
                    Some(r.error().as_ref().to_string()),
                    r.error_description().cloned(),
                    None,
                ) {
                    Some(e) => refused(e.error, e.description),
                    None => refused("error".into(), None),
                }
            }
            RequestTokenError::Request(source) if refreshing && source.sent => {
                Error::RefreshUncertain {
                    provider: self.provider.name.clone(),
                    detail: source.message,
                }
            }
            RequestTokenError::Request(source) => Error::ProviderUnreachable {
                url: self.provider.token_url.to_string(),
                source: Box::new(source),
            },
            RequestTokenError::Parse(path_error, body) => {
                // GitHub and others answer 200 with an `error` field.
                if let Some(e) = crate::oauth::parse_error(&body) {
                    return refused(e.error, e.description);
                }
                Error::ProviderResponse(format!(
                    "not a token response: field `{}` is missing or has the wrong type",
                    path_error.path()
                ))
            }
            RequestTokenError::Other(message) => {
                Error::ProviderResponse(terminal_safe(&message, 200))
            }
        }
    }
}

fn challenge_of(challenge: &str) -> PkceCodeChallenge {
    // oauth2 builds a challenge only from a verifier; deserialize the pair type from the
    // already-computed S256 value instead (its serde form is {code_challenge, code_challenge_method}).
    serde_json::from_value(serde_json::json!({
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }))
    .expect("PkceCodeChallenge deserializes from its documented fields")
}

/// Error codes that mean "this refresh token is no good": RFC 6749's `invalid_grant`, Slack's
/// `invalid_refresh_token`, GitHub's `bad_refresh_token`.
const REFRESH_REFUSED: &[&str] = &[
    "invalid_grant",
    "invalid_refresh_token",
    "bad_refresh_token",
];

pub(crate) fn token_set(response: ProviderTokenResponse) -> Result<TokenSet> {
    let access = response.access_token.secret();
    if access.is_empty() || !access.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::ProviderResponse(
            "the access token is empty or has characters outside RFC 6749's VSCHAR".into(),
        ));
    }
    let refresh_token = response
        .refresh_token
        .map(|rt| rt.secret().to_string())
        .filter(|rt| !rt.is_empty())
        .map(SecretString::from);
    let (expires_at, expiry_source) = match response.expires_in {
        Some(secs) => (
            Some(now() + secs.min(MAX_EXPIRES_IN) as i64),
            ExpirySource::ExpiresIn,
        ),
        None => match jwt_exp(access) {
            Some(exp) => (Some(exp), ExpirySource::JwtExp),
            None => (None, ExpirySource::Unknown),
        },
    };
    crate::text::conceal(access);
    if let Some(rt) = &refresh_token {
        crate::text::conceal(rt.expose_secret());
    }
    // A refresh token's lifetime is clamped like every duration a server sends (10 years).
    let refresh_expires_at = response
        .refresh_token_expires_in
        .map(|secs| now() + secs.min(crate::provider::MAX_REFRESH_LIFETIME) as i64);
    Ok(TokenSet {
        access_token: SecretString::from(access.to_string()),
        refresh_token,
        expires_at,
        expiry_source,
        refresh_expires_at,
        warning: response.warning.map(|w| terminal_safe(&w, 300)),
    })
}

/// The `exp` claim of a JWT, read without verifying the signature (only the expiry is used,
/// to know when to refresh; the token is never trusted for anything else).
pub(crate) fn jwt_exp(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<serde_json::Value>,
    }
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    match claims.exp? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
