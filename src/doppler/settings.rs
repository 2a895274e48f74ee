//! Where the Doppler settings come from (first match wins; docs/usage.md, "The Doppler token"): the token from
//! `DOPPLER_TOKEN`, else the file named by `DOPPLER_TOKEN_FILE`, else the token the Doppler
//! CLI's own configuration (`~/.doppler/.doppler.yaml`, moved by `DOPPLER_CONFIG_DIR`)
//! scopes to the current directory; project and config from flags, else
//! `DOPPLER_PROJECT`/`DOPPLER_CONFIG`, else the CLI's scoped setup (a service token implies
//! its own); the API host from `DOPPLER_API_HOST`, else the CLI's scoped `api-host`, else
//! `https://api.doppler.com`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::env;
use crate::error::{Error, Result};
use crate::http;

/// Doppler's public API.
pub(crate) const DEFAULT_API_HOST: &str = "https://api.doppler.com";

/// Where the Doppler token was found.
/// Where the Doppler token was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum TokenSource {
    /// `DOPPLER_TOKEN`.
    Environment,
    /// The file named by `DOPPLER_TOKEN_FILE`.
    File { path: PathBuf },
    /// The Doppler CLI's configuration, for the scope that matched.
    CliConfig { path: PathBuf, scope: String },
}

/// What kind of Doppler token this is, from its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Service,
    Personal,
    Cli,
    ServiceAccount,
    Other,
}

impl TokenKind {
    pub fn of(token: &str) -> TokenKind {
        match token {
            t if t.starts_with("dp.st.") => TokenKind::Service,
            t if t.starts_with("dp.pt.") => TokenKind::Personal,
            t if t.starts_with("dp.ct.") => TokenKind::Cli,
            t if t.starts_with("dp.sa.") || t.starts_with("dp.said.") => TokenKind::ServiceAccount,
            _ => TokenKind::Other,
        }
    }
}

/// Resolved Doppler settings: which token, which project/config, which host.
#[derive(Clone, Debug)]
pub struct DopplerSettings {
    pub token: SecretString,
    pub token_source: TokenSource,
    pub project: Option<String>,
    pub config: Option<String>,
    pub api_host: url::Url,
}

/// The inputs settings are resolved from, gathered by the caller (the CLI reads the process
/// environment; tests pass a map).
#[derive(Debug, Default)]
pub struct SettingsInputs {
    /// `--store`: which store (else `OAUTH_PKCE_STORE`, else Doppler).
    pub store_flag: Option<String>,
    pub project_flag: Option<String>,
    pub config_flag: Option<String>,
    pub vars: HashMap<String, String>,
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
}

impl SettingsInputs {
    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl DopplerSettings {
    /// Resolves the settings; see the module docs for the order.
    pub fn resolve(inputs: &SettingsInputs) -> Result<DopplerSettings> {
        let cli = CliConfig::load(inputs)?;
        let scoped = |key: &str| cli.as_ref().and_then(|c| c.get(key, &inputs.cwd));

        let (token, token_source) = if let Some(t) = inputs.var(env::DOPPLER_TOKEN) {
            (t.trim().to_string(), TokenSource::Environment)
        } else if let Some(file) = inputs.var(env::DOPPLER_TOKEN_FILE) {
            let path = PathBuf::from(file);
            let text = read_token_file(&path)?;
            (text.trim().to_string(), TokenSource::File { path })
        } else if let Some((t, scope)) = scoped("token") {
            if t.starts_with("secret-") {
                return Err(Error::DopplerTokenInKeyring);
            }
            let path = cli.as_ref().map(|c| c.path.clone()).unwrap_or_default();
            (t, TokenSource::CliConfig { path, scope })
        } else {
            return Err(Error::NoDopplerToken);
        };
        if token.is_empty() {
            return Err(Error::NoDopplerToken);
        }
        if token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::Config(
                "the Doppler token contains spaces or control characters".into(),
            ));
        }
        let service = TokenKind::of(&token) == TokenKind::Service;

        // A service token implies its own project and config: the CLI's scoped setup is not
        // sent with it (Doppler refuses a different one); explicit flags and env still are.
        let pick = |flag: &Option<String>, var: &str, key: &str| -> Option<String> {
            flag.clone()
                .filter(|v| !v.is_empty())
                .or_else(|| inputs.var(var).map(str::to_string))
                .or_else(|| {
                    if service {
                        None
                    } else {
                        scoped(key).map(|(v, _)| v)
                    }
                })
        };
        let project = pick(
            &inputs.project_flag,
            env::DOPPLER_PROJECT,
            "enclave.project",
        );
        let config = pick(&inputs.config_flag, env::DOPPLER_CONFIG, "enclave.config");
        // Only a service token implies its project and config; any other must be told them.
        let implies_target = token.starts_with("dp.st.");
        if !implies_target && (project.is_none() || config.is_none()) {
            return Err(Error::Config(
                "this Doppler token (not a service token) names no project and config: pass \
                 --project NAME --config NAME (or set DOPPLER_PROJECT and DOPPLER_CONFIG, or run \
                 `doppler setup` in this directory)"
                    .into(),
            ));
        }

        let host_text = inputs
            .var(env::DOPPLER_API_HOST)
            .map(str::to_string)
            .or_else(|| scoped("api-host").map(|(v, _)| v))
            .unwrap_or_else(|| DEFAULT_API_HOST.to_string());
        let api_host = url::Url::parse(host_text.trim_end_matches('/'))
            .map_err(|_| Error::Config(format!("DOPPLER_API_HOST `{host_text}` is not a URL")))?;
        if http::has_userinfo(&api_host) {
            return Err(Error::Config(format!(
                "DOPPLER_API_HOST `{}` must not carry a user name or password before the host; \
                 remove the `user:password@` part",
                http::without_credentials(&host_text)
            )));
        }
        let host_ok = api_host.scheme() == "https"
            || (api_host.scheme() == "http" && http::is_loopback_url(&api_host));
        if !host_ok {
            return Err(Error::Config(format!(
                "DOPPLER_API_HOST `{host_text}` must use https (plain http only for loopback)"
            )));
        }
        crate::text::conceal(&token);
        Ok(DopplerSettings {
            token: SecretString::from(token),
            token_source,
            project,
            config,
            api_host,
        })
    }

    pub fn token_kind(&self) -> TokenKind {
        TokenKind::of(self.token.expose_secret())
    }

    /// `project/config` for messages, or what the token implies.
    pub fn describe_target(&self) -> String {
        match (&self.project, &self.config) {
            (Some(p), Some(c)) => format!("{p}/{c}"),
            (None, None) => "the project/config of the service token".into(),
            (p, c) => format!(
                "{}/{}",
                p.as_deref().unwrap_or("?"),
                c.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// Reads `DOPPLER_TOKEN_FILE`, refusing one that others may read (as ssh does for keys).
fn read_token_file(path: &Path) -> Result<String> {
    let io = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{} holds a Doppler token but others may read it (mode {:o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    std::fs::read_to_string(path).map_err(io)
}

/// The Doppler CLI's `.doppler.yaml`: only the `scoped` table matters here.
#[derive(Debug)]
struct CliConfig {
    path: PathBuf,
    scoped: BTreeMap<String, BTreeMap<String, String>>,
}

impl CliConfig {
    fn load(inputs: &SettingsInputs) -> Result<Option<CliConfig>> {
        let dir = match inputs.var(env::DOPPLER_CONFIG_DIR) {
            Some(d) => PathBuf::from(d),
            None => match &inputs.home {
                Some(h) => h.join(".doppler"),
                None => return Ok(None),
            },
        };
        let path = dir.join(".doppler.yaml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::ReadFile { path, source }),
        };
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            scoped: BTreeMap<String, BTreeMap<String, serde_yaml_ng::Value>>,
        }
        let file: File = serde_yaml_ng::from_str(&text).map_err(|e| Error::ProviderFile {
            path: path.display().to_string(),
            message: format!("not a Doppler CLI configuration: {e}"),
        })?;
        let scoped = file
            .scoped
            .into_iter()
            .map(|(scope, keys)| {
                let scope = if scope == "*" { "/".to_string() } else { scope };
                let keys = keys
                    .into_iter()
                    .filter_map(|(k, v)| match v {
                        serde_yaml_ng::Value::String(s) => Some((k, s)),
                        serde_yaml_ng::Value::Bool(b) => Some((k, b.to_string())),
                        _ => None,
                    })
                    .collect();
                (scope, keys)
            })
            .collect();
        Ok(Some(CliConfig { path, scoped }))
    }

    /// The value of `key` from the longest scope that contains `cwd` and sets it (each key
    /// resolved on its own, as the Doppler CLI does), with that scope.
    fn get(&self, key: &str, cwd: &Path) -> Option<(String, String)> {
        let cwd = cwd.to_string_lossy();
        self.scoped
            .iter()
            .filter(|(scope, _)| scope_contains(scope, &cwd))
            .filter_map(|(scope, keys)| {
                let v = keys.get(key).filter(|v| !v.is_empty())?;
                Some((scope.len(), v.clone(), scope.clone()))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, v, scope)| (v, scope))
    }
}

/// `/app` contains `/app` and `/app/x`, not `/app2`; `/` contains everything.
fn scope_contains(scope: &str, cwd: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    scope.is_empty() || cwd == scope || cwd.starts_with(&format!("{scope}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(vars: &[(&str, &str)], cwd: &str, home: Option<&Path>) -> SettingsInputs {
        SettingsInputs {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: PathBuf::from(cwd),
            home: home.map(Path::to_path_buf),
            ..Default::default()
        }
    }

    fn write_cli_config(home: &Path, yaml: &str) {
        std::fs::create_dir_all(home.join(".doppler")).unwrap();
        std::fs::write(home.join(".doppler/.doppler.yaml"), yaml).unwrap();
    }

    const YAML: &str = "scoped:\n  /:\n    token: dp.pt.root\n    api-host: http://127.0.0.1:1\n  /app:\n    enclave.project: demo\n    enclave.config: prd\n  /app/sub:\n    token: dp.st.dev.sub\n  /app2:\n    token: dp.pt.app2\n";

    #[test]
    fn token_precedence_env_then_file_then_cli_config() {
        let home = tempfile::tempdir().unwrap();
        write_cli_config(home.path(), YAML);
        let file = home.path().join("tok");
        std::fs::write(&file, "dp.st.prd.fromfile\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let loose = DopplerSettings::resolve(&inputs(
            &[("DOPPLER_TOKEN_FILE", file.to_str().unwrap())],
            "/app",
            Some(home.path()),
        ));
        assert!(loose.unwrap_err().to_string().contains("chmod 600"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = file.to_str().unwrap();

        let s = DopplerSettings::resolve(&inputs(
            &[
                ("DOPPLER_TOKEN", "dp.st.prd.env"),
                ("DOPPLER_TOKEN_FILE", f),
            ],
            "/app",
            Some(home.path()),
        ))
        .unwrap();
        assert_eq!(s.token.expose_secret(), "dp.st.prd.env");
        assert_eq!(s.token_source, TokenSource::Environment);

        let s = DopplerSettings::resolve(&inputs(
            &[("DOPPLER_TOKEN_FILE", f)],
            "/app",
            Some(home.path()),
        ))
        .unwrap();
        assert_eq!(s.token.expose_secret(), "dp.st.prd.fromfile");

        let s = DopplerSettings::resolve(&inputs(&[], "/app", Some(home.path()))).unwrap();
        assert_eq!(s.token.expose_secret(), "dp.pt.root");
        assert!(matches!(s.token_source, TokenSource::CliConfig { ref scope, .. } if scope == "/"));
        assert_eq!(s.project.as_deref(), Some("demo"));
        assert_eq!(s.config.as_deref(), Some("prd"));
        assert_eq!(s.api_host.as_str(), "http://127.0.0.1:1/");
    }

    #[test]
    fn scopes_resolve_each_key_from_the_longest_match_and_respect_path_boundaries() {
        let home = tempfile::tempdir().unwrap();
        write_cli_config(home.path(), YAML);
        // /app/sub: the token comes from /app/sub; it is a service token, so the scoped
        // project/config of /app are not sent with it.
        let s =
            DopplerSettings::resolve(&inputs(&[], "/app/sub/deeper", Some(home.path()))).unwrap();
        assert_eq!(s.token.expose_secret(), "dp.st.dev.sub");
        assert_eq!((s.project, s.config), (None, None));
        // /app2 is not inside /app: its personal token gets no project from /app, and a
        // personal token without a project and config is a configuration error naming the fix.
        let e = DopplerSettings::resolve(&inputs(&[], "/app2", Some(home.path())))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --project NAME --config NAME"), "{e}");
        let vars = [("DOPPLER_PROJECT", "p"), ("DOPPLER_CONFIG", "c")];
        let s = DopplerSettings::resolve(&inputs(&vars, "/app2", Some(home.path()))).unwrap();
        assert_eq!(s.token.expose_secret(), "dp.pt.app2");
    }

    /// Red team R11: `https://user:pw@…` in DOPPLER_API_HOST is refused, password unprinted.
    #[test]
    fn r11_userinfo_in_the_api_host_is_refused_without_printing_it() {
        for host in [
            "https://user:PW-SENTINEL@api.doppler.com",
            "https://api.doppler.com@evil.example",
        ] {
            let vars = [("DOPPLER_TOKEN", "dp.st.dev.x"), ("DOPPLER_API_HOST", host)];
            let e = DopplerSettings::resolve(&inputs(&vars, "/", None))
                .unwrap_err()
                .to_string();
            assert!(e.contains("must not carry a user name or password"), "{e}");
            assert!(
                !e.contains("PW-SENTINEL") && !e.contains("api.doppler.com@"),
                "{e}"
            );
        }
    }

    #[test]
    fn flags_beat_env_beat_cli_config_for_project_and_config() {
        let home = tempfile::tempdir().unwrap();
        write_cli_config(home.path(), YAML);
        let mut i = inputs(
            &[("DOPPLER_PROJECT", "envp"), ("DOPPLER_CONFIG", "envc")],
            "/app",
            Some(home.path()),
        );
        let s = DopplerSettings::resolve(&i).unwrap();
        assert_eq!(
            (s.project.as_deref(), s.config.as_deref()),
            (Some("envp"), Some("envc"))
        );
        i.project_flag = Some("flagp".into());
        let s = DopplerSettings::resolve(&i).unwrap();
        assert_eq!(
            (s.project.as_deref(), s.config.as_deref()),
            (Some("flagp"), Some("envc"))
        );
    }

    #[test]
    fn doppler_config_dir_moves_the_file_and_keyring_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".doppler.yaml"),
            "scoped:\n  '*':\n    token: secret-1234\n",
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        let e = DopplerSettings::resolve(&inputs(&[("DOPPLER_CONFIG_DIR", d)], "/x", None))
            .unwrap_err();
        assert!(matches!(e, Error::DopplerTokenInKeyring), "{e:?}");
        assert!(e.hint().contains("DOPPLER_TOKEN"));
    }

    #[test]
    fn no_token_anywhere() {
        let home = tempfile::tempdir().unwrap();
        let e = DopplerSettings::resolve(&inputs(&[], "/x", Some(home.path()))).unwrap_err();
        assert!(matches!(e, Error::NoDopplerToken));
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn api_host_must_be_https_unless_loopback() {
        let ok = DopplerSettings::resolve(&inputs(
            &[
                ("DOPPLER_TOKEN", "dp.st.x.y"),
                ("DOPPLER_API_HOST", "http://127.0.0.1:5"),
            ],
            "/",
            None,
        ));
        assert!(ok.is_ok());
        let e = DopplerSettings::resolve(&inputs(
            &[
                ("DOPPLER_TOKEN", "dp.st.x.y"),
                ("DOPPLER_API_HOST", "http://doppler.example"),
            ],
            "/",
            None,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("https"));
    }

    #[test]
    fn debug_does_not_show_the_token() {
        let s = DopplerSettings::resolve(&inputs(
            &[("DOPPLER_TOKEN", "dp.st.x.SENTINELVALUE")],
            "/",
            None,
        ))
        .unwrap();
        assert!(!format!("{s:?}").contains("SENTINELVALUE"));
    }

    #[test]
    fn token_kinds() {
        assert_eq!(TokenKind::of("dp.st.prd.x"), TokenKind::Service);
        assert_eq!(TokenKind::of("dp.pt.x"), TokenKind::Personal);
        assert_eq!(TokenKind::of("dp.ct.x"), TokenKind::Cli);
        assert_eq!(TokenKind::of("dp.sa.x"), TokenKind::ServiceAccount);
    }
}
