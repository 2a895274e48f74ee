//! `POST /revoke` (RFC 7009).

use super::*;

/// RFC 7009 §2.1: revoke `token` (refresh token: its grant; access token: itself); 200 for
/// any token, even an unknown one (§2.2).
pub(super) async fn revoke(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let json_revocation = inner.cfg.revoke_json;
    let req = TokenRequest {
        form: if json_revocation {
            json_pairs(&body)
        } else {
            parse_pairs(&body)
        },
        authorization: header_str(&headers, header::AUTHORIZATION),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        accept: header_str(&headers, header::ACCEPT),
        query,
        required_header: inner.required_header(&headers),
    };
    inner.revoke_requests.push(req.clone());
    if let Some(fault) = inner.revoke_faults.pop_front() {
        return fault_response(&fault, req.authorization.as_deref(), &body);
    }
    // Notion's and QuickBooks' shape: `{"token": …}` as JSON, nothing else accepted.
    let expected = if json_revocation {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let form_body = req.content_type.as_deref().is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
    });
    let error = |e: OAuthError| {
        json_response(
            e.status,
            &json!({ "error": e.error, "error_description": e.description }),
            &[],
        )
    };
    if !form_body {
        return error(invalid_request(format!("the body must be {expected}")));
    }
    let params: HashMap<&str, &str> = req
        .form
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = inner.authenticate_client(&req, &params) {
        return error(e);
    }
    let Some(token) = params.get("token").copied() else {
        return error(invalid_request("token is missing"));
    };
    if let Some(entry) = inner.refresh_tokens.get(token) {
        let grant = entry.grant;
        if !inner.grants[grant].revoked {
            inner.grants[grant].revoked = true;
            inner.revoked_by_request += 1;
        }
    } else {
        inner.access_tokens.remove(token);
    }
    (StatusCode::OK, "").into_response()
}
