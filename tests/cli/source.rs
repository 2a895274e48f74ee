//! The library's `TokenSource`, driven in-process against the same fakes: cached tokens,
//! one refresh for many concurrent tasks, and a forced refresh after a 401.

use std::sync::Arc;

use oauth_pkce::Catalog;
use oauth_pkce::{Context, TokenSource};
use oauth_pkce::{DopplerSettings, SettingsInputs};
use secrecy::{ExposeSecret as _, SecretString};

use crate::support::fake_as::AsConfig;
use crate::support::Harness;

fn source(h: &Harness) -> Arc<TokenSource> {
    let inputs = SettingsInputs {
        vars: [
            ("DOPPLER_TOKEN", h.token.as_str()),
            ("DOPPLER_API_HOST", &h.doppler.url()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        cwd: h.home.path().to_path_buf(),
        home: Some(h.home.path().to_path_buf()),
        ..Default::default()
    };
    let catalog = Catalog::load(Some(&h.providers_dir()), &[]).unwrap();
    let http = oauth_pkce::Http::with_network(&Default::default()).unwrap();
    let ctx = Context::new(
        http,
        DopplerSettings::resolve(&inputs).unwrap(),
        catalog.get("acme").unwrap().clone(),
        oauth_pkce::StateDir::at(h.state_dir()),
    );
    Arc::new(TokenSource::new(ctx))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn concurrent_tasks_share_one_refresh_and_then_the_cache() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(60);
    let source = source(&h);
    let tokens: Vec<String> = runtime().block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&source);
                tokio::spawn(
                    async move { s.access_token().await.unwrap().expose_secret().to_string() },
                )
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(h.auth.refreshes(), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(tokens[0], h.secret("ACME_ACCESS_TOKEN").unwrap());
    let reads = h.doppler.reads();
    runtime().block_on(async { source.access_token().await.unwrap() });
    assert_eq!(
        h.doppler.reads(),
        reads,
        "a fresh cached token costs no request"
    );
}

#[test]
fn a_401_forces_exactly_one_refresh() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let source = source(&h);
    let rt = runtime();
    let first = rt.block_on(source.access_token()).unwrap();
    assert_eq!(first.expose_secret(), at);
    let rejected = SecretString::from(at.clone());
    let second = rt
        .block_on(source.refresh_after_unauthorized(&rejected))
        .unwrap();
    assert_ne!(second.expose_secret(), at);
    assert_eq!(h.auth.refreshes(), 1);
    // Another task that saw the same 401 gets the new token without a second refresh.
    let third = rt
        .block_on(source.refresh_after_unauthorized(&rejected))
        .unwrap();
    assert_eq!(third.expose_secret(), second.expose_secret());
    assert_eq!(h.auth.refreshes(), 1);
}

#[test]
fn the_background_refresher_refreshes_ahead_of_expiry() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(302); // enters the 300 s buffer in ~2 s
    let source = source(&h);
    let rt = runtime();
    rt.block_on(async {
        let handle = source.spawn_refresher();
        for _ in 0..100 {
            if h.auth.refreshes() > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        handle.abort();
    });
    assert_eq!(h.auth.refreshes(), 1);
}
