//! The catalog: the built-in presets compiled into the binary, then the user's files, later
//! ones overriding earlier ones with the same `name`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Provider;
use crate::error::{Error, Result};

/// The presets shipped in `providers/`, as (file name, contents).
pub(super) const BUILTIN: &[(&str, &str)] = &[
    (
        "atlassian.toml",
        include_str!("../../providers/atlassian.toml"),
    ),
    ("box.toml", include_str!("../../providers/box.toml")),
    ("discord.toml", include_str!("../../providers/discord.toml")),
    ("dropbox.toml", include_str!("../../providers/dropbox.toml")),
    ("github.toml", include_str!("../../providers/github.toml")),
    ("gitlab.toml", include_str!("../../providers/gitlab.toml")),
    ("google.toml", include_str!("../../providers/google.toml")),
    ("hubspot.toml", include_str!("../../providers/hubspot.toml")),
    ("jobber.toml", include_str!("../../providers/jobber.toml")),
    ("linear.toml", include_str!("../../providers/linear.toml")),
    (
        "microsoft.toml",
        include_str!("../../providers/microsoft.toml"),
    ),
    ("notion.toml", include_str!("../../providers/notion.toml")),
    (
        "quickbooks-sandbox.toml",
        include_str!("../../providers/quickbooks-sandbox.toml"),
    ),
    (
        "quickbooks.toml",
        include_str!("../../providers/quickbooks.toml"),
    ),
    (
        "salesforce.toml",
        include_str!("../../providers/salesforce.toml"),
    ),
    ("slack.toml", include_str!("../../providers/slack.toml")),
    ("spotify.toml", include_str!("../../providers/spotify.toml")),
    ("stripe.toml", include_str!("../../providers/stripe.toml")),
    ("twitch.toml", include_str!("../../providers/twitch.toml")),
    ("xero.toml", include_str!("../../providers/xero.toml")),
    ("zoom.toml", include_str!("../../providers/zoom.toml")),
];

/// The user's provider directory: `$OAUTH_PKCE_PROVIDERS_DIR`, else `oauth-pkce/providers` in
/// the user's config dir.
pub(crate) fn user_dir() -> Option<PathBuf> {
    std::env::var_os(crate::env::OAUTH_PKCE_PROVIDERS_DIR)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(default_user_dir)
}

/// The user's providers directory when `OAUTH_PKCE_PROVIDERS_DIR` is not set.
pub fn default_user_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("oauth-pkce").join("providers"))
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
            catalog.insert(parse_builtin(file, text)?);
        }
        catalog.add_user_files(dir, files)?;
        let named = |p: &Provider| (p.name.clone(), p.source.clone(), p.secret_prefix.clone());
        shared_secrets(catalog.iter().map(named))?;
        shared_git_hosts(&catalog)?;
        Ok(catalog)
    }

    fn add_user_files(&mut self, dir: Option<&Path>, files: &[PathBuf]) -> Result<()> {
        if let Some(dir) = dir {
            if let Ok(meta) = std::fs::metadata(dir) {
                trust(dir, &meta, "providers directory")?;
            }
            for path in toml_files_in(dir)? {
                self.insert(load_file(&path)?);
            }
        }
        for path in files {
            self.insert(load_file(path)?);
        }
        Ok(())
    }

    /// Only the provider called `name`: the user's files are read (they may override it), but
    /// of the built-ins only `{name}.toml` is parsed. What a command with `--provider` needs.
    /// Names match whatever their case (`JOBBER` is `jobber`).
    pub fn find(dir: Option<&Path>, files: &[PathBuf], name: &str) -> Result<Provider> {
        let name = name.to_ascii_lowercase();
        let name = name.as_str();
        let mut user = Catalog::default();
        user.add_user_files(dir, files)?;
        if !user.providers.is_empty() {
            // The built-ins' prefixes by a line scan, not a parse: `find` stays cheap.
            let builtins = BUILTIN.iter().filter_map(|(file, text)| {
                let name = file.trim_end_matches(".toml");
                (!user.providers.contains_key(name)).then(|| {
                    let source = format!("built-in providers/{file}");
                    (name.to_string(), source, builtin_prefix(text).to_string())
                })
            });
            let users = user
                .iter()
                .map(|p| (p.name.clone(), p.source.clone(), p.secret_prefix.clone()));
            shared_secrets(builtins.chain(users))?;
        }
        if let Some(p) = user.providers.remove(name) {
            return Ok(p);
        }
        match BUILTIN
            .iter()
            .find(|(file, _)| file.strip_suffix(".toml") == Some(name))
        {
            Some((file, text)) => parse_builtin(file, text),
            None => {
                let mut known: Vec<String> = BUILTIN
                    .iter()
                    .map(|(f, _)| f.trim_end_matches(".toml").to_string())
                    .chain(user.providers.into_keys())
                    .collect();
                known.sort();
                known.dedup();
                Err(Error::UnknownProvider {
                    name: name.to_string(),
                    known,
                })
            }
        }
    }

    fn insert(&mut self, provider: Provider) {
        self.providers.insert(provider.name.clone(), provider);
    }

    /// The provider called `name` (whatever its case), or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Provider> {
        self.providers
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| Error::UnknownProvider {
                name: name.to_string(),
                known: self.providers.keys().cloned().collect(),
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

/// Two providers with one `secret_prefix` would share one grant's secrets: one refresh token
/// refreshed twice (spent once: a rotating provider revokes the grant), or sent to the other's
/// server. Refused, naming both. `providers` is (name, source, prefix), later ones the user's.
/// Prefixes clash also when one's names are another's under a longer prefix (`P` and
/// `P_REFRESH` both name `P_REFRESH_TOKEN_EXPIRES_AT`), so the secrets' names are compared.
fn shared_secrets(providers: impl Iterator<Item = (String, String, String)>) -> Result<()> {
    // Secret name → (provider, source, prefix) of the first to use it.
    let mut seen: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for (name, source, prefix) in providers {
        for suffix in crate::store::SUFFIXES {
            let secret = format!("{prefix}_{suffix}");
            if let Some((other, other_source, theirs)) = seen.get(&secret) {
                let why = if *theirs == prefix {
                    format!("`{prefix}` is also provider `{other}`'s ({other_source})")
                } else {
                    format!(
                        "`{prefix}` and provider `{other}`'s `{theirs}` ({other_source}) both \
                         name {secret}"
                    )
                };
                return Err(Error::ProviderFile {
                    path: source,
                    message: format!(
                        "key `secret_prefix`: {why}, so the two would share one grant's \
                         secrets; give `{name}` its own secret_prefix"
                    ),
                });
            }
        }
        for suffix in crate::store::SUFFIXES {
            let value = (name.clone(), source.clone(), prefix.clone());
            seen.insert(format!("{prefix}_{suffix}"), value);
        }
    }
    Ok(())
}

/// A host in two providers' `git_hosts`: git would get whichever comes first by name.
fn shared_git_hosts(catalog: &Catalog) -> Result<()> {
    let mut seen: BTreeMap<String, &Provider> = BTreeMap::new();
    for p in catalog.iter() {
        for host in &p.git_hosts {
            if let Some(other) = seen.insert(host.to_ascii_lowercase(), p) {
                let (mine, theirs) = if p.overrides_builtin || !is_builtin(&p.name) {
                    (p, other)
                } else {
                    (other, p)
                };
                return Err(Error::ProviderFile {
                    path: mine.source.clone(),
                    message: format!(
                        "key `git_hosts`: `{host}` is also provider `{}`'s ({}); a host can \
                         belong to one provider only",
                        theirs.name, theirs.source
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A built-in's `secret_prefix`, read off its `secret_prefix = "…"` line.
fn builtin_prefix(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("secret_prefix = \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
}

fn is_builtin(name: &str) -> bool {
    BUILTIN
        .iter()
        .any(|(file, _)| file.strip_suffix(".toml") == Some(name))
}

fn parse_builtin(file: &str, text: &str) -> Result<Provider> {
    Provider::parse(text, &format!("built-in providers/{file}"))
}

/// A provider file or directory must belong to this user (or root) and be writable by no one
/// else: whoever can change it decides where the refresh token and client secret are sent.
fn trust(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    match crate::state::untrusted(meta) {
        None => Ok(()),
        Some(why) => Err(Error::ProviderFile {
            path: path.display().to_string(),
            message: format!(
                "this {what} {why}, so it could send your tokens anywhere; refusing it \
                 (make it yours: `chmod go-w {}`, or move it away)",
                path.display()
            ),
        }),
    }
}

fn load_file(path: &Path) -> Result<Provider> {
    let read = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    trust(path, &meta, "provider file")?;
    let text = std::fs::read_to_string(path).map_err(read)?;
    let mut provider = Provider::parse(&text, &path.display().to_string())?;
    provider.overrides_builtin = is_builtin(&provider.name);
    Ok(provider)
}

pub(super) fn toml_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
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
mod tests;
