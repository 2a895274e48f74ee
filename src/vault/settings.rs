//! Where the Vault settings come from (docs/vault.md): the address from `VAULT_ADDR`, else
//! `BAO_ADDR`; the token from `VAULT_TOKEN`, else `BAO_TOKEN`, else `~/.vault-token` (what
//! `vault login` and `bao login` write); `VAULT_NAMESPACE`; the KV v2 mount from
//! `OAUTH_PKCE_VAULT_MOUNT` (default `secret`) and the path under it from
//! `OAUTH_PKCE_VAULT_PATH` (default `oauth-pkce`). `VAULT_CACERT` is added to the run's CA
//! files by the caller, before the one HTTP client is built.

use std::path::Path;

use secrecy::SecretString;

use crate::doppler::SettingsInputs;
use crate::env;
use crate::error::{Error, Result};
use crate::http;

pub(crate) const DEFAULT_MOUNT: &str = "secret";
pub(crate) const DEFAULT_PATH: &str = "oauth-pkce";

/// Where the Vault token was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultTokenSource {
    /// `VAULT_TOKEN` or `BAO_TOKEN` (the name).
    Environment(&'static str),
    /// `~/.vault-token`.
    File(std::path::PathBuf),
}

/// Resolved Vault settings.
#[derive(Clone, Debug)]
pub struct VaultSettings {
    pub addr: url::Url,
    pub token: SecretString,
    pub token_source: VaultTokenSource,
    pub namespace: Option<String>,
    /// The KV version 2 mount.
    pub mount: String,
    /// The folder under the mount; each provider's secret is `{path}/{provider}`.
    pub path: String,
}

impl VaultSettings {
    /// Resolves the settings from `inputs.vars` and `inputs.home`.
    pub fn resolve(inputs: &SettingsInputs) -> Result<VaultSettings> {
        let var = |name: &str| {
            inputs
                .vars
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let addr_text = var(env::VAULT_ADDR)
            .or_else(|| var(env::BAO_ADDR))
            .ok_or_else(|| {
                Error::Config(
                "the Vault store needs the server's address: set VAULT_ADDR (or BAO_ADDR), e.g. \
                 VAULT_ADDR=https://vault.example.com:8200"
                    .into(),
            )
            })?;
        let addr = url::Url::parse(addr_text.trim_end_matches('/'))
            .map_err(|_| Error::Config(format!("VAULT_ADDR `{addr_text}` is not a URL")))?;
        if http::has_userinfo(&addr) {
            return Err(Error::Config(
                "VAULT_ADDR must not carry a user name or password before the host".into(),
            ));
        }
        let addr_ok =
            addr.scheme() == "https" || (addr.scheme() == "http" && http::is_loopback_url(&addr));
        if !addr_ok {
            return Err(Error::Config(format!(
                "VAULT_ADDR `{addr_text}` must use https (plain http only for loopback)"
            )));
        }
        let (token, token_source) = if let Some(t) = var(env::VAULT_TOKEN) {
            (
                t.to_string(),
                VaultTokenSource::Environment(env::VAULT_TOKEN),
            )
        } else if let Some(t) = var(env::BAO_TOKEN) {
            (t.to_string(), VaultTokenSource::Environment(env::BAO_TOKEN))
        } else {
            let file = inputs
                .home
                .as_ref()
                .map(|h| h.join(".vault-token"))
                .ok_or(Error::NoVaultToken)?;
            let token = read_token_file(&file)?.ok_or(Error::NoVaultToken)?;
            (token, VaultTokenSource::File(file))
        };
        if token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::Config(
                "the Vault token contains spaces or control characters".into(),
            ));
        }
        let segment = |name: &str, default: &str| -> Result<String> {
            let value = var(name).unwrap_or(default).trim_matches('/').to_string();
            let ok = !value.is_empty()
                && value.split('/').all(|s| {
                    !s.is_empty()
                        && s != "."
                        && s != ".."
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                });
            if ok {
                Ok(value)
            } else {
                Err(Error::Config(format!(
                    "{name} `{value}` must be a path of letters, digits, `-`, `_` and `.`"
                )))
            }
        };
        crate::text::conceal(&token);
        Ok(VaultSettings {
            addr,
            token: SecretString::from(token),
            token_source,
            namespace: var(env::VAULT_NAMESPACE).map(|n| n.trim_matches('/').to_string()),
            mount: segment(env::OAUTH_PKCE_VAULT_MOUNT, DEFAULT_MOUNT)?,
            path: segment(env::OAUTH_PKCE_VAULT_PATH, DEFAULT_PATH)?,
        })
    }

    /// `secret/oauth-pkce at https://vault:8200 (namespace team)`, for messages.
    pub fn describe_target(&self) -> String {
        let namespace = self
            .namespace
            .as_deref()
            .map(|n| format!(" (namespace {n})"))
            .unwrap_or_default();
        format!(
            "{}/{} at {}{namespace}",
            self.mount,
            self.path,
            self.addr.as_str().trim_end_matches('/')
        )
    }
}

/// `~/.vault-token`, when it exists: `None` when absent or empty.
fn read_token_file(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn inputs(vars: &[(&str, &str)], home: Option<&Path>) -> SettingsInputs {
        SettingsInputs {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: home.map(Path::to_path_buf),
            ..Default::default()
        }
    }

    #[test]
    fn the_address_and_token_come_from_vault_names_then_bao_names_then_the_token_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".vault-token"), "fake-file-token\n").unwrap();
        let s = VaultSettings::resolve(&inputs(
            &[
                ("BAO_ADDR", "http://127.0.0.1:8200/"),
                ("BAO_TOKEN", "fake-bao"),
                ("VAULT_TOKEN", "fake-vault"),
            ],
            Some(home.path()),
        ))
        .unwrap();
        assert_eq!(s.addr.as_str(), "http://127.0.0.1:8200/");
        assert_eq!(s.token.expose_secret(), "fake-vault");
        assert_eq!(
            (s.mount.as_str(), s.path.as_str()),
            ("secret", "oauth-pkce")
        );
        let s = VaultSettings::resolve(&inputs(
            &[
                ("VAULT_ADDR", "https://vault.example"),
                ("BAO_TOKEN", "fake-bao"),
            ],
            Some(home.path()),
        ))
        .unwrap();
        assert_eq!(s.token_source, VaultTokenSource::Environment("BAO_TOKEN"));
        let s = VaultSettings::resolve(&inputs(
            &[("VAULT_ADDR", "https://vault.example")],
            Some(home.path()),
        ))
        .unwrap();
        assert_eq!(s.token.expose_secret(), "fake-file-token");
        let none = tempfile::tempdir().unwrap();
        let e = VaultSettings::resolve(&inputs(
            &[("VAULT_ADDR", "https://vault.example")],
            Some(none.path()),
        ))
        .unwrap_err();
        assert!(matches!(e, Error::NoVaultToken), "{e}");
    }

    #[test]
    fn plain_http_only_to_loopback_and_paths_without_dot_segments() {
        let t = ("VAULT_TOKEN", "fake");
        for addr in [
            "http://vault.example:8200",
            "ftp://127.0.0.1",
            "https://u:p@v.example",
        ] {
            let e = VaultSettings::resolve(&inputs(&[("VAULT_ADDR", addr), t], None)).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{addr}: {e}");
        }
        let e = VaultSettings::resolve(&inputs(&[t], None)).unwrap_err();
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
        for (name, value) in [
            ("OAUTH_PKCE_VAULT_PATH", "a/../b"),
            ("OAUTH_PKCE_VAULT_MOUNT", "sec ret"),
            ("OAUTH_PKCE_VAULT_PATH", "a?b"),
        ] {
            let e = VaultSettings::resolve(&inputs(
                &[("VAULT_ADDR", "http://[::1]:8200"), t, (name, value)],
                None,
            ))
            .unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        let s = VaultSettings::resolve(&inputs(
            &[
                ("VAULT_ADDR", "http://localhost:8200"),
                t,
                ("OAUTH_PKCE_VAULT_MOUNT", "/kv/"),
                ("OAUTH_PKCE_VAULT_PATH", "team/oauth"),
                ("VAULT_NAMESPACE", "eng/"),
            ],
            None,
        ))
        .unwrap();
        assert_eq!(
            s.describe_target(),
            "kv/team/oauth at http://localhost:8200 (namespace eng)"
        );
    }
}
