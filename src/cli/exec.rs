//! `exec`'s process side: starts the command without a shell, with this process's stdin,
//! stdout and stderr and its environment plus the tokens, minus the Doppler token
//! (`DOPPLER_TOKEN`, `DOPPLER_TOKEN_FILE`) unless kept. Its exit code is passed through; a
//! command killed by a signal gives 128 + the signal.
//!
//! Signals while the command runs (Unix): Ctrl-C, Ctrl-\ and a terminal hang-up reach the
//! command directly (it is in the terminal's foreground process group), so this process
//! ignores SIGINT, SIGQUIT and SIGHUP and waits for the command to finish; SIGTERM, SIGUSR1
//! and SIGUSR2, which a supervisor sends to this process only (and whose default would end it
//! and orphan the command), are forwarded to the command.
//!
//! Core dumps: oauth-pkce sets its own soft core limit to 0 (a dump would hold tokens) and
//! leaves the hard limit as it was, so the command starts without core dumps and may turn
//! them back on (`ulimit -c unlimited`).

use std::ffi::OsString;

use secrecy::ExposeSecret as _;

use oauth_pkce::{Error, Result};
use secrecy::SecretString;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    /// The store's credentials (`DOPPLER_TOKEN`, `DOPPLER_TOKEN_FILE`; `VAULT_TOKEN`,
    /// `BAO_TOKEN`), removed from the command's environment.
    pub(crate) remove: &'static [&'static str],
}

/// Runs `command` with `tokens` added to its environment, waits for it, and returns its exit
/// code (128 + the signal when a signal ended it).
pub(crate) async fn run(command: &Command, vars: &[(String, SecretString)]) -> Result<i32> {
    let mut cmd = tokio::process::Command::new(&command.program);
    cmd.args(&command.args);
    for name in command.remove {
        cmd.env_remove(name);
    }
    for (name, value) in vars {
        cmd.env(name, value.expose_secret());
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
                    #[allow(unsafe_code)]
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
fn exit_code(status: std::process::ExitStatus) -> i32 {
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

/// SIGTERM, SIGUSR1 and SIGUSR2 to forward; SIGINT, SIGQUIT and SIGHUP received and dropped
/// (the terminal sends them to the command too).
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
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
            usr1: on(SignalKind::user_defined1())?,
            usr2: on(SignalKind::user_defined2())?,
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
                got = self.usr1.recv() => return got.map(|_| libc::SIGUSR1),
                got = self.usr2.recv() => return got.map(|_| libc::SIGUSR2),
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
}
