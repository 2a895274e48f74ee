//! Provider definitions: the built-in `providers/*.toml` presets compiled into the binary, and
//! the user's own files (`--provider-file`, `$OAUTH_PKCE_PROVIDERS_DIR`, else the user's config
//! dir). Every file is validated when it is loaded: unknown keys, missing keys, a non-https
//! endpoint (loopback excepted) or a bad port range is an error naming the file and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The presets shipped in `providers/`, as (file name, contents).
const BUILTIN: &[(&str, &str)] = &[
    ("github.toml", include_str!("../providers/github.toml")),
    ("google.toml", include_str!("../providers/google.toml")),
    ("jobber.toml", include_str!("../providers/jobber.toml")),
];

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

/// A cheap authenticated request that proves a token works (`status --check`).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".into()
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

/// One provider definition, as in SPEC.md.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    pub display_name: String,
    pub authorization_url: String,
    pub token_url: String,
    #[serde(default)]
    pub revocation_url: Option<String>,
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
    /// Where the definition came from: `built-in` or a file path.
    #[serde(skip_deserializing, default)]
    pub source: String,
}

fn default_redirect_host() -> String {
    "localhost".into()
}

fn default_redirect_path() -> String {
    "/callback".into()
}

impl Provider {
    /// Parses and validates one provider file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Provider> {
        let mut provider: Provider = toml::from_str(text).map_err(|e| Error::ProviderFile {
            path: origin.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        provider.source = origin.to_string();
        provider.validate().map_err(|message| Error::ProviderFile {
            path: origin.to_string(),
            message,
        })?;
        Ok(provider)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(format!(
                "key `name`: `{}` must be lower-case letters, digits, `-` or `_`",
                self.name
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err("key `display_name`: must not be empty".into());
        }
        check_endpoint("authorization_url", &self.authorization_url)?;
        check_endpoint("token_url", &self.token_url)?;
        if let Some(url) = &self.revocation_url {
            check_endpoint("revocation_url", url)?;
        }
        if let Some(check) = &self.check {
            check_endpoint("check.url", &check.url)?;
            let method = check.method.to_ascii_uppercase();
            if !matches!(method.as_str(), "GET" | "POST" | "HEAD") {
                return Err(format!(
                    "key `check.method`: `{}` must be GET, POST or HEAD",
                    check.method
                ));
            }
        }
        if !is_secret_name(&self.secret_prefix) {
            return Err(format!(
                "key `secret_prefix`: `{}` must match ^[A-Z_][A-Z0-9_]*$ (Doppler secret names)",
                self.secret_prefix
            ));
        }
        if !matches!(self.redirect_host.as_str(), "localhost" | "127.0.0.1") {
            return Err(format!(
                "key `redirect_host`: `{}` must be \"localhost\" or \"127.0.0.1\" (the callback listens on loopback only)",
                self.redirect_host
            ));
        }
        let path_ok = self.redirect_path.starts_with('/')
            && !self.redirect_path.contains(['?', '#', ' ', '%'])
            && !self.redirect_path.contains("//");
        if !path_ok {
            return Err(format!(
                "key `redirect_path`: `{}` must be a plain path starting with `/`",
                self.redirect_path
            ));
        }
        for scope in &self.scopes {
            if scope.is_empty() || scope.contains(' ') {
                return Err(format!(
                    "key `scopes`: `{scope}` must be one non-empty scope without spaces"
                ));
            }
        }
        for reserved in [
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "scope",
        ] {
            if self.authorization_params.contains_key(reserved) {
                return Err(format!(
                    "key `authorization_params.{reserved}`: set by oauth-pkce itself (use `scopes` for scope)"
                ));
            }
        }
        Ok(())
    }

    /// Secret names in Doppler for this provider.
    pub fn secret_name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.secret_prefix)
    }
}

/// Doppler secret names: `^[A-Z_][A-Z0-9_]*$`.
pub fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_uppercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// https, or http on a loopback host (for local servers and tests).
fn check_endpoint(key: &str, value: &str) -> std::result::Result<(), String> {
    let url =
        url::Url::parse(value).map_err(|e| format!("key `{key}`: `{value}` is not a URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::http::is_loopback_url(&url) => Ok(()),
        _ => Err(format!(
            "key `{key}`: `{value}` must use https (plain http is allowed only for loopback hosts)"
        )),
    }
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|s| {
            format!(
                "line {}: ",
                text[..s.start.min(text.len())].matches('\n').count() + 1
            )
        })
        .unwrap_or_default();
    let mut message = e.message().trim().to_string();
    // serde's "missing field `x`" names the key; say it in the words SPEC.md uses.
    if let Some(rest) = message.strip_prefix("missing field ") {
        message = format!("missing required key {rest}");
    } else if let Some(rest) = message.strip_prefix("unknown field ") {
        message = format!("unknown key {rest}");
    }
    format!("{line}{message}")
}

/// The user's provider directory: `$OAUTH_PKCE_PROVIDERS_DIR`, else `oauth-pkce/providers` in
/// the user's config dir.
pub fn user_dir() -> Option<PathBuf> {
    std::env::var_os(crate::env::OAUTH_PKCE_PROVIDERS_DIR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("oauth-pkce").join("providers")))
}

/// Every provider known to this run: the built-ins, overridden by the user's files.
#[derive(Debug, Default)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

impl Catalog {
    /// Loads the built-ins, then `*.toml` in `dir` (if it exists), then `files`, later ones
    /// overriding earlier ones with the same `name`.
    pub fn load(dir: Option<&Path>, files: &[PathBuf]) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        for (file, text) in BUILTIN {
            catalog.insert(Provider::parse(
                text,
                &format!("built-in providers/{file}"),
            )?);
        }
        if let Some(dir) = dir {
            for path in toml_files_in(dir)? {
                catalog.insert(load_file(&path)?);
            }
        }
        for path in files {
            catalog.insert(load_file(path)?);
        }
        Ok(catalog)
    }

    fn insert(&mut self, provider: Provider) {
        self.providers.insert(provider.name.clone(), provider);
    }

    /// The provider called `name`, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Provider> {
        self.providers
            .get(name)
            .ok_or_else(|| Error::UnknownProvider {
                name: name.to_string(),
                known: self.providers.keys().cloned().collect(),
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

fn load_file(path: &Path) -> Result<Provider> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    Provider::parse(&text, &path.display().to_string())
}

fn toml_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::ReadFile {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "acme"
display_name = "Acme"
authorization_url = "https://acme.example/authorize"
token_url = "https://acme.example/token"
client_auth = "client_secret_basic"
secret_prefix = "ACME"
"#;

    #[test]
    fn every_builtin_validates() {
        let catalog = Catalog::load(None, &[]).unwrap();
        for (file, _) in BUILTIN {
            let name = file.trim_end_matches(".toml");
            let p = catalog.get(name).unwrap();
            assert_eq!(p.name, name, "{file}: name must match the file name");
        }
    }

    #[test]
    fn jobber_is_a_confidential_post_client_without_scopes() {
        let catalog = Catalog::load(None, &[]).unwrap();
        let jobber = catalog.get("jobber").unwrap();
        assert_eq!(jobber.client_auth, ClientAuth::ClientSecretPost);
        assert!(jobber.scopes.is_empty());
        assert_eq!(jobber.secret_prefix, "JOBBER");
        assert_eq!(
            jobber.token_url,
            "https://api.getjobber.com/api/oauth/token"
        );
    }

    #[test]
    fn defaults_apply() {
        let p = Provider::parse(MINIMAL, "acme.toml").unwrap();
        assert_eq!(p.redirect_host, "localhost");
        assert_eq!(p.redirect_path, "/callback");
        assert_eq!(
            p.ports,
            PortRange {
                first: 3000,
                last: 3010
            }
        );
    }

    #[test]
    fn ports_forms() {
        for (text, first, last) in [
            ("ports = \"4000-4002\"", 4000, 4002),
            ("ports = \"4000\"", 4000, 4000),
            ("ports = 4001", 4001, 4001),
        ] {
            let p = Provider::parse(&format!("{MINIMAL}{text}\n"), "x.toml").unwrap();
            assert_eq!((p.ports.first, p.ports.last), (first, last), "{text}");
        }
        for bad in [
            "ports = \"4002-4000\"",
            "ports = \"0\"",
            "ports = \"x\"",
            "ports = 70000",
        ] {
            assert!(
                Provider::parse(&format!("{MINIMAL}{bad}\n"), "x.toml").is_err(),
                "{bad}"
            );
        }
    }

    fn error_of(text: &str) -> String {
        Provider::parse(text, "bad.toml").unwrap_err().to_string()
    }

    #[test]
    fn missing_key_is_named() {
        let text = MINIMAL.replace("token_url = \"https://acme.example/token\"\n", "");
        let e = error_of(&text);
        assert!(e.starts_with("bad.toml: "), "{e}");
        assert!(e.contains("missing required key `token_url`"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = error_of(&format!("{MINIMAL}tokne_url = \"x\"\n"));
        assert!(e.contains("unknown key `tokne_url`"), "{e}");
        assert!(e.contains("line 8"), "{e}");
    }

    #[test]
    fn http_endpoint_rejected_unless_loopback() {
        let e =
            error_of(&MINIMAL.replace("https://acme.example/token", "http://acme.example/token"));
        assert!(e.contains("key `token_url`") && e.contains("https"), "{e}");
        for ok in [
            "http://127.0.0.1:9/token",
            "http://localhost:9/token",
            "http://[::1]:9/token",
        ] {
            Provider::parse(&MINIMAL.replace("https://acme.example/token", ok), "x").unwrap();
        }
    }

    #[test]
    fn bad_values_are_named() {
        assert!(error_of(&MINIMAL.replace("\"ACME\"", "\"acme\"")).contains("key `secret_prefix`"));
        assert!(
            error_of(&MINIMAL.replace("client_secret_basic", "magic")).contains("client_auth")
                || error_of(&MINIMAL.replace("client_secret_basic", "magic"))
                    .contains("unknown variant")
        );
        assert!(error_of(&format!("{MINIMAL}redirect_host = \"0.0.0.0\"\n"))
            .contains("key `redirect_host`"));
        assert!(
            error_of(&format!("{MINIMAL}[authorization_params]\nstate = \"x\"\n"))
                .contains("authorization_params.state")
        );
    }

    #[test]
    fn user_file_overrides_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobber.toml");
        std::fs::write(
            &path,
            MINIMAL
                .replace("\"acme\"", "\"jobber\"")
                .replace("\"Acme\"", "\"My Jobber\""),
        )
        .unwrap();
        let catalog = Catalog::load(Some(dir.path()), &[]).unwrap();
        let p = catalog.get("jobber").unwrap();
        assert_eq!(p.display_name, "My Jobber");
        assert_eq!(p.source, path.display().to_string());
    }

    #[test]
    fn unknown_provider_lists_known_ones() {
        let catalog = Catalog::load(None, &[]).unwrap();
        match catalog.get("nope") {
            Err(Error::UnknownProvider { known, .. }) => {
                assert!(known.contains(&"jobber".to_string()))
            }
            other => panic!("{other:?}"),
        }
    }
}
