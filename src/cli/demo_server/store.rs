//! The demo's Doppler-compatible store, in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{json_response, lock, pairs, CONFIG, PROJECT};

pub(super) struct Store {
    pub(super) token: String,
    pub(super) secrets: Mutex<BTreeMap<String, String>>,
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

pub(super) async fn read(
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
pub(super) async fn write(
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
