//! `exec`: runs a command with valid access tokens in its environment.
//!
//! Each provider's token is obtained exactly as `token` obtains it ([`crate::refresh::obtain`]
//! through [`crate::TokenSource`]: refreshed first when it expires within the buffer), and
//! handed to the command as `{PREFIX}_ACCESS_TOKEN`. The command is started without a shell,
//! with this process's stdin, stdout and stderr, and the rest of this process's environment
//! except the Doppler token (`DOPPLER_TOKEN`, `DOPPLER_TOKEN_FILE`), unless the caller keeps
//! it. Its exit code is passed through; a command killed by a signal gives 128 + the signal.
//!
//! Signals while the command runs (Unix): Ctrl-C, Ctrl-\ and a terminal hang-up reach the
//! command directly (it is in the terminal's foreground process group), so this process
//! ignores SIGINT, SIGQUIT and SIGHUP and waits for the command to finish; SIGTERM, which a
//! supervisor sends to this process only, is forwarded to the command.

use std::collections::BTreeMap;
use std::ffi::OsString;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::{env, Context, Reporter, TokenSource};

/// What to run.
#[derive(Debug, Clone)]
pub struct Command {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Pass `DOPPLER_TOKEN` and `DOPPLER_TOKEN_FILE` through to the command.
    pub keep_doppler_token: bool,
}

/// The variables added to the command's environment: `{PREFIX}_ACCESS_TOKEN` per provider.
pub struct TokenEnv(BTreeMap<String, SecretString>);

impl std::fmt::Debug for TokenEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl TokenEnv {
    /// The variable names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// A valid access token for each context's provider, refreshed first where due. Two
/// providers that would set the same variable are a usage error (the same provider twice is
/// asked once).
pub async fn token_env(
    contexts: Vec<Context>,
    reporter: &dyn Fn() -> Box<dyn Reporter>,
) -> Result<TokenEnv> {
    let mut vars: BTreeMap<String, (String, SecretString)> = BTreeMap::new();
    for ctx in contexts {
        let name = ctx.provider.secret_name(crate::store::ACCESS_TOKEN);
        let provider = ctx.provider.name.clone();
        match vars.get(&name) {
            Some((other, _)) if *other == provider => continue,
            Some((other, _)) => {
                return Err(Error::Usage(format!(
                    "--provider {other} and --provider {provider} would both set {name} (the same secret_prefix)"
                )))
            }
            None => {}
        }
        let source = TokenSource::new(ctx).with_reporter(reporter());
        let token = source.access_token().await?;
        vars.insert(name, (provider, token));
    }
    Ok(TokenEnv(
        vars.into_iter().map(|(k, (_, t))| (k, t)).collect(),
    ))
}

/// Runs `command` with `tokens` added to its environment, waits for it, and returns its exit
/// code (128 + the signal when a signal ended it).
pub async fn run(command: &Command, tokens: &TokenEnv) -> Result<i32> {
    let mut cmd = tokio::process::Command::new(&command.program);
    cmd.args(&command.args);
    if !command.keep_doppler_token {
        cmd.env_remove(env::DOPPLER_TOKEN)
            .env_remove(env::DOPPLER_TOKEN_FILE);
    }
    for (name, token) in &tokens.0 {
        cmd.env(name, token.expose_secret());
    }
    // Installed before the child exists, so no signal falls between the two.
    #[cfg(unix)]
    let mut signals = Signals::install()?;
    let mut child = cmd.spawn().map_err(|source| Error::CommandNotStarted {
        program: command.program.to_string_lossy().into_owned(),
        source,
    })?;
    #[cfg(unix)]
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            forward = signals.next() => {
                if let (Some(sig), Some(pid)) = (forward, child.id()) {
                    // SAFETY: kill(2) with the pid of our own child, which we have not reaped.
                    unsafe { libc::kill(pid as libc::pid_t, sig) };
                }
            }
        }
    };
    #[cfg(not(unix))]
    let status = child.wait().await;
    let status = status.map_err(|e| {
        Error::Usage(format!(
            "lost track of `{}`: {e}",
            command.program.to_string_lossy()
        ))
    })?;
    Ok(exit_code(status))
}

/// The exit code of a finished command: its own, or 128 + the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    1
}

/// SIGTERM to forward; SIGINT, SIGQUIT and SIGHUP received and dropped (the terminal sends
/// them to the command too).
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let on = |kind: SignalKind| {
            signal(kind).map_err(|e| Error::Usage(format!("cannot handle signals: {e}")))
        };
        Ok(Signals {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            quit: on(SignalKind::quit())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    /// The next signal to forward; the ignored ones are consumed on the way.
    async fn next(&mut self) -> Option<i32> {
        loop {
            tokio::select! {
                got = self.term.recv() => return got.map(|_| libc::SIGTERM),
                _ = self.int.recv() => {}
                _ = self.quit.recv() => {}
                _ = self.hup.recv() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn exit_codes_pass_through_and_signals_add_128() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(0)), 0);
        // Killed by SIGTERM (15).
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(15)), 143);
    }

    #[test]
    fn debug_shows_names_only() {
        let env = TokenEnv(BTreeMap::from([(
            "ACME_ACCESS_TOKEN".to_string(),
            SecretString::from("AT-SENTINEL"),
        )]));
        let d = format!("{env:?}");
        assert!(
            d.contains("ACME_ACCESS_TOKEN") && !d.contains("SENTINEL"),
            "{d}"
        );
    }
}
