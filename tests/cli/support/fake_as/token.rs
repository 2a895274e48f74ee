//! `POST /token`: client authentication, the code exchange, the refresh with rotation and reuse
//! detection, and the answers in each configured style.

use super::*;

impl Inner {
    /// Decides one token request: the success JSON or an RFC 6749 §5.2 error.
    pub(super) fn token(&mut self, req: &TokenRequest) -> Result<Value, OAuthError> {
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

    /// The value of the configured required header in `headers`.
    pub(super) fn required_header(&self, headers: &HeaderMap) -> Option<String> {
        let (name, _) = self.cfg.required_header?;
        headers.get(name)?.to_str().ok().map(str::to_string)
    }

    pub(super) fn authenticate_client(
        &self,
        req: &TokenRequest,
        params: &HashMap<&str, &str>,
    ) -> Result<(), OAuthError> {
        let cfg = &self.cfg;
        if let Some((name, value)) = cfg.required_header {
            if req.required_header.as_deref() != Some(value) {
                return Err(invalid_request(format!(
                    "the {name} header must be {value}"
                )));
            }
        }
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

    pub(super) fn exchange_code(
        &mut self,
        params: &HashMap<&str, &str>,
    ) -> Result<Value, OAuthError> {
        let required = |name: &str| {
            params
                .get(name)
                .copied()
                .ok_or_else(|| invalid_request(format!("{name} is missing")))
        };
        let (code, redirect_uri) = (required("code")?, required("redirect_uri")?);
        let verifier = if self.cfg.no_pkce {
            params.get("code_verifier").copied().unwrap_or_default()
        } else {
            required("code_verifier")?
        };
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
        if !self.cfg.no_pkce {
            if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
                return Err(invalid_request(
                    "code_verifier must be 43-128 unreserved characters",
                ));
            }
            if s256(verifier) != challenge {
                return Err(invalid_grant("PKCE verification failed"));
            }
        }
        let grant = self.new_grant(scope, Some(bound_uri));
        if let Some(entry) = self.codes.get_mut(code) {
            entry.grant = Some(grant);
        }
        let at = self.mint_access_token(grant);
        let rt = offline.then(|| self.mint_refresh_token(grant));
        Ok(self.token_body(grant, at, rt))
    }

    pub(super) fn refresh(&mut self, params: &HashMap<&str, &str>) -> Result<Value, OAuthError> {
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
        // Spotify: the first refresh rotates, the next keeps the token, and so on.
        let returns = self.cfg.refresh_returns_refresh_token
            && !(self.cfg.rotate_sometimes && self.refreshes.is_multiple_of(2));
        let new_rt = match (returns, self.cfg.rotate_refresh_tokens) {
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

    pub(super) fn token_body(
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
            if let Some(ttl) = self.cfg.refresh_token_expires_in {
                body.insert("refresh_token_expires_in".into(), ttl.into());
            }
        }
        if let Some(warning) = &self.cfg.warning {
            body.insert("warning".into(), warning.clone().into());
        }
        if let Some(scope) = &self.grants[grant].scope {
            body.insert("scope".into(), scope.clone().into());
        }
        Value::Object(body)
    }

    /// A successful token answer in the configured [`ResponseStyle`].
    pub(super) fn success_response(
        &self,
        req: &TokenRequest,
        body: Value,
        refreshing: bool,
    ) -> Response {
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
    pub(super) fn error_response(
        &self,
        req: &TokenRequest,
        e: OAuthError,
        refreshing: bool,
    ) -> Response {
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
}

pub(super) async fn token(
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
            required_header: inner.required_header(&headers),
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
                fault_response(&fault, req.authorization.as_deref(), &body)
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
