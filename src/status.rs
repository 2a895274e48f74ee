//! `status`: what Doppler holds for one provider or for every provider that has anything
//! stored, read in one request, reported with tokens masked.

use serde::Serialize;

use crate::doppler::Doppler;
use crate::error::Result;
use crate::provider::{Catalog, Provider};
use crate::refresh::refresh_due;
use crate::store::{secret_names, Stored, CLIENT_ID};
use crate::text::mask;
use crate::token::now;

/// One provider's state, safe to print (tokens masked).
#[derive(Debug, Serialize)]
pub struct ProviderStatus {
    pub provider: String,
    pub display_name: String,
    pub client_id_present: bool,
    /// The access token masked (first and last 4 characters at most), if present.
    pub access_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Seconds until expiry (negative once expired).
    pub expires_in: Option<i64>,
    pub refresh_token_present: bool,
    /// The access token expires within the refresh buffer.
    pub refresh_due: bool,
    /// A token can be had now: the access token is valid, or a refresh token can get one.
    pub usable: bool,
}

impl ProviderStatus {
    fn of(provider: &Provider, stored: &Stored, buffer: i64) -> ProviderStatus {
        let expires_at = stored.expires_at();
        let access = stored.access_token();
        let refresh_present = stored.refresh_token().is_some();
        let valid_now = access.is_some() && expires_at.is_none_or(|e| e > now());
        ProviderStatus {
            provider: provider.name.clone(),
            display_name: provider.display_name.clone(),
            client_id_present: stored.get(CLIENT_ID).is_some(),
            access_token: access.map(|a| mask(secrecy::ExposeSecret::expose_secret(a))),
            expires_at,
            expires_in: expires_at.map(|e| e - now()),
            refresh_token_present: refresh_present,
            refresh_due: access.is_some() && refresh_due(expires_at, buffer),
            usable: valid_now || refresh_present,
        }
    }
}

/// Status of `provider`, in one Doppler read.
pub async fn status_of(
    doppler: &Doppler,
    provider: &Provider,
    buffer: i64,
) -> Result<ProviderStatus> {
    let stored = Stored::load(doppler, provider).await?;
    Ok(ProviderStatus::of(provider, &stored, buffer))
}

/// Status of every provider in `catalog` that has anything stored, in one Doppler read.
pub async fn status_all(
    doppler: &Doppler,
    catalog: &Catalog,
    buffer: i64,
) -> Result<Vec<ProviderStatus>> {
    let names: Vec<String> = catalog.iter().flat_map(secret_names).collect();
    let secrets = doppler.read(&names).await?;
    Ok(catalog
        .iter()
        .filter_map(|p| {
            let own = secret_names(p);
            let subset = secrets
                .iter()
                .filter(|(k, _)| own.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let stored = Stored::new(p, subset);
            stored
                .has_anything()
                .then(|| ProviderStatus::of(p, &stored, buffer))
        })
        .collect())
}
