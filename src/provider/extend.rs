//! `extends = "jobber"`: a user's file that changes a few keys of a built-in preset instead of
//! copying all of it (a newer API version header, one more scope). Its keys replace the
//! preset's; tables (`[check]`, `[check.headers]`, `[authorization_params]`) are merged key by
//! key. Without a `name`, the file keeps the preset's and so replaces it.

use super::catalog::BUILTIN;
use crate::error::{Error, Result};

/// The definition a file that `extends` a preset stands for, or `None` for a file that does
/// not (or is not TOML at all: the plain parse reports that).
pub(super) fn merged(text: &str, origin: &str) -> Result<Option<toml::Table>> {
    let Ok(mut table) = text.parse::<toml::Table>() else {
        return Ok(None);
    };
    let Some(extends) = table.remove("extends") else {
        return Ok(None);
    };
    let bad = |message: String| Error::ProviderFile {
        path: origin.to_string(),
        message,
    };
    let name = extends.as_str().ok_or_else(|| {
        bad("key `extends`: must be the name of a built-in provider, e.g. \"jobber\"".into())
    })?;
    let (_, preset) = BUILTIN
        .iter()
        .find(|(file, _)| file.strip_suffix(".toml") == Some(name))
        .ok_or_else(|| {
            bad(format!(
                "key `extends`: `{name}` is not a built-in provider (`oauth-pkce providers` \
                 lists them; a file can extend only those)"
            ))
        })?;
    let mut base: toml::Table = preset
        .parse()
        .expect("the built-in presets are valid TOML (tested)");
    // Under another name, the preset's secret names would be shared with it: one grant
    // refreshed for two providers, and the preset's refresh token sent to this file's server.
    let renamed = table.get("name").is_some_and(|n| n.as_str() != Some(name));
    if renamed && !table.contains_key("secret_prefix") {
        return Err(bad(format!(
            "key `secret_prefix`: a file that extends `{name}` under another name needs its own \
             (else both use {}_* secrets)",
            base.get("secret_prefix")
                .and_then(|p| p.as_str())
                .unwrap_or("the same")
        )));
    }
    // Another authorization server: the preset's other endpoints belong to the old one, and
    // would receive this server's tokens. They are kept only if the file names them again.
    let moved: Vec<&str> = ["authorization_url", "token_url"]
        .into_iter()
        .filter(|k| table.contains_key(*k))
        .collect();
    if moved.len() == 1 {
        let (given, missing) = match moved[0] {
            "token_url" => ("token_url", "authorization_url"),
            _ => ("authorization_url", "token_url"),
        };
        return Err(bad(format!(
            "key `{missing}`: a file that extends `{name}` with its own `{given}` names \
             `{missing}` too (the preset's endpoints belong to its own server)"
        )));
    }
    if !moved.is_empty() {
        for key in SERVER_BOUND {
            base.remove(*key);
        }
    }
    merge(&mut base, table, false);
    Ok(Some(base))
}

/// The user's key whose value the preset cannot take (a string where a boolean goes): the
/// merged table carries no positions, so each key is tried alone over the preset.
pub(super) fn culprit(text: &str) -> Option<String> {
    let mut table = text.parse::<toml::Table>().ok()?;
    let name = table.remove("extends")?;
    let (_, preset) = BUILTIN
        .iter()
        .find(|(file, _)| file.strip_suffix(".toml") == name.as_str())?;
    let base: toml::Table = preset.parse().ok()?;
    table.into_iter().find_map(|(key, value)| {
        let mut one = base.clone();
        merge(
            &mut one,
            toml::Table::from_iter([(key.clone(), value)]),
            false,
        );
        toml::Value::Table(one)
            .try_into::<super::Provider>()
            .is_err()
            .then_some(key)
    })
}

/// The preset's keys that name its authorization server's other endpoints, trust it, or
/// hand its tokens to someone (`git_hosts`: git would send the new server's token to the
/// preset's host), or describe it.
const SERVER_BOUND: &[&str] = &[
    "authorization_url",
    "token_url",
    "revocation_url",
    "device_authorization_url",
    "issuer",
    "require_iss",
    "api_base_url",
    "check",
    "git_hosts",
    "git_username",
    "limitations",
    "loopback_unsupported",
];

/// `from` over `into`, tables merged key by key. In header tables (`headers`,
/// `token_headers`) names match whatever their case, as HTTP's do.
fn merge(into: &mut toml::Table, from: toml::Table, headers: bool) {
    for (key, value) in from {
        if headers {
            into.retain(|k, _| !k.eq_ignore_ascii_case(&key));
        }
        let is_headers = key == "headers" || key == "token_headers";
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs)) => {
                merge(mine, theirs, is_headers)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}
