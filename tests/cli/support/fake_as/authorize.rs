//! `GET /authorize`: the strict checks of an authorization request, the consent answer.

use super::*;

impl Inner {
    /// `Ok(Location)` for a valid authorization request, `Err(reason)` for a 400 page.
    pub(super) fn authorize(&mut self, pairs: &[(String, String)]) -> Result<String, String> {
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
        let challenge = param("code_challenge").unwrap_or_default();
        if !self.cfg.no_pkce {
            if param("code_challenge_method") != Some("S256") {
                return Err("code_challenge_method must be S256".into());
            }
            if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
                return Err("code_challenge must be 43 base64url characters".into());
            }
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
}

pub(super) async fn authorize(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
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
