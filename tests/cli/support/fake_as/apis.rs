//! The provider APIs a `[check]` calls: `/userinfo`, Jobber's `/graphql`, Slack's
//! `/api/auth.test`, Twitch's `/validate`.

use super::*;

impl Inner {
    pub(super) fn record_check(
        &mut self,
        path: &str,
        method: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) {
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
    pub(super) fn live_token(&self, headers: &HeaderMap, scheme: &str) -> Option<String> {
        let value = header_str(headers, header::AUTHORIZATION)?;
        let (given, token) = value.split_once(' ')?;
        (given.eq_ignore_ascii_case(scheme) && self.at_live(token.trim()))
            .then(|| token.trim().to_string())
    }
}

pub(super) async fn userinfo(State(shared): State<Shared>, headers: HeaderMap) -> Response {
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

/// Jobber's GraphQL endpoint, for `{ account { id name } }`.
pub(super) async fn graphql(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
pub(super) async fn slack_auth_test(
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
pub(super) async fn twitch_validate(State(shared): State<Shared>, headers: HeaderMap) -> Response {
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
