//! `doctor`: checks the setup, each check with a result and, when it is not fine, the next
//! step. Nothing here opens a browser, listens for longer than a bind, or shows a secret.
//!
//! The checks, in order: the network settings (proxy, extra CA files); the Doppler token
//! (where it was found, its kind from its prefix); one Doppler read (the project/config is
//! reachable); whether the token can write (a compare-and-swap write of a provider's
//! `{PREFIX}_REFRESH_LEASE` to the value it holds, which changes nothing); a browser opener
//! (`$BROWSER` or a system opener on `PATH`, not started); then per provider: the client
//! credentials, the callback ports that are free, the redirect URIs to register, and the
//! stored token's state.
//!
//! Without a provider, the provider checks cover every provider with anything stored in
//! Doppler.

use std::collections::HashMap;
use std::ffi::OsString;

use secrecy::SecretString;
use serde::Serialize;

use oauth_pkce::bin::{
    find_opener, now, refresh_due, Doppler, DopplerTokenSource as TokenSource, Opener, Stored,
    TokenKind, Vault, Write, CLIENT_ID, REFRESH_LEASE,
};
use oauth_pkce::{
    Catalog, DopplerFailure, DopplerSettings, Error, Http, NetworkSettings, Provider, Result,
    Store, StoreSettings,
};

mod machine;
mod vault;

use machine::{browser_check, callback_checks, clock_check, state_dir_check};

/// Ports probed at most per provider.
const MAX_PORTS: usize = 32;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Pass,
    /// Works, with a caveat worth knowing.
    Warn,
    Fail,
    /// Could not be checked (an earlier check failed, or nothing to check).
    Skip,
}

/// One check's result.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    /// What was checked, e.g. `doppler token` or `callback ports`.
    pub(crate) check: String,
    /// The provider it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) provider: Option<String>,
    pub(crate) status: Status,
    /// What was found (names and places, never a secret).
    pub(crate) detail: String,
    /// What to do, when the status is not `pass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
}

impl Check {
    fn new(check: &str, provider: Option<&Provider>, status: Status, detail: String) -> Check {
        Check {
            check: check.into(),
            provider: provider.map(|p| p.name.clone()),
            status,
            detail,
            next: None,
        }
    }

    fn next(mut self, next: impl Into<String>) -> Check {
        self.next = Some(next.into());
        self
    }

    fn from_error(check: &str, provider: Option<&Provider>, e: &Error) -> Check {
        Check::new(check, provider, Status::Fail, describe(e)).next(e.hint())
    }
}

/// The error and its causes on one line.
fn describe(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    oauth_pkce::bin::terminal_safe(&text, 500)
}

/// What the checks look at, gathered by the caller.
pub(crate) struct Inputs<'a> {
    pub(crate) network: &'a NetworkSettings,
    /// The client built from `network`, or why it could not be.
    pub(crate) http: Result<Http>,
    /// The store's settings, or why they could not be resolved.
    pub(crate) settings: Result<StoreSettings>,
    pub(crate) catalog: &'a Catalog,
    /// Only this provider; `None`: every provider with anything stored.
    pub(crate) provider: Option<&'a Provider>,
    /// `*_CLIENT_ID`/`*_CLIENT_SECRET` of the environment (the credentials' fallback).
    pub(crate) env_credentials: &'a HashMap<String, SecretString>,
    /// `$BROWSER` and `$PATH`.
    pub(crate) browser_var: Option<String>,
    pub(crate) path_var: Option<OsString>,
    /// Linux without a display: the system opener will fail.
    pub(crate) no_display: bool,
    pub(crate) refresh_buffer: i64,
    /// This user's state dir (locks, journals, the token cache), or why there is none.
    pub(crate) state_dir: Option<&'a std::path::Path>,
}

/// Runs every check.
pub(crate) async fn run(inputs: Inputs<'_>) -> Vec<Check> {
    let mut checks = vec![network_check(inputs.network, &inputs.http)];

    let label = match &inputs.settings {
        Ok(StoreSettings::Vault(_)) => "vault",
        _ => "doppler",
    };
    let read_check = format!("{label} read");
    let store_name = if label == "vault" { "Vault" } else { "Doppler" };
    let mut doppler = None;
    match (inputs.settings, &inputs.http) {
        (Ok(StoreSettings::Doppler(settings)), Ok(http)) => {
            checks.push(token_check(&settings));
            doppler = Some(Store::Doppler(Doppler::new(http.clone(), settings)));
        }
        (Ok(StoreSettings::Vault(settings)), Ok(http)) => {
            let v = Vault::new(http.clone(), settings);
            checks.extend(vault::checks(&v).await);
            doppler = Some(Store::Vault(v));
        }
        (Ok(settings), Err(_)) => {
            if let StoreSettings::Doppler(settings) = &settings {
                checks.push(token_check(settings));
            }
            checks.push(Check::new(
                &read_check,
                None,
                Status::Skip,
                "no HTTP client (see the network check)".into(),
            ));
        }
        (Err(e), _) => {
            checks.push(Check::from_error(&format!("{label} token"), None, &e));
            checks.push(Check::new(
                &read_check,
                None,
                Status::Skip,
                format!("no {label} settings"),
            ));
        }
    }

    // One read: the provider asked about, or every known provider's names.
    let mut stored: Vec<(&Provider, Stored)> = Vec::new();
    let mut read_ok = false;
    if let Some(doppler) = &doppler {
        let wanted: Vec<&Provider> = match inputs.provider {
            Some(p) => vec![p],
            None => inputs.catalog.iter().collect(),
        };
        let target = match doppler.doppler() {
            Some(d) => format!(
                "{} at {}",
                doppler.describe_target(),
                d.settings().api_host.as_str().trim_end_matches('/')
            ),
            None => doppler.describe_target(),
        };
        match doppler.load_each(&wanted).await {
            Ok(each) => {
                read_ok = true;
                checks.push(Check::new(
                    &read_check,
                    None,
                    Status::Pass,
                    format!("read {target}"),
                ));
                if let Some(first) = each.first() {
                    checks.push(clock_check(first.clock(), &doppler.kind().to_string()));
                }
                for (p, s) in wanted.into_iter().zip(each) {
                    if inputs.provider.is_some() || s.has_anything() {
                        stored.push((p, s));
                    }
                }
            }
            Err(e) => checks.push(Check::from_error(&read_check, None, &e)),
        }
    }

    let write_name = format!("{label} write");
    checks.push(match (&doppler, stored.first()) {
        (Some(doppler), Some((p, s))) if read_ok => write_check(doppler, p, s).await,
        (Some(_), None) if read_ok => Check::new(
            &write_name,
            None,
            Status::Skip,
            "no provider has anything stored to probe with".into(),
        )
        .next("run `oauth-pkce doctor --provider NAME`"),
        _ => Check::new(
            &write_name,
            None,
            Status::Skip,
            format!("{label} could not be read"),
        ),
    });

    checks.push(browser_check(
        inputs.browser_var.as_deref(),
        inputs.path_var.as_deref(),
        inputs.no_display,
    ));
    if let Some(dir) = inputs.state_dir {
        checks.push(state_dir_check(dir));
    }
    // A user's file that replaces a built-in decides where tokens and secrets are sent.
    for p in inputs.catalog.iter().filter(|p| p.overrides_builtin) {
        checks.push(
            Check::new(
                "provider file",
                Some(p),
                Status::Warn,
                format!(
                    "the built-in `{}` is replaced by {}",
                    p.name,
                    oauth_pkce::bin::terminal_safe(&p.source, 200)
                ),
            )
            .next("keep it only if you wrote it; otherwise move the file away"),
        );
    }

    if read_ok && stored.is_empty() {
        checks.push(
            Check::new(
                "providers",
                None,
                Status::Warn,
                format!("no provider has anything stored in {store_name}"),
            )
            .next("run `oauth-pkce doctor --provider NAME` to check one before `authorize`"),
        );
    }
    let providers: Vec<(&Provider, Option<&Stored>)> = match inputs.provider {
        Some(p) => vec![(p, stored.first().map(|(_, s)| s))],
        None => stored.iter().map(|(p, s)| (*p, Some(s))).collect(),
    };
    for (p, s) in providers {
        checks.push(credentials_check(p, s, inputs.env_credentials));
        checks.extend(callback_checks(p).await);
        checks.push(token_state_check(p, s, inputs.refresh_buffer));
    }
    checks
}

fn network_check(net: &NetworkSettings, http: &Result<Http>) -> Check {
    if let Err(e) = http {
        return Check::from_error("network", None, e);
    }
    let proxy = match net.proxy_for(true) {
        Some(p) => format!(
            "https through the proxy {p}{}",
            net.no_proxy
                .as_deref()
                .map(|n| format!(" (not for {n}, nor loopback)"))
                .unwrap_or_default()
        ),
        None => "direct connections (no HTTPS_PROXY/ALL_PROXY)".into(),
    };
    let ca = if net.ca_files.is_empty() {
        "the built-in CA roots".to_string()
    } else {
        format!(
            "the built-in CA roots and {}",
            net.ca_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Check::new(
        "network",
        None,
        Status::Pass,
        format!("{proxy}; trusting {ca}"),
    )
}

fn token_check(settings: &DopplerSettings) -> Check {
    let place = match &settings.token_source {
        TokenSource::Environment => "DOPPLER_TOKEN".to_string(),
        TokenSource::File { path } => format!("the file {} (DOPPLER_TOKEN_FILE)", path.display()),
        TokenSource::CliConfig { path, scope } => format!(
            "the Doppler CLI's configuration {} (scope {scope})",
            path.display()
        ),
    };
    let (kind, status, next) = match settings.token_kind() {
        TokenKind::Service => (
            "a service token (dp.st.), for one project/config",
            Status::Pass,
            None,
        ),
        TokenKind::Personal => (
            "a personal token (dp.pt.), with access to every project you can reach",
            Status::Warn,
            Some("prefer a service token for one config (Doppler: project → config → Access)"),
        ),
        TokenKind::Cli => (
            "a CLI token (dp.ct.), with access to every project you can reach",
            Status::Warn,
            Some("prefer a service token for one config (Doppler: project → config → Access)"),
        ),
        TokenKind::ServiceAccount => ("a service account token (dp.sa.)", Status::Pass, None),
        TokenKind::Other => (
            "a token of unknown kind (no dp.st./dp.pt./dp.ct./dp.sa. prefix)",
            Status::Warn,
            Some("check that DOPPLER_TOKEN holds a Doppler API token"),
        ),
    };
    let target = match (&settings.project, &settings.config) {
        (None, None) => String::new(),
        _ => format!("; project/config {}", settings.describe_target()),
    };
    let check = Check::new(
        "doppler token",
        None,
        status,
        format!("from {place}: {kind}{target}"),
    );
    match next {
        Some(n) => check.next(n),
        None => check,
    }
}

/// Writes the provider's lease secret to the value it holds, as a compare-and-swap: a token
/// that can write gets its write accepted (nothing changes) or refused only by the
/// precondition; a read-only token gets 403.
async fn write_check(store: &Store, provider: &Provider, stored: &Stored) -> Check {
    if let Store::Vault(v) = store {
        return vault::write_check(v, store, provider, stored).await;
    }
    let name = stored.name(REFRESH_LEASE);
    let how = format!("a compare-and-swap write of {name} to its own value");
    match store.write(stored, Write::Probe).await {
        Ok(_) => Check::new(
            "doppler write",
            Some(provider),
            Status::Pass,
            format!("the token can write ({how} was accepted)"),
        ),
        // Refused by the precondition only: the write itself was allowed.
        Err(Error::Doppler {
            kind: DopplerFailure::Conflict,
            ..
        }) => Check::new(
            "doppler write",
            Some(provider),
            Status::Pass,
            format!("the token can write ({how} reached its compare-and-swap)"),
        ),
        Err(Error::Doppler {
            kind: DopplerFailure::ReadOnly | DopplerFailure::Forbidden,
            status,
            ..
        }) => Check::new(
            "doppler write",
            Some(provider),
            Status::Warn,
            format!(
                "the token is read-only (HTTP {status}): `token` and `exec` work while the stored access token is valid; `authorize`, `refresh`, `revoke` and refreshing a due token need a read/write token"
            ),
        )
        .next("fine for machines that only read tokens; elsewhere use a service token with write access (read/write)"),
        Err(e) => Check::from_error("doppler write", Some(provider), &e),
    }
}

fn credentials_check(
    provider: &Provider,
    stored: Option<&Stored>,
    env: &HashMap<String, SecretString>,
) -> Check {
    let Some(stored) = stored else {
        return Check::new(
            "client credentials",
            Some(provider),
            Status::Skip,
            "the store could not be read".into(),
        );
    };
    let place = |suffix: &str| {
        let name = stored.name(suffix);
        if stored.get(suffix).is_some() {
            format!("{name} in {}", stored.store_kind())
        } else {
            format!("{name} in the environment")
        }
    };
    match stored.credentials(provider, env) {
        Ok(c) => {
            let mut detail = place(CLIENT_ID);
            if c.client_secret.is_some() {
                detail.push_str(&format!(", {}", place(oauth_pkce::bin::CLIENT_SECRET)));
            }
            Check::new("client credentials", Some(provider), Status::Pass, detail)
        }
        Err(e) => Check::from_error("client credentials", Some(provider), &e),
    }
}

fn token_state_check(provider: &Provider, stored: Option<&Stored>, buffer: i64) -> Check {
    let Some(stored) = stored else {
        return Check::new(
            "stored token",
            Some(provider),
            Status::Skip,
            "the store could not be read".into(),
        );
    };
    let authorize = format!("run `oauth-pkce authorize --provider {}`", provider.name);
    let has_refresh = stored.refresh_token().is_some();
    let Some(_) = stored.access_token() else {
        let (status, detail) = if has_refresh {
            (
                Status::Pass,
                "no access token, but a refresh token: `token` will refresh",
            )
        } else {
            (Status::Fail, "no tokens stored")
        };
        let check = Check::new("stored token", Some(provider), status, detail.into());
        return if has_refresh {
            check
        } else {
            check.next(authorize)
        };
    };
    let refresh = if has_refresh {
        "a refresh token is stored"
    } else {
        "no refresh token"
    };
    match stored.expires_at() {
        None => Check::new(
            "stored token",
            Some(provider),
            Status::Pass,
            format!("an access token of unknown expiry; {refresh}"),
        ),
        Some(e) if !refresh_due(Some(e), buffer) => Check::new(
            "stored token",
            Some(provider),
            Status::Pass,
            format!("valid for {} more s; {refresh}", e - now()),
        ),
        Some(e) if has_refresh => Check::new(
            "stored token",
            Some(provider),
            Status::Pass,
            if e > now() {
                format!("expires in {} s: the next `token` refreshes it", e - now())
            } else {
                "expired: the next `token` refreshes it".to_string()
            },
        ),
        Some(e) if e > now() => Check::new(
            "stored token",
            Some(provider),
            Status::Warn,
            format!("expires in {} s and no refresh token is stored", e - now()),
        )
        .next(authorize),
        Some(_) => Check::new(
            "stored token",
            Some(provider),
            Status::Fail,
            "expired, and no refresh token is stored".into(),
        )
        .next(authorize),
    }
}

/// The exit code of a doctor run: 0 when no check failed (warnings and skips allowed), else 1.
pub(crate) fn exit_code(checks: &[Check]) -> i32 {
    if checks.iter().any(|c| c.status == Status::Fail) {
        1
    } else {
        0
    }
}
