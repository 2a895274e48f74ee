//! Which store keeps the tokens: `--store doppler|vault`, else `OAUTH_PKCE_STORE`, else
//! Doppler.

use super::Store;
use crate::doppler::{Doppler, DopplerSettings, SettingsInputs};
use crate::env;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::vault::{Vault, VaultSettings};

/// The chosen store's resolved settings.
#[derive(Clone, Debug)]
pub enum StoreSettings {
    Doppler(DopplerSettings),
    Vault(VaultSettings),
}

impl StoreSettings {
    /// Resolves the store named by `inputs.store_flag`, else `OAUTH_PKCE_STORE`, else Doppler.
    pub fn resolve(inputs: &SettingsInputs) -> Result<StoreSettings> {
        match chosen(inputs)? {
            Chosen::Doppler => DopplerSettings::resolve(inputs).map(StoreSettings::Doppler),
            Chosen::Vault => VaultSettings::resolve(inputs).map(StoreSettings::Vault),
        }
    }

    /// The store, sending through `http`.
    pub fn into_store(self, http: Http) -> Store {
        match self {
            StoreSettings::Doppler(s) => Store::Doppler(Doppler::new(http, s)),
            StoreSettings::Vault(s) => Store::Vault(Vault::new(http, s)),
        }
    }
}

/// `VAULT_CACERT`, when the Vault store is chosen: a CA file the run's one HTTP client trusts
/// besides the others.
pub fn vault_ca_file(inputs: &SettingsInputs) -> Option<std::path::PathBuf> {
    (chosen(inputs).ok()? == Chosen::Vault)
        .then(|| inputs.vars.get(env::VAULT_CACERT))
        .flatten()
        .filter(|v| !v.trim().is_empty())
        .map(std::path::PathBuf::from)
}

/// The store asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    Doppler,
    Vault,
}

/// Which store `inputs` asks for (a usage error for an unknown name).
pub fn chosen(inputs: &SettingsInputs) -> Result<Chosen> {
    let from_env = inputs
        .vars
        .get(env::OAUTH_PKCE_STORE)
        .filter(|v| !v.trim().is_empty());
    let (name, source) = match (&inputs.store_flag, from_env) {
        (Some(flag), _) => (flag.as_str(), "--store"),
        (None, Some(var)) => (var.as_str(), env::OAUTH_PKCE_STORE),
        (None, None) => return Ok(Chosen::Doppler),
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "doppler" => Ok(Chosen::Doppler),
        "vault" | "openbao" | "bao" => Ok(Chosen::Vault),
        other => Err(Error::Usage(format!(
            "{source} `{}` is not a store: use `doppler` or `vault` (Vault and OpenBao)",
            crate::text::terminal_safe(other, 40)
        ))),
    }
}
