//! J1: no secret in any output or file, at the highest verbosity. Every command runs with
//! sentinel secrets (the fake AS mints `*-SENTINEL-*` codes and tokens; the client secret and
//! the Doppler token are sentinels too) and everything it printed or wrote is searched.

use std::path::Path;

use crate::support::fake_as::{AsConfig, CLIENT_SECRET};
use crate::support::fake_doppler::Fault;
use crate::support::{Harness, Run, Running};

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn scan(what: &str, text: &str, secrets: &[String]) {
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !text.contains(s.as_str()),
            "{what} contains a secret ({}…):\n{text}",
            &s[..8]
        );
    }
}

#[test]
fn no_command_prints_or_writes_a_secret_even_with_vv() {
    let h = Harness::new(AsConfig::jobber());
    // Each run must get as far as it should (its exit code), or the scan proves nothing: a
    // command that fails early prints no secret because it never had one.
    let mut runs: Vec<(String, Run)> = Vec::new();
    runs.push(("authorize".into(), h.authorize(&["-vv"])));
    runs[0].1.assert_code(0);
    for (args, code) in [
        (&["status", "-vv"][..], 0),
        (&["status", "--provider", "acme", "--json", "-vv"], 0),
        (&["refresh", "--provider", "acme", "-vv"], 0),
        (&["refresh", "--provider", "acme", "--json", "-vv"], 0),
        (&["providers", "-vv"], 0),
        (&["doctor", "-vv"], 0),
        (&["doctor", "--provider", "acme", "--json", "-vv"], 0),
        (&["exec", "--provider", "acme", "-vv", "--", "true"], 0),
    ] {
        let run = h.run(args);
        assert_eq!(run.code, code, "{}: {}", args.join(" "), run.stderr);
        runs.push((args.join(" "), run));
    }
    // A failing store: the error path must not print the tokens either.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
    h.doppler.push_fault_on(
        Some("POST"),
        Some("/v3/configs/config/secrets"),
        1,
        Fault::json(500, "down"),
        20,
    );
    // (`refresh`: a `token` would print the new token, kept on this machine, and exit 0.)
    let failing = h.run(&["refresh", "--provider", "acme", "-vv"]);
    failing.assert_code(6);
    runs.push(("failing refresh".into(), failing));
    h.doppler.clear_faults();
    let token = h.run(&["token", "--provider", "acme", "-vv"]);
    token.assert_code(0);

    let mut secrets: Vec<String> = h.auth.minted();
    secrets.push(CLIENT_SECRET.to_string());
    secrets.push(h.token.clone());
    assert!(
        secrets.iter().any(|s| s.contains("CODE-SENTINEL")),
        "the scan covers codes"
    );
    for (name, run) in &runs {
        scan(&format!("{name} stdout"), &run.stdout, &secrets);
        scan(&format!("{name} stderr"), &run.stderr, &secrets);
    }
    assert!(
        runs.iter().any(|(_, r)| r.stderr.contains("DEBUG")),
        "-vv produced diagnostics"
    );
    // `token` prints the access token on stdout and nothing else anywhere.
    let at = h.secret("ACME_ACCESS_TOKEN").unwrap();
    assert_eq!(token.stdout, format!("{at}\n"));
    scan("token stderr", &token.stderr, &secrets);
    // This machine's token cache holds the access token, sealed: no secret in clear text.
    let files = files_under(h.home.path());
    assert!(
        files.iter().any(|(p, _)| p.contains("/cache/")),
        "the scan covers the cache: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in files {
        scan(&path, &String::from_utf8_lossy(&bytes), &secrets);
    }
    // `revoke` sends the tokens to the revocation endpoint and shows none of them.
    h.write_provider(
        "acme",
        &format!("revocation_url = \"{}\"\n", h.auth.revoke_url()),
    );
    let revoke = h.run(&["revoke", "--provider", "acme", "-vv"]);
    revoke.assert_code(0);
    scan("revoke stdout", &revoke.stdout, &secrets);
    scan("revoke stderr", &revoke.stderr, &secrets);
    // Files: nothing under HOME holds a secret (the journal was pushed and removed).
    for (path, bytes) in files_under(h.home.path()) {
        scan(&path, &String::from_utf8_lossy(&bytes), &secrets);
    }
}

/// A server that echoes the request into its error text (misconfigured gateways and some
/// providers do): what reaches the terminal has this request's secrets redacted, at every
/// verbosity — the code, verifier and client secret of an exchange; the refresh token and
/// client secret of a refresh (in the body or in a Basic header); the tokens sent for
/// revocation; the Doppler token of a Doppler request.
const VERBOSITIES: [&[&str]; 3] = [&[], &["-v"], &["-vv"]];

#[test]
fn secrets_a_server_echoes_back_are_redacted_at_every_verbosity() {
    use crate::support::browser;
    use crate::support::fake_as::{TokenFault, ECHO_REQUEST};
    let echo = format!(r#"{{"error":"invalid_request","error_description":"{ECHO_REQUEST}"}}"#);
    let fault = |status| TokenFault {
        status,
        body: echo.clone(),
        headers: Vec::new(),
        after_processing: false,
    };
    for config in [AsConfig::jobber(), AsConfig::basic()] {
        let h = Harness::new(config);
        let secrets = |h: &Harness| {
            let mut all = h.auth.minted();
            all.extend([CLIENT_SECRET.to_string(), h.token.clone()]);
            all
        };
        let shown = |what: &str, run: &Run, secrets: &[String]| {
            assert_ne!(run.code, 0, "{what}: {}", run.stderr);
            assert!(
                run.stderr.contains("[redacted]"),
                "{what}: the echo reaches the terminal, redacted:\n{}",
                run.stderr
            );
            scan(what, &run.stderr, secrets);
            scan(what, &run.stdout, secrets);
        };
        for verbosity in VERBOSITIES {
            // The code exchange: code, verifier (and client secret) echoed.
            h.auth.push_fault(fault(400), 1);
            let mut args = vec!["authorize", "--provider", "acme", "--no-browser"];
            args.extend(verbosity);
            let mut running = Running::spawn(h.cmd().args(args));
            let url = running.wait_for_url(&h.auth.authorize_url());
            let _page = browser::follow_authorization(&url);
            let run = running.finish();
            let stderr = run.stderr.clone();
            shown(&format!("exchange {verbosity:?}"), &run, &secrets(&h));
            assert!(stderr.contains("code_verifier=[redacted]"), "{stderr}");
        }
        h.authorized();
        for verbosity in VERBOSITIES {
            // A refresh: the refresh token still valid, and the client secret.
            h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
            h.auth.push_fault(fault(400), 1);
            let run = h.run(&[&["token", "--provider", "acme"], verbosity].concat());
            shown(&format!("refresh {verbosity:?}"), &run, &secrets(&h));
            assert!(
                run.stderr.contains("refresh_token=[redacted]"),
                "{}",
                run.stderr
            );
            // Doppler echoing the request: the Doppler token in its Authorization header.
            h.doppler.push_fault(None, Fault::json(400, "{REQUEST}"), 1);
            let run = h.run(&[&["status", "--provider", "acme"], verbosity].concat());
            shown(&format!("doppler {verbosity:?}"), &run, &secrets(&h));
            assert!(run.stderr.contains("Bearer [redacted]"), "{}", run.stderr);
        }
        // Revocation: the tokens sent to be revoked.
        h.write_provider(
            "acme",
            &format!("revocation_url = \"{}\"\n", h.auth.revoke_url()),
        );
        h.auth.push_revoke_fault(fault(503), 5);
        let run = h.run(&["revoke", "--provider", "acme", "-vv"]);
        shown("revoke", &run, &secrets(&h));
    }
}
