//! `oauth-pkce git-credential` with the real git: `git credential fill` asks the helper as it
//! would before a push, and gets the provider's access token for a host in `git_hosts`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::fake_as::AsConfig;
use crate::support::Harness;

/// `git credential fill` for `host`, with oauth-pkce as the only helper and the harness's
/// environment; (exit code, stdout, stderr).
fn git_fill(h: &Harness, host: &str) -> (i32, String, String) {
    let ours = h.cmd();
    let bin = ours.get_program().to_string_lossy().into_owned();
    let mut git = Command::new("git");
    git.env_clear();
    for (k, v) in ours.get_envs() {
        if let Some(v) = v {
            git.env(k, v);
        }
    }
    git.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .current_dir(h.home.path())
        .args(["-c", "credential.helper="])
        .args(["-c", &format!("credential.helper=!'{bin}' git-credential")])
        .args(["credential", "fill"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = git.spawn().expect("git is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("protocol=https\nhost={host}\n\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn git_gets_the_access_token_for_a_provider_host_and_nothing_for_others() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider(
        "acme",
        "git_hosts = [\"git.acme.test\"]\ngit_username = \"oauth2\"\n",
    );
    // Nothing stored yet: no answer (git gives up without a prompt), and a hint.
    let (code, stdout, stderr) = git_fill(&h, "git.acme.test");
    assert_ne!(code, 0);
    assert!(!stdout.contains("password="), "{stdout}");
    assert!(
        stderr.contains("run `oauth-pkce authorize --provider acme`"),
        "{stderr}"
    );

    h.authorized();
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    let (code, stdout, stderr) = git_fill(&h, "git.acme.test");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("username=oauth2\n"), "{stdout}");
    assert!(stdout.contains(&format!("password={at}\n")), "{stdout}");
    let expiry: i64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password_expiry_utc="))
        .unwrap_or_else(|| panic!("no expiry: {stdout}"))
        .parse()
        .unwrap();
    assert!(expiry > crate::support::now());

    // Another host: the helper answers nothing, so git finds no credential.
    let (code, stdout, _) = git_fill(&h, "example.org");
    assert_ne!(code, 0);
    assert!(!stdout.contains("password="), "{stdout}");
    // store and erase do nothing and succeed.
    for action in ["store", "erase"] {
        let mut cmd = h.cmd();
        cmd.args(["git-credential", action]);
        crate::support::Run::from(cmd.output().unwrap()).assert_code(0);
    }
}
