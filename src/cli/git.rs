//! `oauth-pkce git-credential get|store|erase`: git's credential-helper protocol
//! (gitcredentials(7)). git writes `key=value` lines, then a blank line or the end of input;
//! for `get` the helper answers `username`, `password` and `password_expiry_utc`, or nothing,
//! and git asks its next helper. Only https hosts listed in a provider's `git_hosts` are
//! answered, with that provider's access token from the usual path (cache, refresh, lease).

use std::io::Write as _;

use secrecy::ExposeSecret as _;

use oauth_pkce::bin::refresh;
use oauth_pkce::{Error, Result, DEFAULT_REFRESH_BUFFER};

use super::args::GitAction;
use super::settings::Settings;

/// The request git sent: its `protocol` and `host` (other keys are ignored).
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    protocol: Option<String>,
    host: Option<String>,
}

fn parse(input: impl std::io::BufRead) -> Request {
    let mut request = Request::default();
    for line in input.lines().map_while(std::result::Result::ok) {
        if line.is_empty() {
            break;
        }
        match line.split_once('=') {
            Some(("protocol", v)) => request.protocol = Some(v.to_string()),
            Some(("host", v)) => request.host = Some(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    request
}

pub(crate) async fn credential(action: GitAction, settings: Settings) -> Result<i32> {
    let request = parse(std::io::stdin().lock());
    if action != GitAction::Get || request.protocol.as_deref() != Some("https") {
        return Ok(0);
    }
    let Some(host) = request.host else {
        return Ok(0);
    };
    let catalog = settings.catalog()?;
    let Some(provider) = catalog
        .iter()
        .find(|p| p.git_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)))
        .cloned()
    else {
        return Ok(0); // not ours: git asks its next helper
    };
    if provider.overrides_builtin {
        super::output::overridden(&provider);
    }
    let username = provider
        .git_username
        .clone()
        .unwrap_or_else(|| "oauth2".into());
    let name = provider.name.clone();
    let reporter = settings.reporter();
    let ctx = settings.ready()?.context(provider, DEFAULT_REFRESH_BUFFER);
    let fresh = match refresh::token(&ctx, &reporter).await {
        Ok(fresh) => fresh,
        Err(Error::NotAuthorized { .. }) => {
            super::output::git_not_authorized(&host, &name);
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "username={username}");
    let _ = writeln!(out, "password={}", fresh.access_token.expose_secret());
    if let Some(at) = fresh.expires_at {
        let _ = writeln!(out, "password_expiry_utc={at}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_protocol_and_host_until_the_blank_line() {
        let input = b"protocol=https\nhost=GitHub.com\npath=o/r.git\n\nhost=evil.example\n";
        assert_eq!(
            parse(&input[..]),
            Request {
                protocol: Some("https".into()),
                host: Some("github.com".into()),
            }
        );
        assert_eq!(parse(&b""[..]), Request::default());
    }
}
