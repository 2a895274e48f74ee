//! The tokens `exec` hands to its command: each provider's token obtained exactly as `token`
//! obtains it (refreshed first when it expires within the buffer; the providers this machine's
//! cache does not serve are read in one request), named `{PREFIX}_ACCESS_TOKEN`. Starting the command, its
//! environment and signals are the binary's (`src/cli/exec.rs`).

use std::collections::BTreeMap;

use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::refresh::{self, Fresh};
use crate::{Context, Reporter};

/// The variables added to the command's environment: `{PREFIX}_ACCESS_TOKEN` per provider.
pub struct TokenEnv(BTreeMap<String, SecretString>);

impl std::fmt::Debug for TokenEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl TokenEnv {
    /// The variable names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Each variable with its token.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A valid access token for each context's provider, refreshed first where due. Two
/// providers that would set the same variable are a usage error (the same provider twice is
/// asked once).
pub async fn token_env(
    contexts: Vec<Context>,
    reporter: &dyn Fn() -> Box<dyn Reporter>,
) -> Result<TokenEnv> {
    let mut wanted: Vec<(String, Context)> = Vec::new();
    for ctx in contexts {
        let name = ctx.provider.secret_name(crate::store::ACCESS_TOKEN);
        match wanted.iter().find(|(n, _)| *n == name) {
            Some((_, other)) if other.provider.name == ctx.provider.name => continue,
            Some((_, other)) => {
                return Err(Error::Usage(format!(
                "--provider {} and --provider {} would both set {name} (the same secret_prefix)",
                other.provider.name, ctx.provider.name
            )))
            }
            None => wanted.push((name, ctx)),
        }
    }
    // What this machine's cache serves costs nothing; the rest is read in one request, not
    // one per provider. Should that read fail, each provider goes its own way (and a cached
    // token may then bridge an outage), as `token` would.
    let cached: Vec<Option<Fresh>> = wanted.iter().map(|(_, ctx)| refresh::cached(ctx)).collect();
    let unread: Vec<&Provider> = wanted
        .iter()
        .zip(&cached)
        .filter(|(_, c)| c.is_none())
        .map(|((_, ctx), _)| &ctx.provider)
        .collect();
    let mut snapshots = match (unread.len() > 1, wanted.first()) {
        (true, Some((_, ctx))) => ctx.store.load_each(&unread).await.ok(),
        _ => None,
    }
    .map(|s| s.into_iter());
    let mut vars = BTreeMap::new();
    for ((name, ctx), cached) in wanted.into_iter().zip(cached) {
        let fresh = match cached {
            Some(fresh) => fresh,
            None => match snapshots.as_mut().and_then(Iterator::next) {
                Some(first) => refresh::token_from(&ctx, first, reporter().as_ref()).await?,
                None => refresh::token(&ctx, reporter().as_ref()).await?,
            },
        };
        vars.insert(name, fresh.access_token);
    }
    Ok(TokenEnv(vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_only() {
        let env = TokenEnv(BTreeMap::from([(
            "ACME_ACCESS_TOKEN".to_string(),
            SecretString::from("AT-SENTINEL"),
        )]));
        let d = format!("{env:?}");
        assert!(
            d.contains("ACME_ACCESS_TOKEN") && !d.contains("SENTINEL"),
            "{d}"
        );
    }
}
