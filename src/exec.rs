//! The tokens `exec` hands to its command: each provider's token obtained exactly as `token`
//! obtains it ([`crate::refresh::obtain`] through [`crate::TokenSource`]: refreshed first when
//! it expires within the buffer), named `{PREFIX}_ACCESS_TOKEN`. Starting the command, its
//! environment and signals are the binary's (`src/cli/exec.rs`).

use std::collections::BTreeMap;

use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::{Context, Reporter, TokenSource};

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
    let mut vars: BTreeMap<String, (String, SecretString)> = BTreeMap::new();
    for ctx in contexts {
        let name = ctx.provider.secret_name(crate::store::ACCESS_TOKEN);
        let provider = ctx.provider.name.clone();
        match vars.get(&name) {
            Some((other, _)) if *other == provider => continue,
            Some((other, _)) => {
                return Err(Error::Usage(format!(
                    "--provider {other} and --provider {provider} would both set {name} (the same secret_prefix)"
                )))
            }
            None => {}
        }
        let source = TokenSource::new(ctx).with_reporter(reporter());
        let token = source.access_token().await?;
        vars.insert(name, (provider, token));
    }
    Ok(TokenEnv(
        vars.into_iter().map(|(k, (_, t))| (k, t)).collect(),
    ))
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
