//! Bad input: each case exits with SPEC.md's code, says what failed and what to do next, and
//! writes nothing to Doppler.

use crate::support::fake_as::AsConfig;
use crate::support::fake_doppler::Fault;
use crate::support::{Harness, RO_TOKEN};

#[test]
fn unknown_provider_is_a_configuration_error() {
    let h = Harness::new(AsConfig::jobber());
    h.run(&["token", "--provider", "nope"])
        .assert_error(3, "unknown provider `nope`");
    assert_eq!(h.doppler.requests().len(), 0);
}

#[test]
fn a_provider_file_missing_token_url_names_the_file_and_the_key() {
    let h = Harness::new(AsConfig::jobber());
    let path = h.providers_dir().join("broken.toml");
    std::fs::write(&path, "name = \"broken\"\ndisplay_name = \"B\"\nauthorization_url = \"https://b.example/a\"\nclient_auth = \"none\"\nsecret_prefix = \"B\"\n").unwrap();
    let run = h.run(&["status", "--provider", "broken"]);
    run.assert_error(3, "missing required key `token_url`");
    assert!(run.stderr.contains("broken.toml"), "{}", run.stderr);
    // --provider-file is checked the same way.
    let other = h.home.path().join("plain-http.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&path).unwrap() + "token_url = \"http://b.example/t\"\n",
    )
    .unwrap();
    std::fs::remove_file(&path).unwrap();
    h.run(&["providers", "--provider-file", other.to_str().unwrap()])
        .assert_error(3, "key `token_url`");
}

#[test]
fn missing_client_id_is_a_configuration_error_before_any_browser_or_port() {
    let h = Harness::new(AsConfig::jobber());
    h.set_secret("ACME_CLIENT_ID", "");
    let run = h.run(&["authorize", "--provider", "acme", "--no-browser"]);
    run.assert_error(3, "ACME_CLIENT_ID");
    assert!(!run.stderr.contains("Open this URL"), "{}", run.stderr);
    assert_eq!(h.doppler.writes(), 0);
    assert_eq!(h.auth.authorize_requests().len(), 0);
}

#[test]
fn no_doppler_token_is_a_configuration_error() {
    let h = Harness::new(AsConfig::jobber());
    let run = crate::support::Run::from(
        h.cmd()
            .env_remove("DOPPLER_TOKEN")
            .args(["token", "--provider", "acme"])
            .output()
            .unwrap(),
    );
    run.assert_error(3, "no Doppler token found");
    assert!(run.stderr.contains("DOPPLER_TOKEN"), "{}", run.stderr);
}

#[test]
fn the_doppler_token_can_come_from_a_file_or_the_doppler_cli_config() {
    let h = Harness::new(AsConfig::jobber());
    h.set_secret("ACME_ACCESS_TOKEN", "at-from-doppler");
    let file = h.home.path().join("doppler-token");
    std::fs::write(&file, format!("{}\n", h.token)).unwrap();
    let from_file = || {
        crate::support::Run::from(
            h.cmd()
                .env_remove("DOPPLER_TOKEN")
                .env("DOPPLER_TOKEN_FILE", &file)
                .args(["token", "--provider", "acme"])
                .output()
                .unwrap(),
        )
    };
    // Readable by others: refused, like ssh refuses a loose key.
    from_file().assert_error(3, "chmod 600");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = from_file();
    run.assert_code(0);
    assert_eq!(run.stdout, "at-from-doppler\n");

    let dir = h.home.path().join(".doppler");
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = format!(
        "scoped:\n    /:\n        token: {}\n        api-host: {}\n",
        h.token,
        h.doppler.url()
    );
    std::fs::write(dir.join(".doppler.yaml"), yaml).unwrap();
    let run = crate::support::Run::from(
        h.cmd()
            .env_remove("DOPPLER_TOKEN")
            .env_remove("DOPPLER_API_HOST")
            .args(["token", "--provider", "acme"])
            .output()
            .unwrap(),
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "at-from-doppler\n");
}

#[test]
fn a_bad_doppler_token_is_a_doppler_error() {
    let mut h = Harness::new(AsConfig::jobber());
    h.token = "dp.st.dev.not-a-real-token".into();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(6, "Invalid Auth token");
    assert!(run.stderr.contains("DOPPLER_TOKEN"), "{}", run.stderr);
    assert_eq!(h.doppler.writes(), 0);
}

#[test]
fn a_read_only_token_that_must_write_is_told_which_token_can() {
    let mut h = Harness::new(AsConfig::jobber());
    h.token = RO_TOKEN.into();
    let (at, rt) = h.auth.issue_grant();
    h.set_secret("ACME_ACCESS_TOKEN", &at);
    h.set_secret("ACME_REFRESH_TOKEN", &rt);
    h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
    let run = h.run(&["refresh", "--provider", "acme"]);
    run.assert_error(6, "write access");
    assert!(run.stderr.contains("read/write"), "{}", run.stderr);
    run.assert_no_leak(&[&at, &rt, RO_TOKEN]);
}

#[test]
fn doppler_rate_limits_and_server_errors_are_retried_then_reported() {
    let h = Harness::new(AsConfig::jobber());
    h.set_secret("ACME_ACCESS_TOKEN", "at-value");
    h.doppler.push_fault(
        None,
        Fault::json(429, "rate limited").with_header("Retry-After", "1"),
        1,
    );
    h.doppler.push_fault(None, Fault::html(503), 1);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "at-value\n");
    assert_eq!(h.doppler.reads(), 3);

    h.doppler.push_fault(None, Fault::json(500, "boom"), 10);
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(6, "boom");
    assert_eq!(run.stdout, "");
}

#[test]
fn usage_errors_exit_2() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.run(&["authorize"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--provider"), "{}", run.stderr);
    h.run(&["authorize", "--provider", "acme", "--ports", "9-1"])
        .assert_code(2);
    h.run(&["frobnicate"]).assert_code(2);
}

#[test]
fn i1_a_doppler_that_keeps_failing_gets_exactly_four_attempts() {
    let h = Harness::new(AsConfig::jobber());
    h.set_secret("ACME_ACCESS_TOKEN", "at-value");
    h.doppler.push_fault(None, Fault::html(503), 100);
    let started = std::time::Instant::now();
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(6, "503");
    assert_eq!(h.doppler.requests().len(), 4);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// Issue 15: provider names match whatever their case, a typo gets the nearest name, the
/// provider may be given without `--provider`, and `login` is `authorize`.
#[test]
fn provider_names_fold_case_suggest_the_nearest_and_may_stand_alone() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    for args in [
        &["token", "--provider", "ACME"][..],
        &["token", "acme"],
        &["token", "Acme"],
    ] {
        let run = h.run(args);
        run.assert_code(0);
        assert_eq!(run.stdout.trim(), at, "{args:?}");
    }
    let run = h.run(&["token", "jober"]);
    run.assert_error(3, "unknown provider `jober`");
    assert!(
        run.stderr.contains("did you mean `jobber`?"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("github, gitlab"),
        "no list of every name: {}",
        run.stderr
    );
    // Both forms at once is a usage error.
    h.run(&["token", "acme", "--provider", "acme"])
        .assert_code(2);
    // `login` is `authorize` (as in gh and the Doppler CLI).
    let help = h.run(&["login", "--help"]);
    help.assert_code(0);
    assert!(help.stdout.contains("--no-browser"), "{}", help.stdout);
    for command in ["token", "refresh", "revoke", "authorize"] {
        let help = h.run(&[command, "--help"]);
        assert!(
            help.stdout.contains("The provider, e.g. jobber"),
            "{command}: {}",
            help.stdout
        );
    }
}

/// Issue 15: a personal Doppler token without a project and config is a configuration error
/// (exit 3) that says to pass them, before any request.
#[test]
fn a_personal_token_without_project_and_config_says_to_pass_them() {
    let h = Harness::new(AsConfig::jobber());
    // A fake personal token, known only to this test's fake Doppler: not a real Doppler token.
    h.doppler
        .add_personal_token("dp.pt.FAKE-personal-for-tests");
    let run = h.run_env(
        &[("DOPPLER_TOKEN", "dp.pt.FAKE-personal-for-tests")],
        &["token", "--provider", "acme"],
    );
    run.assert_error(3, "pass --project NAME --config NAME");
    assert!(h.doppler.requests().is_empty());
}

/// Red team R10: escape sequences from local configuration (a provider file's
/// `redirect_path`, the program `exec` cannot start) never reach the terminal.
#[test]
fn r10_escape_sequences_from_local_config_never_reach_the_terminal() {
    let h = Harness::new(AsConfig::jobber());
    h.write_provider("acme", "redirect_path = \"/cb\\u001b]52;c;eA==\\u0007\"\n");
    let run = h.run(&[
        "authorize",
        "--provider",
        "acme",
        "--no-browser",
        "--timeout",
        "1",
    ]);
    run.assert_code(4);
    assert!(
        run.stderr.contains("/cb]52;c;eA=="),
        "the text stays, its escapes go: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'),
        "{:?}",
        run.stderr
    );

    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let run = h.run(&[
        "exec",
        "--provider",
        "acme",
        "--",
        "no-such-\u{1b}[2J-program",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("no-such-"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}

#[test]
fn the_vault_store_needs_its_address_and_a_reachable_server_and_names_them() {
    let h = Harness::new(AsConfig::jobber());
    h.set_env("DOPPLER_TOKEN", None);
    h.set_env("VAULT_TOKEN", Some("FAKE-vault-token"));
    h.run(&["--store", "nope", "token", "--provider", "acme"])
        .assert_error(2, "--store `nope` is not a store: use `doppler` or `vault`");
    h.run_env(
        &[("OAUTH_PKCE_STORE", "vault")],
        &["token", "--provider", "acme"],
    )
    .assert_error(3, "set VAULT_ADDR (or BAO_ADDR)");
    let vault = |addr: &str, args: &[&str]| {
        h.run_env(&[("OAUTH_PKCE_STORE", "vault"), ("VAULT_ADDR", addr)], args)
    };
    vault(
        "http://vault.example:8200",
        &["status", "--provider", "acme"],
    )
    .assert_error(3, "must use https (plain http only for loopback)");
    // Nothing listens there: exit 6, with the variable to check, and the token never shown.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = vault(&addr, &["-vv", "token", "--provider", "acme"]);
    run.assert_error(6, "Vault at http://127.0.0.1:");
    assert!(run.stderr.contains("check VAULT_ADDR"), "{}", run.stderr);
    run.assert_no_leak(&["FAKE-vault-token"]);
    // No token anywhere (the temporary HOME has no ~/.vault-token).
    h.set_env("VAULT_TOKEN", None);
    vault(&addr, &["token", "--provider", "acme"]).assert_error(3, "no Vault token found");
}

/// Issue 15: each command lists only the options it uses, in 80 columns; the store and
/// provider-file options are still taken before the command, and refused (exit 2) by one
/// that has no use for them.
#[test]
fn help_lists_only_the_options_a_command_uses_and_fits_80_columns() {
    let h = Harness::new(AsConfig::jobber());
    let store = ["--store", "--project", "--config", "--ca-file"];
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "",
            &["--verbose"],
            &["--project", "--provider-file", "--store"],
        ),
        (
            "demo",
            &["--no-browser"],
            &[&store[..], &["--provider-file"]].concat(),
        ),
        (
            "completions",
            &[],
            &[&store[..], &["--provider-file"]].concat(),
        ),
        ("man", &[], &[&store[..], &["--provider-file"]].concat()),
        ("providers", &["--provider-file"], &store),
        ("token", &[&store[..], &["--provider-file"]].concat(), &[]),
        ("status", &[&store[..], &["--provider-file"]].concat(), &[]),
        (
            "git-credential",
            &[&store[..], &["--provider-file"]].concat(),
            &[],
        ),
    ];
    for (command, listed, absent) in cases {
        let args: Vec<&str> = [*command, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let help = h.run(&args);
        help.assert_code(0);
        for option in *listed {
            assert!(
                help.stdout.contains(option),
                "{command} {option}: {}",
                help.stdout
            );
        }
        for option in *absent {
            assert!(
                !help.stdout.contains(option),
                "{command} {option}: {}",
                help.stdout
            );
        }
        let wide: Vec<&str> = help
            .stdout
            .lines()
            .filter(|l| l.chars().count() > 80)
            .collect();
        assert!(wide.is_empty(), "{command}: {wide:#?}");
    }

    let run = h.run(&["--project", "x", "providers"]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("--project does not apply to `oauth-pkce providers`"),
        "{}",
        run.stderr
    );
    h.run(&["demo", "--config", "x"]).assert_code(2);
    h.run(&["--store", "vault", "completions", "bash"])
        .assert_code(2);
    h.run(&["--ca-file", "x.pem", "man"]).assert_code(2);
    // Before the command or after it, the same.
    let (at, _) = h.store_grant(3600);
    for args in [
        &["--config", crate::support::CONFIG, "token", "acme"][..],
        &["token", "acme", "--config", crate::support::CONFIG][..],
    ] {
        let run = h.run(args);
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{at}\n"));
    }
    let run = h.run(&["--config", "nope", "token", "acme", "--no-cache"]);
    assert_ne!(run.code, 0, "the early --config is used: {}", run.stderr);
}
