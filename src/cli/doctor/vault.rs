//! `doctor`'s Vault checks: the token (where it was found; `lookup-self`: its name, policies
//! and time left), the mount (KV version 2, which the check-and-set writes need) and, per
//! provider, what the token's policy allows on the secret (`sys/capabilities-self`) — asked,
//! not tried: every KV v2 write makes a new version.

use oauth_pkce::bin::{Stored, Vault, VaultTokenSource, Write};
use oauth_pkce::{DopplerFailure, Error, Provider, Store};

use super::{Check, Status};

/// A token with less time left than this is a warning.
const SHORT_TTL: i64 = 24 * 3600;

pub(super) async fn checks(v: &Vault) -> Vec<Check> {
    let s = v.settings();
    let place = match &s.token_source {
        VaultTokenSource::Environment(name) => (*name).to_string(),
        VaultTokenSource::File(path) => format!("the file {}", path.display()),
    };
    let token = match v.lookup_self().await {
        Ok(info) => {
            let policies = info.policies.join(", ");
            let detail = format!(
                "from {place}: `{}`, policies [{policies}], {}",
                oauth_pkce::bin::terminal_safe(&info.display_name, 60),
                match info.ttl {
                    0 => "does not expire".to_string(),
                    t => format!("expires in {}", human(t)),
                }
            );
            if info.ttl > 0 && info.ttl < SHORT_TTL {
                Check::new("vault token", None, Status::Warn, detail).next(
                    "renew it before it expires (`bao token renew`), or give long-running machines a periodic token",
                )
            } else {
                Check::new("vault token", None, Status::Pass, detail)
            }
        }
        Err(e) => Check::from_error("vault token", None, &e),
    };
    let mount = match v.check_mount().await {
        Ok(()) => Check::new(
            "vault mount",
            None,
            Status::Pass,
            format!(
                "`{}` is KV version 2; secrets at {}/{}/PROVIDER",
                s.mount, s.mount, s.path
            ),
        ),
        Err(e) => Check::from_error("vault mount", None, &e),
    };
    vec![token, mount]
}

/// What the token may do on the provider's secret.
pub(super) async fn write_check(
    v: &Vault,
    store: &Store,
    provider: &Provider,
    stored: &Stored,
) -> Check {
    let s = v.settings();
    let path = format!("{}/data/{}/{}", s.mount, s.path, provider.name);
    match store.write(stored, Write::Probe).await {
        Ok(_) => Check::new(
            "vault write",
            Some(provider),
            Status::Pass,
            format!("the token's policy allows writing {path}"),
        ),
        Err(Error::Vault {
            kind: DopplerFailure::ReadOnly,
            message,
            ..
        }) => Check::new(
            "vault write",
            Some(provider),
            Status::Warn,
            format!(
                "{message} ({path}): `token` and `exec` work while the stored access token is valid; `authorize`, `refresh`, `revoke` and refreshing a due token need a token that can write"
            ),
        )
        .next(format!(
            "fine for machines that only read tokens; elsewhere use a token whose policy has: path \"{}/data/{}/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}",
            s.mount, s.path
        )),
        Err(e) => Check::from_error("vault write", Some(provider), &e),
    }
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s >= 2 * 86400 => format!("{} days", s / 86400),
        s if s >= 2 * 3600 => format!("{} h", s / 3600),
        s => format!("{} min", s / 60),
    }
}
