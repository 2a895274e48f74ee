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
    merge(&mut base, table);
    Ok(Some(base))
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs)) => merge(mine, theirs),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}
