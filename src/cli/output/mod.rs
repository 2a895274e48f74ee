//! What the CLI prints: the reporter of progress on stderr (with its spinner), summaries,
//! tables and JSON on stdout. The only module of the crate that writes to stdout or stderr
//! (besides `main.rs`'s `error:`/`hint:`), which the `print_*` lints check.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use serde::Serialize;

use oauth_pkce::bin::{mask, printable, terminal_safe};
use oauth_pkce::Provider;
use oauth_pkce::{Context, Error, Event, Reporter, Result};

use super::args::{Cli, TokenFormat};
use super::spinner;

mod tables;
pub(crate) use tables::{print_checks, print_providers, print_status, status_notes};

/// stderr through [`printable`]: no escape sequence or control character from any text
/// (provider files, program names, server answers) reaches the terminal.
pub(crate) struct SafeStderr(std::io::StderrLock<'static>);

pub(crate) fn stderr() -> SafeStderr {
    SafeStderr(std::io::stderr().lock())
}

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // `write!` hands over whole `str` pieces, so a piece is never cut inside a character.
        self.0
            .write_all(printable(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Prints [`Event`]s to stderr. `verbose == 0` still shows what a person needs. While a person
/// is awaited, a spinner shows the time left when stderr is a terminal; otherwise plain lines.
pub(crate) struct Stderr {
    verbose: u8,
    /// Spinners are drawn (stderr is a terminal and `TERM` is not `dumb`).
    animate: bool,
    colour: bool,
    /// The running spinner, and what it shows, to redraw it after a message.
    spinner: Mutex<Option<(spinner::Spinner, String, Instant)>>,
    /// The user was asked to paste a redirect URL: no animation that could draw over it.
    pasting: std::sync::atomic::AtomicBool,
}

impl Stderr {
    pub(crate) fn new(verbose: u8, animate: bool, colour: bool) -> Stderr {
        Stderr {
            verbose,
            animate,
            colour,
            spinner: Mutex::new(None),
            pasting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Stops the spinner (its line cleared) and returns what it showed.
    fn pause(&self) -> Option<(String, Instant)> {
        let mut slot = self.spinner.lock().unwrap_or_else(|e| e.into_inner());
        slot.take().map(|(s, label, deadline)| {
            drop(s);
            (label, deadline)
        })
    }

    fn spin(&self, label: &str, deadline: Instant) {
        if self.animate && !self.pasting.load(std::sync::atomic::Ordering::Relaxed) {
            let s = spinner::Spinner::start(label.to_string(), deadline, self.colour);
            *self.spinner.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((s, label.to_string(), deadline));
        }
    }
}

impl Reporter for Stderr {
    fn event(&self, event: Event<'_>) {
        let paused = self.pause();
        let mut err = stderr();
        let _ = match event {
            Event::Remote { port, redirect_uri, paste } => {
                self.pasting.store(paste, std::sync::atomic::Ordering::Relaxed);
                let second = if paste {
                    format!("or sign in wherever the browser is, then paste here the address it lands on ({redirect_uri}?code=…) and press Enter")
                } else {
                    "or run again with --paste, sign in wherever the browser is, and paste the address it lands on into oauth-pkce's stdin".to_string()
                };
                writeln!(
                    err,
                    "If the browser runs on another machine (SSH, a container), it cannot reach {redirect_uri} here:\n  - forward the port first, then open the URL on that machine:  ssh -L {port}:127.0.0.1:{port} <this host>\n  - {second}\n"
                )
            }
            Event::PasteRefused(why) => {
                let _ = writeln!(err, "The pasted address was refused: {why}. Still waiting: paste the address again, or finish in the browser.");
                drop(err);
                if let Some((label, deadline)) = paused {
                    self.spin(&label, deadline);
                }
                return;
            }
            Event::PasteAccepted => writeln!(err, "Got the authorization from the pasted address."),
            Event::DeviceCode { user_code, verification_uri, verification_uri_complete, seconds } => {
                let _ = writeln!(err, "To sign in, open {verification_uri} on any device and enter the code:\n\n    {user_code}\n");
                if let Some(complete) = verification_uri_complete {
                    let _ = writeln!(err, "(or open {complete}, which has the code filled in)");
                }
                writeln!(err, "The code expires in {} min. Enter it only if you started this sign-in yourself, just now, with oauth-pkce: a code someone sends you would sign you in on their machine.\n", seconds.div_ceil(60))
            }
            Event::SlowDown { interval } if self.verbose > 0 => {
                writeln!(err, "The provider asked to poll less often: every {interval} s now.")
            }
            Event::SlowDown { .. } => Ok(()),
            Event::AuthorizationUrl(url) => writeln!(err, "Open this URL in a browser to authorize:\n\n    {url}\n"),
            Event::PortFallback { port, first, redirect_uri } => writeln!(
                err,
                "warning: port {first} is busy, so the callback listens on {port}: the provider must accept {redirect_uri} (register it, or free port {first})"
            ),
            Event::BrowserOpened => writeln!(err, "Opened your browser."),
            Event::BrowserFailed(why) => writeln!(err, "Could not open a browser ({why}): open the URL above yourself."),
            Event::Waiting { seconds, redirect_uri } => {
                let _ = writeln!(err, "Waiting up to {seconds} s for the redirect to {redirect_uri} ...");
                drop(err);
                self.spin("Waiting for the browser", Instant::now() + Duration::from_secs(seconds));
                return;
            }
            Event::DeviceWaiting { seconds } => {
                let _ = writeln!(err, "Waiting up to {seconds} s for the sign-in to be approved ...");
                drop(err);
                self.spin("Waiting for the approval", Instant::now() + Duration::from_secs(seconds));
                return;
            }
            Event::Exchanging => writeln!(err, "Exchanging the authorization code for tokens..."),
            Event::Refreshing if self.verbose > 0 => writeln!(err, "Refreshing the access token..."),
            Event::Refreshing => Ok(()),
            Event::Warning(w) => writeln!(err, "warning: {w}"),
            _ => Ok(()),
        };
    }
}

/// `value` as pretty JSON on its own line (what every `--json` prints).
pub(crate) fn print_json<T: Serialize + ?Sized>(out: &mut impl std::io::Write, value: &T) {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// What `authorize` and `refresh` print: tokens masked.
#[derive(Serialize)]
pub(crate) struct Summary {
    provider: String,
    access_token: String,
    refresh_token_present: bool,
    expires_at: Option<i64>,
    doppler: String,
    /// `Doppler (demo/dev)`, for people.
    #[serde(skip)]
    described: String,
}

impl Summary {
    pub(crate) fn new(
        ctx: &Context,
        access: &secrecy::SecretString,
        refresh_present: bool,
        expires_at: Option<i64>,
    ) -> Summary {
        Summary {
            provider: ctx.provider.name.clone(),
            access_token: mask(access.expose_secret()),
            refresh_token_present: refresh_present,
            expires_at,
            doppler: ctx.store.describe_target(),
            described: ctx.store.describe(),
        }
    }

    pub(crate) fn print(&self, verb: &str, json: bool) {
        let mut out = std::io::stdout().lock();
        if json {
            print_json(&mut out, self);
            return;
        }
        let _ = writeln!(
            out,
            "{verb} {}: tokens stored in {}",
            self.provider, self.described
        );
        let _ = writeln!(out, "  access token   {}", self.access_token);
        let _ = writeln!(
            out,
            "  refresh token  {}",
            if self.refresh_token_present {
                "stored"
            } else {
                "none"
            }
        );
        let _ = writeln!(out, "  expires        {}", describe_expiry(self.expires_at));
    }
}

pub(crate) fn describe_expiry(expires_at: Option<i64>) -> String {
    match expires_at {
        None => "unknown".into(),
        Some(e) => format!(
            "{} ({})",
            local_time(e),
            time_left(e - oauth_pkce::bin::now())
        ),
    }
}

pub(crate) fn local_time(epoch: i64) -> String {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_opt(epoch, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
        None => epoch.to_string(),
    }
}

/// "in 59m 10s", "expired 3m ago".
pub(crate) fn time_left(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let text = match a {
        0..=59 => format!("{a}s"),
        60..=3599 => format!("{}m {}s", a / 60, a % 60),
        3600..=86399 => format!("{}h {}m", a / 3600, (a % 3600) / 60),
        _ => format!("{}d {}h", a / 86400, (a % 86400) / 3600),
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("expired {text} ago")
    }
}

/// The man page of oauth-pkce, or of one of its commands (named `oauth-pkce-COMMAND`).
pub(crate) fn print_man(command: Option<&str>) -> Result<()> {
    let mut cmd = Cli::grammar();
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                let known: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                Error::Usage(format!(
                    "no command `{name}` (commands: {})",
                    known.join(", ")
                ))
            })?;
            let full = format!("oauth-pkce-{name}");
            sub.display_name(full.clone()).bin_name(full)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Error::Usage(format!("cannot render the man page: {e}")))?;
    let _ = std::io::stdout().lock().write_all(&out);
    Ok(())
}

pub(crate) fn print_revoked(done: &oauth_pkce::bin::Revoked, target: &str, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        print_json(&mut out, done);
        return;
    }
    if done.nothing_stored {
        let _ = writeln!(
            stderr(),
            "Nothing is stored in {target} for {}: nothing to revoke.",
            done.provider
        );
        return;
    }
    let at_provider = match (&done.provider_skipped, done.revoked_at_provider.as_slice()) {
        (Some(why), _) => format!("not revoked at the provider ({why})"),
        (None, []) => "nothing to revoke at the provider".to_string(),
        (None, tokens) => format!(
            "{} revoked at the provider",
            tokens
                .iter()
                .map(|t| t.replace('_', " "))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    };
    let _ = writeln!(
        out,
        "Revoked {}: {at_provider}; tokens removed from {target}",
        done.provider
    );
}

/// The proxy is listening: where, to what, and (when it made one up) its key.
pub(crate) fn proxy_listening(
    addr: std::net::SocketAddr,
    base: &url::Url,
    key: Option<&secrecy::SecretString>,
) {
    let mut err = stderr();
    let _ = writeln!(
        err,
        "proxy: listening on http://{addr}, forwarding to {base}"
    );
    if let Some(key) = key {
        let _ = writeln!(
            err,
            "proxy: key (send it as X-OAuth-Pkce-Key): {}",
            key.expose_secret()
        );
    }
}

/// One provider's failure in a command over several (`refresh --all`): the others go on.
pub(crate) fn error_of(provider: &str, e: &Error) {
    let mut err = stderr();
    let _ = writeln!(
        err,
        "error: {provider}: {}",
        terminal_safe(&e.with_causes(), 1000)
    );
    let _ = writeln!(err, "hint: {}", e.hint());
}

/// git asked for a host whose provider has nothing stored: no answer (git moves on), a hint.
pub(crate) fn git_not_authorized(host: &str, provider: &str) {
    let _ = writeln!(
        stderr(),
        "oauth-pkce: nothing stored for {host}; run `oauth-pkce authorize --provider {provider}`"
    );
}

/// The token on stdout, in the format asked for, and nothing else.
pub(crate) fn print_token(fresh: &oauth_pkce::Fresh, provider: &str, format: TokenFormat) {
    use serde_json::json;
    let token = fresh.access_token.expose_secret();
    let bearer = format!("Bearer {token}");
    let text = match format {
        TokenFormat::Plain => token.to_string(),
        TokenFormat::Header => format!("Authorization: {bearer}"),
        TokenFormat::Json => json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_at": fresh.expires_at,
            "provider": provider,
        })
        .to_string(),
        TokenFormat::HeadersJson => json!({ "Authorization": bearer }).to_string(),
        TokenFormat::ExecCredential => {
            let mut status = json!({ "token": token });
            if let Some(at) = fresh
                .expires_at
                .and_then(|e| chrono::DateTime::<chrono::Utc>::from_timestamp(e, 0))
            {
                status["expirationTimestamp"] =
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into();
            }
            json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": status,
            })
            .to_string()
        }
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Says that a user's file replaces a built-in preset: that file now decides where the
/// refresh token and client secret go.
pub(crate) fn overridden(p: &Provider) {
    let _ = writeln!(
        stderr(),
        "note: provider `{}` is defined by {}, not the built-in preset",
        p.name,
        terminal_safe(&p.source, 200)
    );
}

/// The note for each of the catalog's providers that a user's file defines instead of the
/// preset: for commands that act on all of them (`status`, `refresh --all`).
pub(crate) fn overrides(catalog: &oauth_pkce::Catalog) {
    for p in catalog.iter().filter(|p| p.overrides_builtin) {
        overridden(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(time_left(59), "in 59s");
        assert_eq!(time_left(3599), "in 59m 59s");
        assert_eq!(time_left(7260), "in 2h 1m");
        assert_eq!(time_left(-120), "expired 2m 0s ago");
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::grammar().debug_assert();
    }
}
