//! Vault's side of the seam. A write takes the same [`Change`]s as Doppler's — each with its
//! per-secret precondition — and applies them all or none: the preconditions are checked
//! against the secret as read, and the whole new secret is written with `cas` = the version
//! read, so nothing can land between the check and the write. When the secret moved
//! meanwhile, it is re-read and checked again (at most [`ATTEMPTS`] times): a precondition
//! that no longer holds is a lost race, answered as Doppler answers one — an echo that does
//! not hold the change. Keys of the secret that are not oauth-pkce's are kept.

use secrecy::ExposeSecret as _;

use super::{Change, Clock, Echo, Secrets, Stored, Write};
use crate::error::{DopplerFailure, Error, Result};
use crate::provider::Provider;
use crate::vault::{Cas, Read, Vault};

/// Check-and-set writes tried before a moving secret is reported as a lost race.
const ATTEMPTS: usize = 3;

pub(super) async fn load(v: &Vault, provider: &Provider) -> Result<Stored> {
    let read = v.read(&provider.name).await?;
    if read.version == 0 {
        // Nothing there: a KV version 1 mount reads like that too, so ask what the mount is
        // (one request more, only while nothing is stored).
        v.check_mount().await?;
    }
    Ok(snapshot(v, provider, read))
}

/// Several providers: one LIST names those with a secret, then one read each of those (each
/// provider without one is an empty snapshot at version 0, which a write can only create).
pub(super) async fn load_each(v: &Vault, providers: &[&Provider]) -> Result<Vec<Stored>> {
    let listed = match providers {
        [_] => None,
        _ => v.list().await?,
    };
    if listed.as_ref().is_some_and(Vec::is_empty) {
        v.check_mount().await?;
    }
    let mut each = Vec::with_capacity(providers.len());
    for p in providers {
        let stored = match &listed {
            Some(names) if !names.contains(&p.name) => snapshot(
                v,
                p,
                Read {
                    data: Secrets::new(),
                    version: 0,
                    server_time: None,
                },
            ),
            _ => load(v, p).await?,
        };
        each.push(stored);
    }
    Ok(each)
}

fn snapshot(v: &Vault, provider: &Provider, read: Read) -> Stored {
    let mut stored = Stored::new(provider, read.data);
    stored.store = v.kind(Some(&provider.name));
    stored.version = Some(read.version);
    stored.at(Clock::of(read.server_time))
}

pub(super) async fn write(v: &Vault, snapshot: &Stored, write: Write<'_>) -> Result<Echo> {
    let provider = snapshot.provider.as_str();
    let echo = |secrets: Secrets, version: u64| Echo {
        secrets,
        prefix: snapshot.prefix.clone(),
        version: Some(version),
    };
    if let Write::Probe = write {
        probe(v, snapshot).await?;
        return Ok(echo(
            snapshot.secrets.clone(),
            snapshot.version.unwrap_or(0),
        ));
    }
    let changes = snapshot.changes(write);
    let (mut data, mut version) = match (snapshot.assumed, snapshot.version) {
        (false, Some(version)) => (snapshot.secrets.clone(), version),
        // A snapshot that was not read (a journal's replay): read the version to name.
        _ => {
            let read = v.read(provider).await?;
            (read.data, read.version)
        }
    };
    for _ in 0..ATTEMPTS {
        if !changes.iter().all(|c| precondition_holds(&data, c)) {
            break;
        }
        let mut next = data.clone();
        for c in &changes {
            next.insert(c.name.clone(), c.value.clone());
        }
        match v.write(provider, &next, version).await? {
            Cas::Written(new) => return Ok(echo(next, new)),
            Cas::Moved => {
                tracing::debug!("vault: the secret moved since it was read; re-reading");
                let read = v.read(provider).await?;
                (data, version) = (read.data, read.version);
            }
        }
    }
    Ok(echo(data, version))
}

/// Doppler's `originalValue` rule: the secret holds exactly this now (absent reads as "").
fn precondition_holds(data: &Secrets, change: &Change) -> bool {
    change.original.as_ref().is_none_or(|original| {
        data.get(&change.name).map_or("", |v| v.expose_secret()) == original.expose_secret()
    })
}

/// Whether the token may write the secret, asked without writing (a KV v2 write always makes
/// a new version): `create` for a secret that does not exist yet, `update` for one that does.
async fn probe(v: &Vault, snapshot: &Stored) -> Result<()> {
    let caps = v.capabilities(&snapshot.provider).await?;
    let needed = if snapshot.version.unwrap_or(0) == 0 {
        "create"
    } else {
        "update"
    };
    if caps
        .iter()
        .any(|c| c == needed || c == "root" || c == "sudo")
    {
        return Ok(());
    }
    Err(Error::Vault {
        status: 403,
        message: format!(
            "the token's policy allows [{}] on the secret, not `{needed}`",
            crate::text::terminal_safe(&caps.join(", "), 100)
        ),
        kind: DopplerFailure::ReadOnly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn change(name: &str, original: Option<&str>) -> Change {
        Change {
            name: name.into(),
            value: SecretString::from("new"),
            original: original.map(|o| SecretString::from(o.to_string())),
            exists: true,
        }
    }

    #[test]
    fn preconditions_compare_the_value_as_read_and_absent_reads_as_empty() {
        let data: Secrets = [("A".to_string(), SecretString::from("a"))].into();
        assert!(precondition_holds(&data, &change("A", Some("a"))));
        assert!(!precondition_holds(&data, &change("A", Some("b"))));
        assert!(!precondition_holds(&data, &change("A", Some(""))));
        assert!(precondition_holds(&data, &change("B", Some(""))));
        assert!(!precondition_holds(&data, &change("B", Some("b"))));
        assert!(precondition_holds(&data, &change("A", None)));
    }
}
