//! Test support: fake servers and a harness that runs the real `oauth-pkce` binary with a
//! cleared environment, a temporary `HOME`, and a provider file pointing at the fakes.
#![allow(dead_code)]

pub mod bao;
pub mod browser;
pub mod fake_as;
pub mod fake_doppler;
pub mod http;
pub mod server;
pub mod tls;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_as::{AsConfig, ClientAuth, FakeAuthServer};
use fake_doppler::{Access, FakeDoppler};

pub const PROJECT: &str = "demo";
pub const CONFIG: &str = "dev";
/// A read/write service token for demo/dev (a fake: only the fake Doppler knows it).
pub const RW_TOKEN: &str = "dp.st.dev.FAKE-rw-token-for-tests";
/// A read-only service token for demo/dev (fake).
pub const RO_TOKEN: &str = "dp.st.dev.FAKE-ro-token-for-tests";

/// Each harness gets its own block of callback ports so tests can run in parallel.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn port_block(len: u16) -> u16 {
    if NEXT_PORT.load(Ordering::SeqCst) == 0 {
        // Below Linux's ephemeral range (32768+), where client sockets and the fakes' `:0`
        // listeners would collide with it; varied by process so parallel runs rarely meet.
        let base = 12000 + (std::process::id() % 40) as u16 * 500;
        let _ = NEXT_PORT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    }
    NEXT_PORT.fetch_add(len, Ordering::SeqCst)
}

pub struct Harness {
    pub home: tempfile::TempDir,
    pub doppler: FakeDoppler,
    pub auth: FakeAuthServer,
    pub cfg: AsConfig,
    /// First port of this harness's callback range (3 ports).
    pub port: u16,
    pub token: String,
    /// The homes of the other "machines" (`other_machine`), for `set_secret`.
    machines: std::sync::Mutex<Vec<PathBuf>>,
    /// Variables every command of this harness gets on top (`None`: removed), e.g. another
    /// store's settings.
    env: std::sync::Mutex<Vec<(String, Option<String>)>>,
}

impl Harness {
    /// Fakes started, a read/write token, client credentials stored in Doppler, and a provider
    /// file `acme.toml` (secret prefix `ACME`) whose endpoints are the fake AS.
    pub fn new(cfg: AsConfig) -> Harness {
        let doppler = FakeDoppler::start();
        doppler.add_service_token(RW_TOKEN, PROJECT, CONFIG, Access::ReadWrite);
        doppler.add_service_token(RO_TOKEN, PROJECT, CONFIG, Access::Read);
        let auth = FakeAuthServer::start(cfg.clone());
        doppler.set_secret(PROJECT, CONFIG, "ACME_CLIENT_ID", &cfg.client_id);
        if let Some(secret) = &cfg.client_secret {
            doppler.set_secret(PROJECT, CONFIG, "ACME_CLIENT_SECRET", secret);
        }
        let h = Harness {
            home: tempfile::tempdir().unwrap(),
            doppler,
            auth,
            cfg,
            port: port_block(3),
            token: RW_TOKEN.to_string(),
            machines: Default::default(),
            env: Default::default(),
        };
        std::fs::create_dir_all(h.providers_dir()).unwrap();
        h.write_provider("acme", "");
        h
    }

    /// Every later command gets `name=value` (`None`: runs without `name`).
    pub fn set_env(&self, name: &str, value: Option<&str>) {
        let mut env = self.env.lock().unwrap();
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value.map(str::to_string)));
    }

    pub fn providers_dir(&self) -> PathBuf {
        self.home.path().join("providers")
    }

    /// Writes `{name}.toml` for the fake AS, with `extra` TOML lines appended. A top-level key
    /// that `extra` sets (before its first table) replaces the default line for that key, so a
    /// quirk test can say e.g. `redirect_host = "localhost"` or `ports = "4000"`.
    pub fn write_provider(&self, name: &str, extra: &str) -> PathBuf {
        let client_auth = match self.cfg.auth {
            ClientAuth::Post => "client_secret_post",
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::None => "none",
        };
        let defaults = [
            ("name", format!("\"{name}\"")),
            ("display_name", "\"Acme\"".to_string()),
            (
                "authorization_url",
                format!("\"{}\"", self.auth.authorize_url()),
            ),
            ("token_url", format!("\"{}\"", self.auth.token_url())),
            ("client_auth", format!("\"{client_auth}\"")),
            (
                "secret_prefix",
                format!("\"{}\"", name.to_ascii_uppercase()),
            ),
            ("redirect_host", "\"127.0.0.1\"".to_string()),
            ("ports", format!("\"{}-{}\"", self.port, self.port + 2)),
        ];
        let overridden: Vec<&str> = extra
            .lines()
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        let mut text = String::new();
        for (key, value) in defaults.iter().filter(|(k, _)| !overridden.contains(k)) {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text.push_str(extra);
        let path = self.providers_dir().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn secret(&self, name: &str) -> Option<String> {
        self.doppler.secret(PROJECT, CONFIG, name)
    }

    /// Sets a secret in Doppler behind every machine's back, as another machine or a person
    /// would; the machines' token caches are dropped, since they would rightly not know.
    /// (`doppler.set_secret` leaves the caches alone.)
    pub fn set_secret(&self, name: &str, value: &str) {
        self.doppler.set_secret(PROJECT, CONFIG, name, value);
        let mut homes = vec![self.home.path().to_path_buf()];
        homes.extend(self.machines.lock().unwrap().iter().cloned());
        for home in homes {
            let _ = std::fs::remove_dir_all(home.join(".local/state/oauth-pkce/cache"));
        }
    }

    /// Stores a live grant minted by the fake AS, expiring in `expires_in` seconds.
    pub fn store_grant(&self, expires_in: i64) -> (String, String) {
        let (at, rt) = self.auth.issue_grant();
        self.set_secret("ACME_ACCESS_TOKEN", &at);
        self.set_secret("ACME_REFRESH_TOKEN", &rt);
        self.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() + expires_in).to_string());
        self.set_secret("ACME_REFRESH_LEASE", FREE_LEASE);
        (at, rt)
    }

    /// Plays another machine finishing its refresh: new tokens (valid an hour) and the lease
    /// freed. Returns the new access token.
    pub fn other_machine_refreshed(&self) -> String {
        let (at, rt) = self.auth.issue_grant();
        self.set_secret("ACME_ACCESS_TOKEN", &at);
        self.set_secret("ACME_REFRESH_TOKEN", &rt);
        self.set_secret("ACME_TOKEN_EXPIRES_AT", &(now() + 3600).to_string());
        self.set_secret("ACME_REFRESH_LEASE", FREE_LEASE);
        at
    }

    /// Whether the lease is free (`{"free":"<nonce>"}`, as oauth-pkce writes it; never empty).
    pub fn lease_is_free(&self) -> bool {
        self.secret("ACME_REFRESH_LEASE")
            .is_some_and(|v| is_free_lease(&v))
    }

    /// The state directory of this "machine" (locks and journals).
    pub fn state_dir(&self) -> PathBuf {
        self.home.path().join(".local/state/oauth-pkce")
    }

    /// The journals pending on this machine (a reserved slot, all spaces, holds nothing).
    pub fn pending_journals(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state_dir().join("journal"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| std::fs::read(p).is_ok_and(|b| b.iter().any(|c| *c != b' ')))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A second "machine": its own HOME and state dir, the same fakes and provider file.
    pub fn other_machine(&self) -> Machine<'_> {
        let home = tempfile::tempdir().unwrap();
        self.machines
            .lock()
            .unwrap()
            .push(home.path().to_path_buf());
        Machine { h: self, home }
    }

    /// The binary with a cleared environment: only PATH, HOME, the Doppler settings and the
    /// providers directory.
    pub fn cmd(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_oauth-pkce"))
    }

    /// `program` (git, kubectl, …) with the environment [`Self::cmd`] gives oauth-pkce, so
    /// that the oauth-pkce it runs finds this harness's fakes.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_STATE_HOME", self.home.path().join(".local/state"))
            .env("DOPPLER_TOKEN", &self.token)
            .env("DOPPLER_API_HOST", self.doppler.url())
            .env("OAUTH_PKCE_PROVIDERS_DIR", self.providers_dir())
            .current_dir(self.home.path())
            .stdin(Stdio::null());
        for (name, value) in self.env.lock().unwrap().iter() {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        cmd
    }

    /// Starts `token --provider acme` paused for `seconds` right after its refresh journal is
    /// written (the provider has answered; the store has not been written).
    pub fn spawn_paused_token(&self, seconds: u32, output: fn() -> Stdio) -> Child {
        self.cmd()
            .env("OAUTH_PKCE_TEST_PAUSE", format!("after-journal:{seconds}"))
            .args(["token", "--provider", "acme"])
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().unwrap())
    }

    /// Runs oauth-pkce with `args` and these variables added to its environment.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.envs(env.iter().copied());
        Run::from(cmd.args(args).output().unwrap())
    }

    /// Starts `authorize --provider acme --no-browser --timeout SECS` and returns it with the
    /// authorization URL it printed; the test plays the browser.
    pub fn start_authorize(&self, timeout_secs: u32) -> (Running, String) {
        let timeout = timeout_secs.to_string();
        let mut running = Running::spawn(self.cmd().args([
            "authorize",
            "--provider",
            "acme",
            "--no-browser",
            "--timeout",
            &timeout,
        ]));
        let url = running.wait_for_url(&self.auth.authorize_url());
        (running, url)
    }

    /// `authorize --provider acme --no-browser` with the browser played by the test: the
    /// printed URL is followed through the fake AS to the callback.
    pub fn authorize(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "authorize",
            "--provider",
            "acme",
            "--no-browser",
            "--timeout",
            "20",
        ];
        args.extend_from_slice(extra);
        let mut running = Running::spawn(self.cmd().args(&args));
        let url = running.wait_for_url(&self.auth.authorize_url());
        let page = browser::follow_authorization(&url);
        let run = running.finish();
        assert_eq!(
            page.status, 200,
            "callback page: {}\n{}",
            page.body, run.stderr
        );
        run
    }

    /// Authorizes once and checks it worked.
    pub fn authorized(&self) -> Run {
        let run = self.authorize(&[]);
        run.assert_code(0);
        run
    }
}

/// Another machine sharing this harness's Doppler and provider.
pub struct Machine<'a> {
    h: &'a Harness,
    pub home: tempfile::TempDir,
}

impl Machine<'_> {
    pub fn cmd(&self) -> Command {
        let mut cmd = self.h.cmd();
        cmd.env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_STATE_HOME", self.home.path().join(".local/state"));
        cmd
    }
}

/// A free lease as `authorize` leaves it.
pub const FREE_LEASE: &str = r#"{"free":"0123456789abcdef"}"#;

/// `{"free":"<16 hex>"}`: the value oauth-pkce writes for a free lease.
pub fn is_free_lease(value: &str) -> bool {
    value
        .strip_prefix(r#"{"free":""#)
        .and_then(|r| r.strip_suffix(r#""}"#))
        .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The executable `name` from `PATH`; panics with `install` (how to get it) when missing, so
/// that a `real` test fails rather than skips.
pub fn required_tool(name: &str, install: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: {install} (CI's .ci/run does)"))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// An error run: the message says what failed and what to do next.
    pub fn assert_error(&self, code: i32, needle: &str) -> &Run {
        self.assert_code(code);
        assert!(
            self.stderr.contains("error: "),
            "no error line:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains("hint: "),
            "no hint line:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// No secret in any output.
    pub fn assert_no_leak(&self, secrets: &[&str]) -> &Run {
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(
                !self.stdout.contains(s),
                "stdout leaks a secret:\n{}",
                self.stdout
            );
            assert!(
                !self.stderr.contains(s),
                "stderr leaks a secret:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// Runs every command at once and waits for all of them.
pub fn run_together(cmds: impl IntoIterator<Item = Command>) -> Vec<Run> {
    let children: Vec<Child> = cmds
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect()
}

/// A child whose stderr is read as it runs.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            stderr: Vec::new(),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`, returns it.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.stderr.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "no stderr line with {needle:?}; got:\n{}",
            self.stderr.join("\n")
        );
    }

    /// Writes one line to the child's stdin (spawned with `Stdio::piped()`).
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The authorization URL printed on stderr.
    pub fn wait_for_url(&mut self, authorize_url: &str) -> String {
        self.wait_for_line(authorize_url).trim().to_string()
    }

    pub fn finish(mut self) -> Run {
        let mut stdout = String::new();
        use std::io::Read as _;
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.child.wait().unwrap();
        for line in self.lines.iter() {
            self.stderr.push(line);
        }
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.stderr.join("\n"),
        }
    }
}

/// The value of `name=` in a URL's query.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Writes an executable shell script (used as `$BROWSER`).
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
