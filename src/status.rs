//! `status`: what Doppler holds for one provider or for every provider that has anything
//! stored, read in one request, reported with tokens masked; with `--check`, the provider's
//! `[check]` request sent with the stored access token.

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::error::Result;
use crate::http::Http;
use crate::provider::{Catalog, Provider};
use crate::refresh::due_at;
use crate::store::{Store, Stored, CLIENT_ID};
use crate::text::mask;
use crate::token::now;

/// One provider's state, safe to print (tokens masked).
#[derive(Debug, Serialize)]
pub struct ProviderStatus {
    pub provider: String,
    pub display_name: String,
    pub client_id_present: bool,
    /// The access token masked (first and last 4 characters at most), if present.
    pub access_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Seconds until expiry (negative once expired).
    pub expires_in: Option<i64>,
    pub refresh_token_present: bool,
    /// The access token expires within the refresh buffer.
    pub refresh_due: bool,
    /// A token can be had now: the access token is valid, or a refresh token can get one.
    pub usable: bool,
    /// Until when (Unix seconds, this machine's clock) this machine's cache holds a token for
    /// the provider; `None` when it holds none.
    pub cached_until: Option<i64>,
    /// When the refresh token itself dies (Unix seconds), when the provider or its file said.
    pub refresh_token_expires_at: Option<i64>,
    /// Seconds the grant has left (negative once dead); `None` when unknown.
    pub refresh_token_expires_in: Option<i64>,
    /// A refresh gives the refresh token a new lifetime (`true`: sliding); `false`: its
    /// lifetime runs from the sign-in whatever is done (absolute); `None`: not known.
    pub refresh_token_renewable: Option<bool>,
    /// The `[check]` request's outcome, with `--check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckOutcome>,
}

/// What `status --check` found for one provider.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub result: CheckResult,
    /// The HTTP status of the check request, when one was answered.
    pub http_status: Option<u16>,
    /// Why, in words (never the token nor the response body).
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// The provider accepted the token.
    Ok,
    /// The provider refused the token, or could not be asked.
    Failed,
    /// Nothing was sent: no `[check]`, no access token, or it has expired.
    Skipped,
}

impl CheckOutcome {
    fn skipped(detail: &str) -> CheckOutcome {
        CheckOutcome {
            result: CheckResult::Skipped,
            http_status: None,
            detail: detail.into(),
        }
    }
}

/// Sends the provider's `[check]` request with the stored access token, if there is one that
/// has not expired.
pub(crate) async fn check_token(http: &Http, provider: &Provider, stored: &Stored) -> CheckOutcome {
    let Some(check) = &provider.check else {
        return CheckOutcome::skipped("the provider definition has no [check]");
    };
    let Some(access) = stored.access_token() else {
        return CheckOutcome::skipped("no access token is stored");
    };
    if stored.expires_at().is_some_and(|e| e <= now()) {
        return CheckOutcome::skipped(
            "the access token has expired (`oauth-pkce token` refreshes it)",
        );
    }
    let method = reqwest::Method::from_bytes(check.method.to_ascii_uppercase().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let authorization = format!("{} {}", check.auth_scheme, access.expose_secret());
    let client = match http.client() {
        Ok(c) => c,
        Err(e) => {
            return CheckOutcome {
                result: CheckResult::Failed,
                http_status: None,
                detail: e.to_string(),
            }
        }
    };
    let response = http
        .send(|| {
            let mut request = client
                .request(method.clone(), check.url.clone())
                .header(reqwest::header::AUTHORIZATION, &authorization);
            for (name, value) in &check.headers {
                request = request.header(name, value);
            }
            if let Some(body) = &check.body {
                request = request.body(body.clone());
            }
            request
        })
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return CheckOutcome {
                result: CheckResult::Failed,
                http_status: None,
                detail: format!(
                    "{} could not be reached: {}",
                    check.url,
                    crate::http::describe(&e)
                ),
            }
        }
    };
    let status = response.status();
    let failed = |detail: String| CheckOutcome {
        result: CheckResult::Failed,
        http_status: Some(status.as_u16()),
        detail,
    };
    if !status.is_success() {
        return failed(format!("{} answered HTTP {}", check.url, status.as_u16()));
    }
    if let Some(field) = &check.success_field {
        let body = crate::http::read_capped(response, 256 * 1024).await;
        let ok = body
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| success_field_set(&v, field));
        if !ok {
            return failed(format!(
                "{} answered HTTP {} but `{field}` is missing, null or false",
                check.url,
                status.as_u16()
            ));
        }
    }
    CheckOutcome {
        result: CheckResult::Ok,
        http_status: Some(status.as_u16()),
        detail: format!("{} answered HTTP {}", check.url, status.as_u16()),
    }
}

impl ProviderStatus {
    fn of(provider: &Provider, stored: &Stored, buffer: i64) -> ProviderStatus {
        let expires_at = stored.expires_at();
        let access = stored.access_token();
        let refresh_present = stored.refresh_token().is_some();
        // Judged on the store's clock, which every machine shares.
        let now = stored.clock().now();
        let valid_now = access.is_some() && expires_at.is_none_or(|e| e > now);
        let refresh_expires_at = stored.refresh_expires_at();
        // A refresh token past its own expiry gets nothing: the grant is dead.
        let refresh_alive = refresh_present && refresh_expires_at.is_none_or(|e| e > now);
        ProviderStatus {
            provider: provider.name.clone(),
            display_name: provider.display_name.clone(),
            client_id_present: stored.get(CLIENT_ID).is_some(),
            access_token: access.map(|a| mask(secrecy::ExposeSecret::expose_secret(a))),
            expires_at,
            expires_in: expires_at.map(|e| e.saturating_sub(now)),
            refresh_token_present: refresh_present,
            refresh_due: access.is_some() && due_at(expires_at, buffer, now),
            usable: valid_now || refresh_alive,
            cached_until: None,
            refresh_token_expires_at: refresh_expires_at,
            refresh_token_expires_in: refresh_expires_at.map(|e| e.saturating_sub(now)),
            refresh_token_renewable: provider
                .lifetime_from()
                .map(|from| from == crate::provider::LifetimeFrom::Refresh),
            check: None,
        }
    }
}

/// Whether the dotted `path` leads to a value that is neither null nor false.
fn success_field_set(value: &serde_json::Value, path: &str) -> bool {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .is_some_and(|v| !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false)))
}

/// Status of `provider`, in one Doppler read; with `check`, its `[check]` request is sent.
pub async fn status_of(
    store: &Store,
    provider: &Provider,
    buffer: i64,
    check: Option<&Http>,
) -> Result<ProviderStatus> {
    let stored = store.load(provider).await?;
    let mut status = ProviderStatus::of(provider, &stored, buffer);
    if let Some(http) = check {
        status.check = Some(check_token(http, provider, &stored).await);
    }
    Ok(status)
}

/// Status of every provider in `catalog` that has anything stored, in one Doppler read; with
/// `check`, each one's `[check]` request is sent.
pub async fn status_all(
    store: &Store,
    catalog: &Catalog,
    buffer: i64,
    check: Option<&Http>,
) -> Result<Vec<ProviderStatus>> {
    let providers: Vec<&Provider> = catalog.iter().collect();
    let each = store.load_each(&providers).await?;
    let mut rows = Vec::new();
    for (p, stored) in providers.into_iter().zip(each) {
        if !stored.has_anything() {
            continue;
        }
        let mut status = ProviderStatus::of(p, &stored, buffer);
        if let Some(http) = check {
            status.check = Some(check_token(http, p, &stored).await);
        }
        rows.push(status);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_field_follows_a_dotted_path() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"ok":true,"no":false,"data":{"account":{"id":"1"},"viewer":null}}"#,
        )
        .unwrap();
        assert!(success_field_set(&v, "ok"));
        assert!(success_field_set(&v, "data.account.id"));
        assert!(!success_field_set(&v, "no"));
        assert!(!success_field_set(&v, "data.viewer"));
        assert!(!success_field_set(&v, "data.missing"));
    }
}
