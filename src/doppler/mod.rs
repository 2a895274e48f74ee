//! The Doppler secrets API client; its settings are [`settings`]'s.
//!
//! The wire format follows `reference/doppler-api.md`: one `GET /v3/configs/config/secrets`
//! with a `secrets=` filter reads everything a command needs; one `POST` with
//! `change_requests` writes every token secret (new ones `masked`, existing ones keep their
//! visibility), with `originalValue` as the per-secret compare-and-swap.

mod settings;

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{DopplerFailure, Error, Result};
use crate::http::{self, Http};

pub use settings::{DopplerSettings, SettingsInputs, TokenKind, TokenSource};

/// Largest Doppler response body we accept. A write answers with the whole config (each secret
/// raw, computed and with its note), so a large config that Doppler accepted must fit: a
/// success read as a failure would leave a spent refresh token behind. Doppler documents no
/// config size limit; 16 MiB is far beyond any config seen, and still a bound.
const BODY_LIMIT: usize = 16 << 20;

/// One secret write. `original` is the compare-and-swap precondition (`originalValue`).
#[derive(Debug)]
pub struct Change {
    pub name: String,
    pub value: SecretString,
    /// `Some(v)`: apply only if Doppler holds exactly `v` now.
    pub original: Option<SecretString>,
    /// Whether the secret already exists (sets `originalName`).
    pub exists: bool,
}

/// Secrets as read: name → raw value. Absent names are absent.
pub(crate) type Secrets = BTreeMap<String, SecretString>;

/// What Doppler answered: the secrets (read, or echoed by a write) and its clock.
#[derive(Debug)]
pub struct Answer {
    pub(crate) secrets: Secrets,
    /// Doppler's `Date` header, Unix seconds: the one clock every machine shares.
    pub(crate) server_time: Option<i64>,
}

impl Answer {
    /// The raw value of `name`, if the answer has it.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.secrets.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// The Doppler API client.
#[derive(Clone, Debug)]
pub struct Doppler {
    http: Http,
    settings: DopplerSettings,
}

#[derive(Deserialize)]
struct SecretsResponse {
    secrets: BTreeMap<String, SecretObject>,
}

#[derive(Deserialize)]
struct SecretObject {
    raw: Option<String>,
    computed: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    messages: Vec<String>,
}

impl Doppler {
    pub fn new(http: Http, settings: DopplerSettings) -> Doppler {
        Doppler { http, settings }
    }

    pub fn settings(&self) -> &DopplerSettings {
        &self.settings
    }

    fn endpoint(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.settings.api_host.as_str().trim_end_matches('/')
        )
    }

    fn scope_query(&self) -> Vec<(&'static str, String)> {
        vec![
            ("project", self.settings.project.clone().unwrap_or_default()),
            ("config", self.settings.config.clone().unwrap_or_default()),
        ]
    }

    /// Reads the named secrets (all secrets when `names` is empty) in one request.
    pub async fn read(&self, names: &[String]) -> Result<Answer> {
        let mut query = self.scope_query();
        query.push(("include_dynamic_secrets", "false".into()));
        query.push(("include_managed_secrets", "false".into()));
        if !names.is_empty() {
            query.push(("secrets", names.join(",")));
        }
        let url = self.endpoint("/v3/configs/config/secrets");
        tracing::debug!(names = ?names, "doppler: read secrets");
        let client = self.http.client()?;
        let resp = self
            .http
            .send(|| {
                client
                    .get(&url)
                    .query(&query)
                    .bearer_auth(self.settings.token.expose_secret())
                    .header("Accept", "application/json")
            })
            .await
            .map_err(|e| self.unreachable(e))?;
        let server_time = http::server_time(&resp);
        let body = self.body(resp, false).await?;
        Ok(Answer {
            secrets: parse_secrets(&body)?,
            server_time,
        })
    }

    /// Writes every change in one request (new secrets `masked`) and returns what Doppler
    /// echoes: whether each change took is for the caller to compare (Doppler may answer a
    /// failed `originalValue` with 200 and that change skipped). A lost answer (a 5xx, a
    /// timeout or a reset after the request was sent) is [`Error::StoreAnswerLost`]: the
    /// write may have landed, and it is not sent again.
    pub async fn write(&self, changes: &[Change]) -> Result<Answer> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChangeRequest<'a> {
            name: &'a str,
            original_name: Option<&'a str>,
            value: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            original_value: Option<&'a str>,
            /// Only for a new secret: an existing one keeps the visibility its owner gave it
            /// (a `restricted` token secret stays restricted).
            #[serde(skip_serializing_if = "Option::is_none")]
            visibility: Option<&'static str>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            project: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            config: Option<&'a str>,
            change_requests: Vec<ChangeRequest<'a>>,
        }
        let body = Body {
            project: self.settings.project.as_deref(),
            config: self.settings.config.as_deref(),
            change_requests: changes
                .iter()
                .map(|c| ChangeRequest {
                    name: &c.name,
                    original_name: c.exists.then_some(c.name.as_str()),
                    value: c.value.expose_secret(),
                    original_value: c.original.as_ref().map(|v| v.expose_secret()),
                    visibility: (!c.exists).then_some("masked"),
                })
                .collect(),
        };
        let json =
            SecretString::from(serde_json::to_string(&body).expect("a change request serializes"));
        let url = self.endpoint("/v3/configs/config/secrets");
        let query = self.scope_query();
        tracing::debug!(
            names = ?changes.iter().map(|c| &c.name).collect::<Vec<_>>(),
            "doppler: write secrets"
        );
        let lost = |detail: String| Error::StoreAnswerLost {
            store: crate::error::StoreKind::Doppler,
            host: self.settings.api_host.to_string(),
            detail,
        };
        let client = self.http.client()?;
        let resp = self
            .http
            .send_write(|| {
                client
                    .post(&url)
                    .query(&query)
                    .bearer_auth(self.settings.token.expose_secret())
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .body(json.expose_secret().to_string())
            })
            .await
            .map_err(|e| match http::lost_answer(&e) {
                Some(detail) => lost(detail.into()),
                None => self.unreachable(e),
            })?;
        let server_time = http::server_time(&resp);
        let body = match self.body(resp, true).await {
            Err(Error::Doppler {
                status,
                message,
                kind: DopplerFailure::Server,
            }) => {
                return Err(lost(if message.starts_with("HTTP ") {
                    message
                } else {
                    format!("HTTP {status}: {message}")
                }))
            }
            Err(Error::DopplerResponse(m)) => return Err(lost(m)),
            other => other?,
        };
        Ok(Answer {
            secrets: parse_secrets(&body).map_err(|_| lost("not a secrets answer".into()))?,
            server_time,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        Error::DopplerUnreachable {
            host: self.settings.api_host.to_string(),
            source: Box::new(http::TransportError::from(e)),
        }
    }

    async fn body(&self, resp: reqwest::Response, write: bool) -> Result<Vec<u8>> {
        let status = resp.status();
        let body = http::read_capped(resp, BODY_LIMIT)
            .await
            .map_err(|e| Error::DopplerResponse(e.to_string()))?;
        if status.is_success() {
            return Ok(body);
        }
        let messages = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.messages)
            .unwrap_or_default();
        let message = if messages.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            crate::text::terminal_safe(&messages.join("; "), 300)
        };
        let kind = match status.as_u16() {
            401 => DopplerFailure::Unauthorized,
            403 if write => DopplerFailure::ReadOnly,
            403 => DopplerFailure::Forbidden,
            404 => DopplerFailure::NotFound,
            409 => DopplerFailure::Conflict,
            429 => DopplerFailure::RateLimited,
            s if s >= 500 => DopplerFailure::Server,
            _ => DopplerFailure::Other,
        };
        Err(Error::Doppler {
            status: status.as_u16(),
            message,
            kind,
        })
    }
}

fn parse_secrets(body: &[u8]) -> Result<Secrets> {
    let parsed: SecretsResponse = serde_json::from_slice(body).map_err(|e| {
        Error::DopplerResponse(format!(
            "not a Doppler secrets response (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok(parsed
        .secrets
        .into_iter()
        // `computed` (references such as `${OTHER}` expanded), as the Doppler CLI shows it: a
        // config that references the tokens of another gives their values, not the reference.
        // The secrets oauth-pkce writes hold no references, so for them the two are the same.
        .filter_map(|(name, s)| s.computed.or(s.raw).map(|v| (name, SecretString::from(v))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referenced_secret_reads_as_its_value_not_the_reference() {
        let body = br#"{"secrets":{"ACME_ACCESS_TOKEN":{"raw":"${oauth.tokens.ACME_ACCESS_TOKEN}","computed":"AT-FAKE-value"},"ACME_CLIENT_ID":{"raw":"id","computed":null}}}"#;
        let secrets = parse_secrets(body).unwrap();
        assert_eq!(
            secrets["ACME_ACCESS_TOKEN"].expose_secret(),
            "AT-FAKE-value"
        );
        assert_eq!(secrets["ACME_CLIENT_ID"].expose_secret(), "id");
    }

    #[test]
    fn debug_of_a_change_does_not_show_its_values() {
        let c = Change {
            name: "A".into(),
            value: SecretString::from("SENTINELVALUE"),
            original: Some(SecretString::from("SENTINELOLD")),
            exists: true,
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SENTINELVALUE") && !dbg.contains("SENTINELOLD"));
    }
}
