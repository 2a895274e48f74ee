//! Provider definitions: the built-in `providers/*.toml` presets compiled into the binary, and
//! the user's own files (`--provider-file`, `$OAUTH_PKCE_PROVIDERS_DIR`, else the user's config
//! dir). Every file is validated when it is loaded: unknown keys, missing keys, a non-https
//! endpoint (loopback excepted) or a bad port range is an error naming the file and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;

use serde::Deserialize;

use crate::error::{Error, Result};

mod catalog;
mod extend;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use catalog::user_dir;
pub use catalog::{default_user_dir, Catalog};

/// How the client authenticates at the token endpoint (RFC 6749 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// A public client: `client_id` only, no secret.
    None,
}

/// A cheap authenticated request that proves a token works (`status --check`): sent with
/// `Authorization: {auth_scheme} {token}`; any 2xx answer means the token works, and with
/// `success_field` (a dotted path) the answer must also be JSON where that field is present
/// and neither null nor false (Slack answers every Web API call with 200 and `"ok": false` on
/// failure; GraphQL APIs may answer 200 with `errors` and no `data`).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub url: url::Url,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// The authorization scheme: `Bearer` (default); Twitch's validate endpoint documents `OAuth`.
    #[serde(default = "default_auth_scheme")]
    pub auth_scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_field: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_auth_scheme() -> String {
    "Bearer".into()
}

/// How the token request's parameters are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRequestFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749).
    #[default]
    Form,
    /// The same parameters as a JSON object of strings (Atlassian's and Notion's documented form).
    Json,
}

/// Whether a refresh returns a new refresh token that replaces the stored one. oauth-pkce
/// always stores whatever comes back; this is information for `oauth-pkce providers`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// Each refresh returns a new refresh token; the old one stops working (or must be dropped).
    Yes,
    /// The same refresh token stays valid.
    No,
    /// It depends on a setting of the app at the provider.
    Optional,
    /// Not documented, or not confirmed.
    #[default]
    Unknown,
}

/// What a refresh token's lifetime (`refresh_token_lifetime`) counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifetimeFrom {
    /// Sliding: each refresh starts the lifetime again (Microsoft's 90 days of inactivity).
    Refresh,
    /// Absolute: counted from the sign-in; refreshes never extend it (Spotify's six months).
    Authorization,
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rotation::Yes => "yes",
            Rotation::No => "no",
            Rotation::Optional => "app setting",
            Rotation::Unknown => "unknown",
        })
    }
}

/// Why `authorize` cannot work for a provider through a loopback redirect, and what to do instead.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoopbackUnsupported {
    pub reason: String,
    pub alternative: String,
}

/// The callback ports to try, first free one wins: `"A-B"`, `"A"` or an integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// Parses `"A-B"` or `"A"`.
    pub fn parse(text: &str) -> std::result::Result<PortRange, String> {
        let port = |s: &str| -> std::result::Result<u16, String> {
            match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(format!("`{s}` is not a port number (1-65535)")),
            }
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(text)?;
                (p, p)
            }
        };
        if first > last {
            return Err(format!("port range `{text}` runs backwards"));
        }
        if last - first > 100 {
            return Err(format!("port range `{text}` is wider than 100 ports"));
        }
        Ok(PortRange { first, last })
    }

    pub fn iter(&self) -> RangeInclusive<u16> {
        self.first..=self.last
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            first: 3000,
            last: 3010,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            Raw::Text(s) => s,
        };
        PortRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One provider definition, with the keys docs/providers.md lists.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    /// Defaults to `name`.
    #[serde(default)]
    pub display_name: String,
    pub authorization_url: url::Url,
    pub token_url: url::Url,
    #[serde(default)]
    pub revocation_url: Option<url::Url>,
    /// The device authorization endpoint (RFC 8628), for `authorize --device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_url: Option<url::Url>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub client_auth: ClientAuth,
    pub secret_prefix: String,
    #[serde(default = "default_redirect_host")]
    pub redirect_host: String,
    #[serde(default = "default_redirect_path")]
    pub redirect_path: String,
    #[serde(default)]
    pub ports: PortRange,
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    #[serde(default)]
    pub check: Option<Check>,
    /// The parameter that carries the scopes: `scope`, or e.g. Slack's `user_scope`.
    #[serde(default = "default_scope_parameter")]
    pub scope_parameter: String,
    /// What joins the scopes: `" "` (RFC 6749) or `","` (Slack, Linear).
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    #[serde(default)]
    pub token_request_format: TokenRequestFormat,
    /// A dotted path to the object holding the tokens in the code-exchange response, e.g.
    /// Slack's `authed_user`; used when that object has an `access_token`, else the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_response_path: Option<String>,
    /// Send the redirect URI (on the first port of `ports`) with refresh requests too (GitLab).
    #[serde(default)]
    pub refresh_sends_redirect_uri: bool,
    #[serde(default)]
    pub refresh_token_rotation: Rotation,
    /// Free text: what limits a CLI flow with this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
    /// Set when no loopback flow can work: `authorize` refuses with the reason and the alternative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loopback_unsupported: Option<LoopbackUnsupported>,
    /// The authorization server's issuer identifier (RFC 9207): an `iss` on the callback must
    /// equal it exactly, else the callback is refused (mix-up defence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The server always sends `iss` (it advertises `authorization_response_iss_parameter_supported`):
    /// a callback without it is refused. Needs `issuer`.
    #[serde(default)]
    pub require_iss: bool,
    /// Send PKCE (RFC 7636, S256). On by default; `false` only for a server that refuses the
    /// parameters (the loopback flow then rests on `state` and the client secret alone).
    #[serde(default = "default_true")]
    pub pkce: bool,
    /// How `revoke` sends its request: `form` (RFC 7009: `token` and `token_type_hint`), or
    /// `json` (`{"token": …}`, Notion's and QuickBooks' documented body).
    #[serde(default)]
    pub revocation_body: TokenRequestFormat,
    /// Send the refresh token to `revocation_url` (first, before the access token). `false`
    /// for a server that documents revoking the access token only (Notion).
    #[serde(default = "default_true")]
    pub revoke_refresh_token: bool,
    /// Headers sent with every request to the token, device and revocation endpoints
    /// (Notion's `Notion-Version`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub token_headers: BTreeMap<String, String>,
    /// Where `oauth-pkce proxy` forwards requests (the API's base URL, e.g.
    /// `https://api.github.com`).
    #[serde(default)]
    pub api_base_url: Option<url::Url>,
    /// Hosts whose git-over-HTTPS credential is this provider's access token
    /// (`oauth-pkce git-credential`), e.g. `github.com`.
    #[serde(default)]
    pub git_hosts: Vec<String>,
    /// The user name git sends with that token (GitHub: `x-access-token`; GitLab: `oauth2`).
    #[serde(default)]
    pub git_username: Option<String>,
    /// Seconds a refresh token lives when the token answer does not say
    /// (`refresh_token_expires_in`); stored as `{PREFIX}_REFRESH_TOKEN_EXPIRES_AT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_lifetime: Option<u64>,
    /// Whether a refresh token's lifetime slides with each refresh or runs from the sign-in;
    /// unset: sliding when `refresh_token_lifetime` is set, else unknown (see
    /// [`Provider::lifetime_from`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_lifetime_from: Option<LifetimeFrom>,
    /// Where the definition came from: `built-in` or a file path.
    #[serde(skip_deserializing, default)]
    pub source: String,
    /// A user's file that replaces the built-in preset of the same name.
    #[serde(skip_deserializing, default)]
    pub overrides_builtin: bool,
}

/// The longest refresh-token lifetime believed, from a server or a file: ten years.
pub(crate) const MAX_REFRESH_LIFETIME: u64 = 10 * 366 * 86_400;

/// How long before a sliding refresh token dies `refresh --if-due` refreshes it: 14 days.
const KEEP_ALIVE_WINDOW: i64 = 14 * 86_400;

fn default_true() -> bool {
    true
}

/// The keys without a default (the fields of [`Provider`] serde requires).
const REQUIRED_KEYS: &[&str] = &[
    "name",
    "authorization_url",
    "token_url",
    "client_auth",
    "secret_prefix",
];

fn default_redirect_host() -> String {
    "localhost".into()
}

fn default_redirect_path() -> String {
    "/callback".into()
}

fn default_scope_parameter() -> String {
    "scope".into()
}

fn default_scope_separator() -> String {
    " ".into()
}

/// Parameters of the authorization request that oauth-pkce sets itself.
const RESERVED_AUTHORIZATION_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
];

impl Provider {
    /// Parses and validates one provider file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Provider> {
        let parsed = match extend::merged(text, origin)? {
            Some(table) => toml::Value::Table(table)
                .try_into()
                .map_err(|e| describe_merged_error(text, &e)),
            None => toml::from_str(text).map_err(|e| describe_toml_error(text, &e)),
        };
        let mut provider: Provider = parsed.map_err(|message| Error::ProviderFile {
            path: origin.to_string(),
            message,
        })?;
        provider.source = origin.to_string();
        if provider.display_name.is_empty() {
            provider.display_name = provider.name.clone();
        }
        // Free text may be written over several lines (TOML's """): keep it on one.
        provider.limitations = provider.limitations.as_deref().map(one_line);
        if let Some(u) = &mut provider.loopback_unsupported {
            u.reason = one_line(&u.reason);
            u.alternative = one_line(&u.alternative);
        }
        provider.validate().map_err(|message| Error::ProviderFile {
            path: origin.to_string(),
            message,
        })?;
        Ok(provider)
    }

    /// An error when no loopback flow can work for this provider (`loopback_unsupported`).
    pub fn ensure_loopback_flow(&self) -> Result<()> {
        match &self.loopback_unsupported {
            None => Ok(()),
            Some(u) => Err(Error::NoLoopbackFlow {
                provider: self.name.clone(),
                reason: u.reason.trim().to_string(),
                alternative: u.alternative.trim().to_string(),
            }),
        }
    }

    /// The redirect URI on port `port`.
    pub fn redirect_uri(&self, port: u16) -> String {
        format!("http://{}:{port}{}", self.redirect_host, self.redirect_path)
    }

    /// What the refresh token's lifetime counts from: the file's `refresh_token_lifetime_from`,
    /// else sliding for a file that gives a `refresh_token_lifetime`, else unknown (`None`: a
    /// lifetime the provider announces may or may not move with a refresh).
    pub fn lifetime_from(&self) -> Option<LifetimeFrom> {
        self.refresh_token_lifetime_from
            .or(self.refresh_token_lifetime.map(|_| LifetimeFrom::Refresh))
    }

    /// When a refresh token issued now dies, by `refresh_token_lifetime`, for a token answer
    /// that did not say: `None` when unknown, and on a refresh of an absolute lifetime (the
    /// stored expiry stands).
    pub(crate) fn refresh_token_expiry(&self, refreshing: bool, now: i64) -> Option<i64> {
        let lifetime = self.refresh_token_lifetime?;
        if refreshing && self.lifetime_from() == Some(LifetimeFrom::Authorization) {
            return None;
        }
        Some(now.saturating_add(lifetime.min(MAX_REFRESH_LIFETIME) as i64))
    }

    /// Whether a refresh token that dies in `expires_in` seconds should be refreshed now to
    /// stay alive (`refresh --if-due`): within 14 days of its end (half its lifetime, when
    /// shorter), and only when refreshing is known to extend it.
    pub fn keep_alive_due(&self, expires_in: i64) -> bool {
        if self.lifetime_from() != Some(LifetimeFrom::Refresh) {
            return false;
        }
        let window = self
            .refresh_token_lifetime
            .map_or(KEEP_ALIVE_WINDOW, |l| (l as i64 / 2).min(KEEP_ALIVE_WINDOW));
        expires_in > 0 && expires_in <= window
    }

    pub fn secret_name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.secret_prefix)
    }
}

/// Doppler secret names: `^[A-Z_][A-Z0-9_]*$`.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_uppercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `text` with every run of white space (newlines included) made one space, trimmed.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|s| {
            let start = s.start.min(text.len());
            let number = text[..start].matches('\n').count() + 1;
            // Name the key of that line when the message does not (a bad enum value does not).
            let line_text = text[start..].lines().next().unwrap_or_default();
            let line_text = text[..start]
                .rsplit('\n')
                .next()
                .unwrap_or_default()
                .to_string()
                + line_text;
            match line_text.split_once('=') {
                Some((key, _))
                    if !key.trim().is_empty()
                        && !e.message().starts_with("missing field")
                        && !key.contains('[')
                        && !e.message().contains(&format!("`{}`", key.trim())) =>
                {
                    format!("line {number}: key `{}`: ", key.trim())
                }
                _ => format!("line {number}: "),
            }
        })
        .unwrap_or_default();
    let mut message = e.message().trim().to_string();
    // serde's "missing field `x`" names only the first missing key: name them all, in the
    // words docs/providers.md uses.
    if let Some(rest) = message.strip_prefix("missing field ") {
        let missing: Vec<String> = text
            .parse::<toml::Table>()
            .map(|table| {
                REQUIRED_KEYS
                    .iter()
                    .filter(|k| !table.contains_key(**k))
                    .map(|k| format!("`{k}`"))
                    .collect()
            })
            .unwrap_or_default();
        message = match missing.len() {
            0 => format!("missing required key {rest}"),
            1 => format!("missing required key {}", missing[0]),
            _ => format!("missing required keys {}", missing.join(", ")),
        };
    } else if let Some(rest) = message.strip_prefix("unknown field ") {
        let near = nearest_key(rest).map(|k| format!(" (did you mean `{k}`?)"));
        message = format!("unknown key {rest}{}", near.unwrap_or_default());
    }
    format!("{line}{message}")
}

/// An error in a file that `extends` a preset: the merged table has no positions, so the key
/// is found by trying each alone, and its line in the user's text.
fn describe_merged_error(text: &str, e: &toml::de::Error) -> String {
    let message = describe_toml_error(text, e);
    let Some(key) = extend::culprit(text).filter(|k| !message.contains(&format!("`{k}`"))) else {
        return message;
    };
    let line = text.lines().position(|l| {
        let l = l.trim_start();
        l.strip_prefix(key.as_str())
            .is_some_and(|rest| rest.trim_start().starts_with('='))
            || l.starts_with(&format!("[{key}"))
    });
    match line {
        Some(n) => format!("line {}: key `{key}`: {message}", n + 1),
        None => format!("key `{key}`: {message}"),
    }
}

/// For serde's "`tokne_url`, expected one of `a`, `b`, …": the expected key nearest to the
/// unknown one, when it is close enough to be a typo (at most 2 edits, or a third of it).
fn nearest_key(rest: &str) -> Option<String> {
    let (unknown, expected) = rest.split_once(", expected ")?;
    let unknown = unknown.trim_matches('`');
    crate::text::nearest(unknown, expected.split('`').skip(1).step_by(2))
}
