//! Opening the authorization URL: `$BROWSER` (a command split on white space, run without a
//! shell, `%s` replaced by the URL or the URL appended), else the system opener. The tool
//! never waits for the browser, never passes a URL that is not https (or loopback http), and
//! the opener's environment holds no Doppler token and no client secret.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::env;

/// How the URL was handed to a browser.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// `$BROWSER` was started.
    BrowserVar,
    /// The system opener (xdg-open, open, start…) was started.
    System,
}

/// Why the URL could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("refusing to open a URL that is neither https nor loopback http")]
    UnsafeUrl,
    #[error("$BROWSER is empty")]
    EmptyBrowserVar,
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` failed ({status})")]
    Failed { program: String, status: String },
    #[error("no system browser opener worked")]
    NoOpener,
}

/// Opens `url` with `browser_var` (the value of `$BROWSER`) or the system opener.
pub(crate) fn open(url: &url::Url, browser_var: Option<&str>) -> Result<Opened, OpenError> {
    let safe =
        url.scheme() == "https" || (url.scheme() == "http" && crate::http::is_loopback_url(url));
    if !safe {
        return Err(OpenError::UnsafeUrl);
    }
    match browser_var.map(str::trim).filter(|b| !b.is_empty()) {
        Some(command) => {
            let mut cmd =
                browser_command(command, url.as_str()).ok_or(OpenError::EmptyBrowserVar)?;
            let program = cmd.get_program().to_string_lossy().into_owned();
            match spawn_detached(&mut cmd) {
                Ok(None) => Ok(Opened::BrowserVar),
                Ok(Some(status)) => Err(OpenError::Failed { program, status }),
                Err(source) => Err(OpenError::Spawn { program, source }),
            }
        }
        None if browser_var.is_some() => Err(OpenError::EmptyBrowserVar),
        None => {
            let mut failed = None;
            for mut cmd in open::commands(url.as_str()) {
                let program = cmd.get_program().to_string_lossy().into_owned();
                match spawn_detached(&mut cmd) {
                    Ok(None) => return Ok(Opened::System),
                    // xdg-open without a display: try the next opener, then say so.
                    Ok(Some(status)) => failed = Some(OpenError::Failed { program, status }),
                    Err(_) => {}
                }
            }
            Err(failed.unwrap_or(OpenError::NoOpener))
        }
    }
}

/// The program that would open a URL, as far as can be told without opening one.
#[derive(Debug, PartialEq, Eq)]
pub enum Opener {
    /// `$BROWSER`'s program, and where it was found on `PATH` (`None`: not found).
    BrowserVar {
        program: String,
        found: Option<PathBuf>,
    },
    /// The first system opener found on `PATH`, if any, and every one looked for.
    System {
        found: Option<(String, PathBuf)>,
        candidates: Vec<String>,
    },
}

/// Finds the opener `open` would use, without running it: `$BROWSER`'s first word, else the
/// system openers, looked up on `path` (the value of `PATH`).
pub fn find_opener(browser_var: Option<&str>, path: Option<&OsStr>) -> Opener {
    if let Some(program) = browser_var.and_then(|b| b.split_whitespace().next()) {
        return Opener::BrowserVar {
            program: program.to_string(),
            found: which(OsStr::new(program), path),
        };
    }
    let candidates: Vec<String> = open::commands("https://example.com/")
        .iter()
        .map(|c| c.get_program().to_string_lossy().into_owned())
        .collect();
    let found = candidates
        .iter()
        .find_map(|c| which(OsStr::new(c), path).map(|p| (c.clone(), p)));
    Opener::System { found, candidates }
}

/// Where `program` is: itself when it names a path, else the first executable file of that
/// name in `path`'s directories.
pub(crate) fn which(program: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    let executable = |p: &Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    };
    let as_path = Path::new(program);
    if as_path.components().count() > 1 {
        return executable(as_path).then(|| as_path.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// `$BROWSER` split on white space; `%s` in an argument is replaced by the URL, else the URL
/// is appended as the last argument. The URL is always one argument.
pub(crate) fn browser_command(browser_var: &str, url: &str) -> Option<Command> {
    let mut words = browser_var.split_whitespace();
    let mut cmd = Command::new(words.next()?);
    let mut placed = false;
    for word in words {
        if word.contains("%s") {
            cmd.arg(word.replace("%s", url));
            placed = true;
        } else {
            cmd.arg(word);
        }
    }
    if !placed {
        cmd.arg(url);
    }
    Some(cmd)
}

/// How long an opener may take to fail before it counts as started: xdg-open without a
/// display exits at once; a browser started directly keeps running.
const OPENER_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Starts the opener with no stdin, its output away from our stdout (which carries data),
/// secrets removed from its environment. Waits at most [`OPENER_GRACE`]: `Some(status)` when
/// it failed within that time, `None` when it succeeded or is still running.
fn spawn_detached(cmd: &mut Command) -> std::io::Result<Option<String>> {
    for var in [
        env::DOPPLER_TOKEN,
        env::DOPPLER_TOKEN_FILE,
        env::VAULT_TOKEN,
        env::BAO_TOKEN,
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.ends_with("_CLIENT_SECRET")
            || k.ends_with("_ACCESS_TOKEN")
            || k.ends_with("_REFRESH_TOKEN")
        {
            cmd.env_remove(&key);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn()?;
    let started = std::time::Instant::now();
    while started.elapsed() < OPENER_GRACE {
        match child.try_wait()? {
            Some(status) if status.success() => return Ok(None),
            Some(status) => return Ok(Some(status.to_string())),
            None => std::thread::sleep(std::time::Duration::from_millis(25)),
        }
    }
    // Still running (a browser itself): reap it in the background so it does not linger as
    // a zombie while we wait for the callback.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn url_is_appended_or_substituted_as_one_argument() {
        let url = "https://x.example/a?b=c&d=e f";
        assert_eq!(
            argv(&browser_command("firefox --new-tab", url).unwrap()),
            ["firefox", "--new-tab", url]
        );
        assert_eq!(
            argv(&browser_command("  w3m  %s -o x ", url).unwrap()),
            ["w3m", url, "-o", "x"]
        );
        assert!(browser_command("   ", url).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn openers_are_looked_up_on_path_without_running_them() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("my-browser");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "").unwrap();
        let path = dir.path().as_os_str();
        assert_eq!(
            find_opener(Some("my-browser --new-tab %s"), Some(path)),
            Opener::BrowserVar {
                program: "my-browser".into(),
                found: Some(exe.clone())
            }
        );
        assert_eq!(which(OsStr::new("not-executable"), Some(path)), None);
        assert_eq!(which(exe.as_os_str(), None), Some(exe.clone()));
        match find_opener(None, Some(path)) {
            Opener::System { found, candidates } => {
                assert_eq!(found, None);
                assert!(!candidates.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_https_or_loopback_http_is_opened() {
        for bad in [
            "http://evil.example/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
        ] {
            let url = url::Url::parse(bad).unwrap();
            assert!(
                matches!(open(&url, Some("true")), Err(OpenError::UnsafeUrl)),
                "{bad}"
            );
        }
    }
}
