//! `completions SHELL` and `man`: generated from the clap definitions, printed on stdout,
//! needing neither Doppler nor a provider.

use crate::support::fake_as::AsConfig;
use crate::support::Harness;

#[test]
fn completions_for_every_shell_name_every_command() {
    let h = Harness::new(AsConfig::jobber());
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = h.run(&["completions", shell]);
        run.assert_code(0);
        for word in [
            "oauth-pkce",
            "authorize",
            "exec",
            "revoke",
            "doctor",
            "provider",
        ] {
            assert!(run.stdout.contains(word), "{shell}: no {word}");
        }
        assert_eq!(run.stderr, "", "{shell}");
    }
    // The bash script is valid bash.
    let bash = h.run(&["completions", "bash"]).stdout;
    let file = h.home.path().join("oauth-pkce.bash");
    std::fs::write(&file, bash).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let run = h.run(&["completions", "tcsh"]);
    run.assert_code(2);
    assert!(run.stderr.contains("possible values"), "{}", run.stderr);
    assert!(h.doppler.requests().is_empty());
}

#[test]
fn man_pages_for_the_tool_and_each_command() {
    let h = Harness::new(AsConfig::jobber());
    let run = h.run(&["man"]);
    run.assert_code(0);
    assert!(run.stdout.contains(".TH oauth-pkce 1"), "{}", run.stdout);
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(run.stdout.contains(section), "no {section}");
    }
    for command in ["authorize", "exec", "revoke", "doctor", "completions"] {
        assert!(run.stdout.contains(command), "no {command}");
    }

    let run = h.run(&["man", "exec"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(".TH oauth-pkce-exec 1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("keep\\-doppler\\-token"),
        "{}",
        run.stdout
    );

    h.run(&["man", "nope"]).assert_error(2, "no command `nope`");
    assert!(h.doppler.requests().is_empty());
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oauth-pkce"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let prefix = concat!("oauth-pkce ", env!("CARGO_PKG_VERSION"), " (");
    assert!(
        text.starts_with(prefix) && text.trim_end().ends_with(')'),
        "{text}"
    );
    // Built from a git checkout (as here and in CI): the commit is the one checked out.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(head) = head {
        let hash = String::from_utf8(head.stdout).unwrap();
        assert!(text.contains(hash.trim()), "{text} lacks {hash}");
    }
}
