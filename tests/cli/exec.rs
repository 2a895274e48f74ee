//! `exec`: a command run with valid access tokens in its environment, its output and exit
//! code passed through, signals handled.

use std::os::unix::process::CommandExt as _;

use crate::support::fake_as::AsConfig;
use crate::support::{Harness, Running, PROJECT};

/// `sh -c SCRIPT` under `exec --provider acme`.
fn exec_sh(h: &Harness, extra: &[&str], script: &str) -> crate::support::Run {
    let mut args = vec!["exec", "--provider", "acme"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    h.run(&args)
}

#[test]
fn the_command_gets_the_token_and_its_output_passes_through_untouched() {
    let h = Harness::new(AsConfig::jobber());
    let (at, rt) = h.store_grant(3600);
    let run = exec_sh(
        &h,
        &[],
        r#"printf '%s\n' "$ACME_ACCESS_TOKEN"; printf 'to stderr\n' >&2; printf '%s|%s|%s\n' "${DOPPLER_TOKEN:-none}" "${DOPPLER_TOKEN_FILE:-none}" "${ACME_REFRESH_TOKEN:-none}""#,
    );
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{at}\nnone|none|none\n"));
    assert_eq!(run.stderr, "to stderr\n", "nothing from oauth-pkce itself");
    assert!(!run.stdout.contains(&rt) && !run.stderr.contains(&rt));
    // Like `token`: one Doppler read, no refresh.
    assert_eq!(h.doppler.requests().len(), 1);
    assert_eq!(h.auth.refreshes(), 0);

    // --keep-doppler-token passes the Doppler token on (for a command that runs oauth-pkce).
    let run = Running::spawn(
        h.cmd()
            .env("EXPECTED", &h.token)
            .args(["exec", "-p", "acme", "--keep-doppler-token", "--"])
            .args([
                "sh",
                "-c",
                r#"test "$DOPPLER_TOKEN" = "$EXPECTED" && echo kept"#,
            ]),
    )
    .finish();
    assert_eq!(run.stdout, "kept\n");
}

#[test]
fn arguments_reach_the_command_verbatim_without_a_shell() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let run = h.run(&[
        "exec", "-p", "acme", "--", "printf", "%s|", "a b", "-x", "--config", "$HOME", "*",
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, "a b|-x|--config|$HOME|*|");
}

#[test]
fn a_token_due_is_refreshed_first_through_the_token_path() {
    let h = Harness::new(AsConfig::jobber());
    let (old_at, _) = h.store_grant(120);
    let run = exec_sh(&h, &[], r#"printf '%s' "$ACME_ACCESS_TOKEN""#);
    run.assert_code(0);
    let new_at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_ne!(new_at, old_at);
    assert_eq!(run.stdout, new_at);
    assert_eq!(
        (h.doppler.reads(), h.auth.refreshes(), h.doppler.writes()),
        (1, 1, 2),
        "the same cost as `token`: read, lease, refresh, store"
    );
    // --refresh-buffer works as for `token`.
    let before = h.auth.refreshes();
    exec_sh(&h, &["--refresh-buffer", "999999"], "true").assert_code(0);
    assert_eq!(h.auth.refreshes(), before + 1);
}

#[test]
fn several_providers_each_set_their_own_variable() {
    let h = Harness::new(AsConfig::jobber());
    let (acme_at, _) = h.store_grant(3600);
    h.write_provider("other", "");
    let (other_at, other_rt) = h.auth.issue_grant();
    h.set_secret("OTHER_CLIENT_ID", "fake-client-id");
    h.set_secret("OTHER_ACCESS_TOKEN", &other_at);
    h.set_secret("OTHER_REFRESH_TOKEN", &other_rt);
    h.set_secret(
        "OTHER_TOKEN_EXPIRES_AT",
        &(crate::support::now() + 3600).to_string(),
    );
    let run = h.run(&[
        "exec",
        "--provider",
        "acme",
        "--provider",
        "other",
        "--provider",
        "acme",
        "--",
        "sh",
        "-c",
        r#"printf '%s\n%s\n' "$ACME_ACCESS_TOKEN" "$OTHER_ACCESS_TOKEN""#,
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{acme_at}\n{other_at}\n"));
    assert_eq!(
        h.doppler.reads(),
        1,
        "one read for both providers, acme asked once"
    );
    // Now both come from this machine's cache: no read at all.
    let run = h.run(&[
        "exec", "-p", "acme", "-p", "other", "--", "sh", "-c", "true",
    ]);
    run.assert_code(0);
    assert_eq!(h.doppler.reads(), 1);

    // Not cached, one of them due: still one read, and one refresh for the due one.
    h.set_secret(
        "ACME_TOKEN_EXPIRES_AT",
        &(crate::support::now() + 10).to_string(),
    );
    let run = h.run(&[
        "exec",
        "-p",
        "acme",
        "-p",
        "other",
        "--no-cache",
        "--",
        "sh",
        "-c",
        r#"printf '%s\n%s\n' "$ACME_ACCESS_TOKEN" "$OTHER_ACCESS_TOKEN""#,
    ]);
    run.assert_code(0);
    assert_eq!(h.doppler.reads(), 2, "{}", run.stderr);
    assert_eq!(h.auth.refreshes(), 1);
    let new_acme = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_ne!(new_acme, acme_at);
    assert_eq!(run.stdout, format!("{new_acme}\n{other_at}\n"));

    // Two providers that would set the same variable: refused, nothing run.
    h.write_provider("clash", "secret_prefix = \"ACME\"\n");
    let marker = h.home.path().join("ran");
    let run = h.run(&[
        "exec",
        "-p",
        "acme",
        "-p",
        "clash",
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    // Refused when the files are read (as by every command), before anything runs.
    run.assert_error(3, "`ACME` is also provider `acme`'s");
    assert!(!marker.exists());
}

#[test]
fn exit_codes_pass_through_and_a_signal_gives_128_plus_it() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let run = exec_sh(&h, &[], "exit 7");
    run.assert_code(7);
    assert_eq!(
        run.stderr, "",
        "a failing command is not an oauth-pkce error"
    );
    exec_sh(&h, &[], "exit 0").assert_code(0);
    exec_sh(&h, &[], "kill -TERM $$").assert_code(128 + 15);
    exec_sh(&h, &[], "kill -KILL $$").assert_code(128 + 9);
}

#[test]
fn a_command_that_cannot_start_is_a_usage_error_naming_it() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    let run = h.run(&["exec", "-p", "acme", "--", "no-such-command-8a7f", "x"]);
    run.assert_error(2, "no-such-command-8a7f");
    assert!(run.stderr.contains("was not found"), "{}", run.stderr);
    run.assert_no_leak(&[&at]);
    assert_eq!(run.stdout, "");

    let script = crate::support::script(h.home.path(), "not-executable", "echo hi");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let run = h.run(&["exec", "-p", "acme", "--", script.to_str().unwrap()]);
    run.assert_error(2, "not executable");

    // No command at all: clap's usage error.
    let run = h.run(&["exec", "-p", "acme", "--"]);
    run.assert_code(2);
    assert!(run.stderr.contains("COMMAND"), "{}", run.stderr);
}

#[test]
fn errors_before_the_command_starts_use_spec_codes_and_run_nothing() {
    let h = Harness::new(AsConfig::jobber());
    let marker = h.home.path().join("ran");
    let touch = ["--", "touch", marker.to_str().unwrap()];
    // Nothing stored: re-authorization needed (1).
    let run = h.run(&[&["exec", "-p", "acme"][..], &touch].concat());
    run.assert_error(1, "oauth-pkce authorize --provider acme");
    // Unknown provider: configuration (3).
    h.run(&[&["exec", "-p", "nope"][..], &touch].concat())
        .assert_error(3, "unknown provider");
    // Doppler refuses the token: Doppler (6).
    h.store_grant(3600);
    let run = Running::spawn(
        h.cmd()
            .env("DOPPLER_TOKEN", "dp.st.dev.unknown")
            .args([&["exec", "-p", "acme"][..], &touch].concat()),
    )
    .finish();
    run.assert_error(6, "Doppler refused");
    // A refresh refused: 1, and the command never ran.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
    h.set_secret("ACME_REFRESH_TOKEN", "RT-unknown-to-the-server");
    h.run(&[&["exec", "-p", "acme"][..], &touch].concat())
        .assert_error(1, "invalid_grant");
    assert!(!marker.exists());
    assert!(h.doppler.secret(PROJECT, "dev", "ACME_CLIENT_ID").is_some());
}

/// Runs `exec -- sh -c script` in a process group of its own, waits for the script's
/// `ready`, sends `sig` to oauth-pkce (or, with `group`, to the whole group, as a terminal's
/// Ctrl-C does) and returns how it ended.
fn exec_then_signal(h: &Harness, script: &str, sig: i32, group: bool) -> crate::support::Run {
    let mut running = Running::spawn(
        h.cmd()
            .args(["exec", "-p", "acme", "--", "sh", "-c", script])
            .process_group(0),
    );
    running.wait_for_line("ready");
    let pid = running.id() as i32;
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) on the child we spawned, or its own process group (process_group(0)).
    unsafe { libc::kill(target, sig) };
    running.finish()
}

#[test]
fn sigterm_is_forwarded_and_ctrl_c_is_left_to_the_command() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let script = r#"trap 'echo got-term >&2; exit 3' TERM; trap 'echo got-int >&2; exit 4' INT; echo ready >&2; while :; do sleep 0.05; done"#;

    // A supervisor's SIGTERM to oauth-pkce reaches the command.
    let run = exec_then_signal(&h, script, libc::SIGTERM, false);
    run.assert_code(3);
    assert!(run.stderr.contains("got-term"), "{}", run.stderr);

    // Ctrl-C in a terminal goes to the whole foreground process group: the command decides,
    // oauth-pkce waits for it and passes its code through (no "interrupted" of its own).
    let run = exec_then_signal(&h, script, libc::SIGINT, true);
    run.assert_code(4);
    assert!(run.stderr.contains("got-int"), "{}", run.stderr);
    assert!(!run.stderr.contains("interrupted"), "{}", run.stderr);
}

/// Red team R12: SIGUSR1 and SIGUSR2 sent to oauth-pkce alone would end it and orphan the
/// command; they are forwarded, and the command's code passes through.
#[test]
fn r12_sigusr1_is_forwarded_to_the_command() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    for (sig, name) in [(libc::SIGUSR1, "USR1"), (libc::SIGUSR2, "USR2")] {
        let script = format!(
            "trap 'echo got-{name} >&2; exit 5' {name}; echo ready >&2; while :; do sleep 0.05; done"
        );
        let run = exec_then_signal(&h, &script, sig, false);
        run.assert_code(5);
        assert!(
            run.stderr.contains(&format!("got-{name}")),
            "{}",
            run.stderr
        );
    }
}

/// Red team R12: the command starts without core dumps (soft limit 0) but keeps the hard limit
/// oauth-pkce was given, so it may turn them back on.
#[test]
fn r12_the_command_may_raise_its_core_limit_again() {
    let h = Harness::new(AsConfig::jobber());
    h.store_grant(3600);
    let hard = std::process::Command::new("sh")
        .args(["-c", "ulimit -H -c"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_string();
    let run = h.run(&[
        "exec",
        "-p",
        "acme",
        "--",
        "sh",
        "-c",
        "ulimit -S -c; ulimit -H -c",
    ]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("0\n{hard}\n"), "{}", run.stderr);
}

#[test]
fn exec_proxy_gives_the_command_an_api_base_and_no_token() {
    let h = Harness::new(AsConfig::jobber());
    let (at, _) = h.store_grant(3600);
    h.write_provider("acme", &format!("api_base_url = \"{}\"\n", h.auth.url()));
    let dir = h.home.path();
    // The command reports its environment, then waits while the test calls the API through
    // the base URL it was given (no HTTP client is assumed on the machine).
    let script = format!(
        "echo \"${{ACME_API_BASE}} ${{ACME_ACCESS_TOKEN:-no-token}} ${{DOPPLER_TOKEN:-no-doppler-token}}\" > '{0}/env.tmp' && mv '{0}/env.tmp' '{0}/env'; \
         while [ ! -e '{0}/done' ]; do sleep 0.05; done",
        dir.display()
    );
    let running = Running::spawn(h.cmd().args([
        "exec", "--proxy", "-p", "acme", "-p", "acme", "--", "sh", "-c", &script,
    ]));
    let env_file = dir.join("env");
    for _ in 0..200 {
        if env_file.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let env = std::fs::read_to_string(&env_file).unwrap();
    let mut words = env.split_whitespace();
    let base = words.next().unwrap().to_string();
    assert_eq!(
        words.collect::<Vec<_>>(),
        ["no-token", "no-doppler-token"],
        "{env}"
    );
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let r = crate::support::http::get(&format!("{base}/userinfo"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("user-1"), "{}", r.body);
    std::fs::write(dir.join("done"), "").unwrap();
    let run = running.finish();
    run.assert_code(0);
    run.assert_no_leak(&[&at]);
    assert_eq!(h.auth.userinfo_requests(), 1);
}
