//! The Vault / OpenBao KV version 2 client; its settings are [`settings`]'s.
//!
//! One secret per provider at `{mount}/data/{path}/{provider}`, read with one `GET` and
//! written with one `POST` of the whole secret and `options.cas` = the version read: Vault
//! applies the write only while the secret is still at that version (0: does not exist yet),
//! and answers 400 "check-and-set parameter did not match the current version" otherwise.
//! Plain HTTP through the run's one client; no Vault SDK.

mod settings;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::doppler::Secrets;
use crate::error::{DopplerFailure, Error, Result, StoreKind};
use crate::http::{self, Http};

pub use settings::{VaultSettings, VaultTokenSource};

/// Largest Vault response body we accept.
const BODY_LIMIT: usize = 1 << 20;

/// One KV v2 secret as read.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) data: Secrets,
    /// The current version; 0 when the secret does not exist.
    pub(crate) version: u64,
    /// The server's `Date`, Unix seconds.
    pub(crate) server_time: Option<i64>,
}

/// How a check-and-set write came out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cas {
    /// Written: the secret's new version.
    Written(u64),
    /// The secret is no longer at the version sent: nothing was written.
    Moved,
}

/// The Vault KV v2 client.
#[derive(Clone, Debug)]
pub struct Vault {
    http: Http,
    settings: VaultSettings,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct KvData {
    data: Option<serde_json::Map<String, serde_json::Value>>,
    metadata: Option<KvMetadata>,
}

#[derive(Deserialize)]
struct KvMetadata {
    version: u64,
}

#[derive(Deserialize)]
struct WriteData {
    version: u64,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl Vault {
    pub fn new(http: Http, settings: VaultSettings) -> Vault {
        Vault { http, settings }
    }

    pub fn settings(&self) -> &VaultSettings {
        &self.settings
    }

    /// The store, for errors: the mount and the provider's secret under it.
    pub(crate) fn kind(&self, provider: Option<&str>) -> StoreKind {
        StoreKind::Vault {
            mount: self.settings.mount.clone(),
            path: match provider {
                Some(p) => format!("{}/{p}", self.settings.path),
                None => self.settings.path.clone(),
            },
        }
    }

    /// `{addr}/v1/{rest…}`, each segment escaped.
    fn url(&self, rest: &[&str]) -> url::Url {
        let mut url = self.settings.addr.clone();
        {
            let mut segments = url.path_segments_mut().expect("an http(s) URL has a path");
            segments.pop_if_empty().push("v1");
            for part in rest {
                segments.extend(part.split('/'));
            }
        }
        url
    }

    fn secret_url(&self, provider: &str) -> url::Url {
        self.url(&[&self.settings.mount, "data", &self.settings.path, provider])
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &url::Url,
    ) -> reqwest::RequestBuilder {
        let mut r = client
            .request(method, url.clone())
            .header("X-Vault-Token", self.settings.token.expose_secret())
            .header("X-Vault-Request", "true")
            .header("Accept", "application/json");
        if let Some(ns) = &self.settings.namespace {
            r = r.header("X-Vault-Namespace", ns);
        }
        r
    }

    /// Reads the provider's secret in one request; a secret that does not exist (or whose
    /// current version is deleted) reads as empty, with its version.
    pub(crate) async fn read(&self, provider: &str) -> Result<Read> {
        let url = self.secret_url(provider);
        tracing::debug!(%url, "vault: read secret");
        let (status, body, server_time) = self
            .call(|c| self.request(c, reqwest::Method::GET, &url))
            .await?;
        let (data, version) = read_answer(&self.settings.mount, status, &body)?;
        Ok(Read {
            data,
            version,
            server_time,
        })
    }

    /// Writes the whole secret, only while it is at `version` (Vault's check-and-set). A lost
    /// answer (a 5xx, a timeout or a reset after the request was sent) is
    /// [`Error::StoreAnswerLost`]: the write may have landed, and it is not sent again.
    pub(crate) async fn write(&self, provider: &str, data: &Secrets, version: u64) -> Result<Cas> {
        let values: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.expose_secret())))
            .collect();
        let body = SecretString::from(
            serde_json::json!({ "options": { "cas": version }, "data": values }).to_string(),
        );
        let url = self.secret_url(provider);
        tracing::debug!(%url, version, "vault: check-and-set write");
        let lost = |detail: String| Error::StoreAnswerLost {
            store: self.kind(Some(provider)),
            host: self
                .settings
                .addr
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            detail,
        };
        let client = self.http.client()?;
        let resp = self
            .http
            .send_write(|| {
                self.request(client, reqwest::Method::POST, &url)
                    .header("Content-Type", "application/json")
                    .body(body.expose_secret().to_string())
            })
            .await
            .map_err(|e| match http::lost_answer(&e) {
                Some(detail) => lost(detail.into()),
                None => self.unreachable(e),
            })?;
        let status = resp.status().as_u16();
        let body = http::read_capped(resp, BODY_LIMIT)
            .await
            .map_err(|e| lost(e.to_string()))?;
        match write_answer(&self.settings.mount, status, &body) {
            Written::Done(cas) => Ok(cas),
            Written::Lost(detail) => Err(lost(detail)),
            Written::Refused(e) => Err(e),
        }
    }

    /// The providers with a secret under the path (`LIST {mount}/metadata/{path}`); `None` when
    /// the token may not list (the caller then reads each).
    pub(crate) async fn list(&self) -> Result<Option<Vec<String>>> {
        let url = self.url(&[&self.settings.mount, "metadata", &self.settings.path]);
        let list = reqwest::Method::from_bytes(b"LIST").expect("LIST is a method token");
        let (status, body, _) = self.call(|c| self.request(c, list.clone(), &url)).await?;
        list_answer(&self.settings.mount, status, &body)
    }

    /// `auth/token/lookup-self`: the token's display name, policies and time to live.
    pub async fn lookup_self(&self) -> Result<TokenInfo> {
        let url = self.url(&["auth", "token", "lookup-self"]);
        let body = self.get_json(&url).await?;
        serde_json::from_slice::<Envelope<TokenInfo>>(&body)
            .ok()
            .and_then(|e| e.data)
            .ok_or_else(|| Error::VaultResponse("not a token lookup answer".into()))
    }

    /// `sys/capabilities-self` on the provider's secret: what the token may do there.
    pub async fn capabilities(&self, provider: &str) -> Result<Vec<String>> {
        let path = format!(
            "{}/data/{}/{provider}",
            self.settings.mount, self.settings.path
        );
        let url = self.url(&["sys", "capabilities-self"]);
        let (status, body, _) = self
            .call(|c| {
                self.request(c, reqwest::Method::POST, &url)
                    .json(&serde_json::json!({ "paths": [path] }))
            })
            .await?;
        if !(200..300).contains(&status) {
            return Err(failure(status, &body, false));
        }
        #[derive(Deserialize)]
        struct Caps {
            capabilities: Vec<String>,
        }
        serde_json::from_slice::<Envelope<Caps>>(&body)
            .ok()
            .and_then(|e| e.data)
            .map(|c| c.capabilities)
            .ok_or_else(|| Error::VaultResponse("not a capabilities answer".into()))
    }

    /// The mount's engine and KV version (`sys/internal/ui/mounts/{mount}`), checked: a KV v1
    /// mount, another engine or no mount is [`Error::VaultMount`].
    pub async fn check_mount(&self) -> Result<()> {
        let mount = &self.settings.mount;
        let url = self.url(&["sys", "internal", "ui", "mounts", mount]);
        let body = match self.get_json(&url).await {
            Err(Error::Vault {
                status: 403 | 404,
                message,
                ..
            }) if !message.contains("namespace") => {
                return Err(Error::VaultMount {
                    mount: mount.clone(),
                    problem: "does not exist, or this token may not see it".into(),
                })
            }
            other => other?,
        };
        mount_is_kv_v2(&body).map_err(|problem| Error::VaultMount {
            mount: mount.clone(),
            problem,
        })
    }

    /// Sends a request that may be repeated (a read, a question), retrying as
    /// [`Http::send`] does: its status, body and the server's clock.
    async fn call(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>, Option<i64>)> {
        let client = self.http.client()?;
        let resp = self
            .http
            .send(|| build(client))
            .await
            .map_err(|e| self.unreachable(e))?;
        let server_time = http::server_time(&resp);
        let status = resp.status().as_u16();
        let body = http::read_capped(resp, BODY_LIMIT)
            .await
            .map_err(|e| Error::VaultResponse(e.to_string()))?;
        Ok((status, body, server_time))
    }

    async fn get_json(&self, url: &url::Url) -> Result<Vec<u8>> {
        let (status, body, _) = self
            .call(|c| self.request(c, reqwest::Method::GET, url))
            .await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(failure(status, &body, false))
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        Error::VaultUnreachable {
            addr: self
                .settings
                .addr
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            source: Box::new(http::TransportError::from(e)),
        }
    }
}

/// What `lookup-self` says of the token.
#[derive(Debug, Deserialize)]
pub struct TokenInfo {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    /// Seconds left; 0 for a token that does not expire.
    #[serde(default)]
    pub ttl: i64,
}

fn kv_v1(mount: &str) -> Error {
    Error::VaultMount {
        mount: mount.to_string(),
        problem: "is KV version 1, which has no check-and-set".into(),
    }
}

/// A read's answer: the secret's string values (others as their JSON text) and version. A
/// secret that does not exist reads as empty at version 0; a deleted one as empty at its
/// version (the one a check-and-set must name).
fn read_answer(mount: &str, status: u16, body: &[u8]) -> Result<(Secrets, u64)> {
    let parse = || serde_json::from_slice::<Envelope<KvData>>(body).ok();
    if status == 404 {
        // Absent (`{"errors":[]}`) or deleted (metadata, no data); a 404 that says why is
        // something else: no such mount, no such namespace.
        if let Some(metadata) = parse().and_then(|e| e.data?.metadata) {
            return Ok((Secrets::new(), metadata.version));
        }
        if messages(body).is_empty() {
            return Ok((Secrets::new(), 0));
        }
    }
    if !(200..300).contains(&status) {
        return Err(failure(status, body, false));
    }
    let kv = parse()
        .and_then(|e| e.data)
        .ok_or_else(|| Error::VaultResponse("not a KV secret".into()))?;
    // KV version 1 answers a read of `data/...` without metadata.
    let metadata = kv.metadata.ok_or_else(|| kv_v1(mount))?;
    let data = kv
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, SecretString::from(text))
        })
        .collect();
    Ok((data, metadata.version))
}

/// A mount description (`sys/internal/ui/mounts/{mount}`) of a KV version 2 engine, else
/// what it is instead.
fn mount_is_kv_v2(body: &[u8]) -> std::result::Result<(), String> {
    #[derive(Deserialize)]
    struct Mount {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        options: Option<std::collections::HashMap<String, String>>,
    }
    let m = serde_json::from_slice::<Envelope<Mount>>(body)
        .ok()
        .and_then(|e| e.data)
        .ok_or("answered something that is not a mount description")?;
    let version = m.options.as_ref().and_then(|o| o.get("version"));
    match (m.kind.as_str(), version.map(String::as_str)) {
        ("kv", Some("2")) => Ok(()),
        ("kv", _) => Err("is KV version 1, which has no check-and-set".into()),
        (other, _) => Err(format!(
            "is a `{}` engine, not KV version 2",
            crate::text::terminal_safe(other, 40)
        )),
    }
}

/// A LIST's answer: the secrets (not the folders) under the path.
fn list_answer(mount: &str, status: u16, body: &[u8]) -> Result<Option<Vec<String>>> {
    #[derive(Deserialize)]
    struct Keys {
        keys: Vec<String>,
    }
    match status {
        403 => Ok(None),
        404 if messages(body).is_empty() => Ok(Some(Vec::new())),
        200..=299 => serde_json::from_slice::<Envelope<Keys>>(body)
            .ok()
            .and_then(|e| e.data)
            .map(|k| Some(k.keys.into_iter().filter(|k| !k.ends_with('/')).collect()))
            .ok_or_else(|| kv_v1(mount)),
        s => Err(failure(s, body, false)),
    }
}

/// How a write was answered.
#[derive(Debug)]
enum Written {
    Done(Cas),
    /// A 5xx (other than sealed): it may have landed.
    Lost(String),
    Refused(Error),
}

fn write_answer(mount: &str, status: u16, body: &[u8]) -> Written {
    match status {
        // KV version 1 stores the body as it is and answers without a version.
        204 => Written::Refused(kv_v1(mount)),
        200..=299 => match serde_json::from_slice::<Envelope<WriteData>>(body)
            .ok()
            .and_then(|e| e.data)
        {
            Some(w) => Written::Done(Cas::Written(w.version)),
            None => Written::Refused(kv_v1(mount)),
        },
        400 if messages(body).contains("check-and-set parameter did not match") => {
            Written::Done(Cas::Moved)
        }
        s if s >= 500 && !messages(body).contains("sealed") => {
            Written::Lost(format!("HTTP {s}: {}", messages(body)))
        }
        s => Written::Refused(failure(s, body, true)),
    }
}

/// Vault's `errors`, joined and made safe to print.
fn messages(body: &[u8]) -> String {
    let errors = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let joined = errors
        .iter()
        .map(|e| {
            e.replace("1 error occurred:", "")
                .replace(['\n', '\t', '*'], " ")
        })
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ");
    crate::text::terminal_safe(&joined, 300)
}

/// A refusal, classified as Doppler's are so that the flows treat both stores alike.
fn failure(status: u16, body: &[u8], write: bool) -> Error {
    let text = messages(body);
    let message = if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text
    };
    let kind = match status {
        401 => DopplerFailure::Unauthorized,
        403 if write => DopplerFailure::ReadOnly,
        403 => DopplerFailure::Forbidden,
        404 => DopplerFailure::NotFound,
        429 => DopplerFailure::RateLimited,
        s if s >= 500 => DopplerFailure::Server,
        _ => DopplerFailure::Other,
    };
    Error::Vault {
        status,
        message,
        kind,
    }
}

#[cfg(test)]
mod tests;
