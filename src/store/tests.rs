//! The store vocabulary: each write's preconditions, free leases, snapshots.

use super::*;

#[test]
fn a_stored_token_with_control_characters_is_not_a_token() {
    let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
    let secrets = [
        ("JOBBER_ACCESS_TOKEN", "tok\u{1b}]52;c;x\u{7}"),
        ("JOBBER_REFRESH_TOKEN", "rt-ok"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), SecretString::from(v)))
    .collect();
    let stored = Stored::new(&provider, secrets);
    assert!(
        !format!("{stored:?}").contains("rt-ok"),
        "Debug shows names only"
    );
    assert!(stored.access_token().is_none());
    assert_eq!(stored.refresh_token().unwrap().expose_secret(), "rt-ok");
}

fn tokens(refresh: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: SecretString::from("at-new"),
        refresh_token: refresh.map(SecretString::from),
        expires_at: Some(100),
        expiry_source: crate::token::ExpirySource::ExpiresIn,
        refresh_expires_at: None,
        warning: None,
    }
}

/// Each change as (name, value, precondition, exists); a free lease value (a fresh
/// nonce each time) shows as `FREE`.
fn originals(changes: &[Change]) -> Vec<(&str, &str, Option<&str>, bool)> {
    changes
        .iter()
        .map(|c| {
            let value = c.value.expose_secret();
            let free = value.starts_with(r#"{"free":""#) && value.len() == 27;
            (
                c.name.as_str(),
                if free { "FREE" } else { value },
                c.original.as_ref().map(|o| o.expose_secret()),
                c.exists,
            )
        })
        .collect()
}

fn read(pairs: &[(&str, &str)]) -> Stored {
    let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
    let secrets = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(*v)))
        .collect();
    Stored::new(&provider, secrets)
}

#[test]
fn each_write_carries_exactly_its_compare_and_swap_preconditions() {
    let provider = crate::provider::Catalog::find(None, &[], "jobber").unwrap();
    let held = r#"{"owner":"h:1:ab","until":5}"#;
    let snapshot = read(&[
        ("JOBBER_REFRESH_TOKEN", "rt-old"),
        ("JOBBER_REFRESH_LEASE", held),
    ]);

    // A new grant without a refresh token drops the old one, unconditionally, and writes
    // the lease free (never empty).
    let grant = tokens(None);
    assert_eq!(
        originals(&snapshot.changes(Write::NewGrant(&grant))),
        [
            ("JOBBER_REFRESH_TOKEN", "", None, true),
            ("JOBBER_ACCESS_TOKEN", "at-new", None, false),
            ("JOBBER_TOKEN_EXPIRES_AT", "100", None, false),
            ("JOBBER_REFRESH_LEASE", "FREE", None, true),
        ]
    );
    // Taking the lease compares the lease as read, first, and the refresh token.
    let rt = SecretString::from("rt-old");
    let take = Write::LeaseTaken {
        lease: "L",
        refresh_token: &rt,
    };
    assert_eq!(
        originals(&snapshot.changes(take)),
        [
            ("JOBBER_REFRESH_LEASE", "L", Some(held), true),
            ("JOBBER_REFRESH_TOKEN", "rt-old", Some("rt-old"), true),
        ]
    );
    // A replayed rotation has not read anything: every secret is taken to exist; the spent
    // refresh token is compared first, and our lease is freed only while it is ours.
    let rotated = tokens(Some("rt-new"));
    let replay = Write::Rotation {
        tokens: &rotated,
        spent: &rt,
        lease: Some("L"),
    };
    assert_eq!(
        originals(&Stored::unread(&provider).changes(replay)),
        [
            ("JOBBER_REFRESH_TOKEN", "rt-new", Some("rt-old"), true),
            ("JOBBER_ACCESS_TOKEN", "at-new", None, true),
            ("JOBBER_TOKEN_EXPIRES_AT", "100", None, true),
            ("JOBBER_REFRESH_LEASE", "FREE", Some("L"), true),
        ]
    );
    // An empty or absent lease is made free: created where absent.
    assert_eq!(
        originals(&read(&[]).changes(Write::LeaseFreed)),
        [("JOBBER_REFRESH_LEASE", "FREE", None, false)]
    );
    let empty = read(&[("JOBBER_REFRESH_LEASE", "")]);
    assert_eq!(
        originals(&empty.changes(Write::LeaseFreed)),
        [("JOBBER_REFRESH_LEASE", "FREE", Some(""), true)]
    );
}

#[test]
fn every_free_lease_is_a_fresh_nonce() {
    let released = |_| {
        let c = read(&[]).changes(Write::LeaseReleased("L"));
        c[0].value.expose_secret().to_string()
    };
    let values: std::collections::HashSet<String> = (0..50).map(released).collect();
    assert_eq!(values.len(), 50);
}
