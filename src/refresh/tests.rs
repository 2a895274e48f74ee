//! The refresh protocol's pure parts: due times, the lease-bounded wait, the cache rules.

use super::*;
use crate::cache::{Cache, Entry};

#[test]
fn due_within_buffer_only() {
    assert!(refresh_due(Some(now() + 100), 300));
    assert!(refresh_due(Some(now() - 10), 300));
    assert!(!refresh_due(Some(now() + 1000), 300));
    assert!(!refresh_due(None, 300));
}

/// The token answer, then the store write (30 s at most), end before the lease does, with
/// a margin; a refresh started with a whole lease waits the grant's full 60 s.
#[test]
fn the_token_answer_is_awaited_only_as_long_as_the_lease_allows() {
    use std::time::Duration;
    let secs = |left| grant_limit(left).as_secs() as i64;
    assert_eq!(grant_limit(lease::LEASE_SECONDS), Duration::from_secs(60));
    for left in [lease::MIN_LEFT, 60, 90, 95, 100] {
        let limit = secs(left);
        assert!(limit >= 10, "{left}: {limit}");
        assert!(
            limit + 30 + lease::STORE_CLOCK_MARGIN <= left,
            "{left}: {limit}"
        );
    }
    assert_eq!(
        secs(90),
        55,
        "a lease write that took its whole 30 s budget"
    );
}

/// A process that read the store before this machine cached a newer token (a sign-in, a
/// refresh) does not put the older one back.
#[test]
fn a_token_read_earlier_does_not_replace_a_newer_cached_one() {
    let dir = tempfile::tempdir().unwrap();
    let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
    let key = crate::state::Key::new("jobber", &["h", "p", "c"], None);
    let cache = Cache::new(
        &crate::state::StateDir::at(dir.path()),
        &key,
        &SecretString::from("dp.st.FAKE"),
    );
    let newer = now() + 3600;
    cache.save(&Entry {
        access_token: SecretString::from("AT-FAKE-new"),
        expires_at: newer,
        skew: 0,
    });
    let stored = |at: &str, expires: i64| {
        let secrets = [
            ("JOBBER_ACCESS_TOKEN", at.to_string()),
            ("JOBBER_TOKEN_EXPIRES_AT", expires.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v)))
        .collect();
        crate::store::Stored::new(&provider, secrets)
    };
    let fresh = |at: &str| Fresh {
        access_token: SecretString::from(at.to_string()),
        expires_at: None,
        refreshed: false,
    };
    remember(
        Some(&cache),
        &stored("AT-FAKE-old", now() + 600),
        &fresh("AT-FAKE-old"),
    );
    assert_eq!(
        cache.load().unwrap().access_token.expose_secret(),
        "AT-FAKE-new"
    );
    // A later one does replace it.
    remember(
        Some(&cache),
        &stored("AT-FAKE-next", newer + 60),
        &fresh("AT-FAKE-next"),
    );
    assert_eq!(
        cache.load().unwrap().access_token.expose_secret(),
        "AT-FAKE-next"
    );
}

#[test]
fn debug_of_fresh_is_redacted() {
    let f = Fresh {
        access_token: SecretString::from("AT-SENTINEL-123456789"),
        expires_at: Some(1),
        refreshed: true,
    };
    assert!(!format!("{f:?}").contains("SENTINEL"));
}
