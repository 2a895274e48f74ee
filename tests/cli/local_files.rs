//! Red team R2 and R6: what other local users can do through files. A user's provider file
//! that replaces a built-in is said, never silent; provider files and directories, and the
//! state dir, that another user owns or may write are refused; under `umask 000` everything
//! the tool creates is still private.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use crate::support::fake_as::AsConfig;
use crate::support::{Harness, Run};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Tests of another user's ownership need root (to give a file away); elsewhere they say so.
fn as_root(what: &str) -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        eprintln!("SKIPPED (needs root to chown a file to another uid): {what}");
    }
    root
}

fn chown(path: &Path, uid: u32) {
    let status = std::process::Command::new("chown")
        .arg(uid.to_string())
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn r2_a_user_file_that_replaces_a_built_in_is_said_once_and_shown() {
    let h = Harness::new(AsConfig::jobber());
    let file = h.write_provider("jobber", "secret_prefix = \"JOBBER\"\n");
    let run = h.run(&["status", "--provider", "jobber"]);
    let note = format!(
        "note: provider `jobber` is defined by {}, not the built-in preset",
        file.display()
    );
    assert_eq!(run.stderr.matches(&note).count(), 1, "{}", run.stderr);
    // exec with the provider named twice still says it once.
    let run = h.run(&["exec", "-p", "jobber", "-p", "jobber", "--", "true"]);
    assert_eq!(run.stderr.matches(&note).count(), 1, "{}", run.stderr);
    // So do the commands that act on every provider (a cron job's `refresh --all`).
    for args in [&["status"][..], &["refresh", "--all", "--if-due"]] {
        let run = h.run(args);
        assert_eq!(
            run.stderr.matches(&note).count(),
            1,
            "{args:?}: {}",
            run.stderr
        );
    }

    let providers = h.run(&["providers"]);
    providers.assert_code(0);
    assert!(
        providers.stdout.contains(&format!(
            "jobber: from {} (overrides the built-in)",
            file.display()
        )),
        "{}",
        providers.stdout
    );
    let doctor = h.run(&["doctor", "--json"]);
    let checks: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let check = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "provider file")
        .unwrap_or_else(|| panic!("no provider file check: {}", doctor.stdout));
    assert_eq!(check["status"], "warn");
    // A file with a name of its own replaces nothing and is not announced.
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let run = h.run(&["status", "--provider", "acme"]);
    run.assert_code(0);
    assert!(!run.stderr.contains("note: provider"), "{}", run.stderr);
}

fn refused(run: &Run, path: &Path, why: &str) {
    run.assert_error(3, why);
    assert!(
        run.stderr.contains(&path.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refusing it"), "{}", run.stderr);
}

#[test]
fn r2_provider_files_and_dirs_others_may_write_are_refused() {
    let h = Harness::new(AsConfig::jobber());
    let file = h.write_provider("acme", "");
    let dir = h.providers_dir();
    chmod(&dir, 0o777);
    refused(
        &h.run(&["status", "--provider", "acme"]),
        &dir,
        "is writable by other users",
    );
    // Any provider: the directory is read for every one of them.
    refused(
        &h.run(&["token", "--provider", "github"]),
        &dir,
        "is writable by other users",
    );
    chmod(&dir, 0o755);
    chmod(&file, 0o664);
    refused(
        &h.run(&["providers"]),
        &file,
        "is writable by other users (mode 664)",
    );
    chmod(&file, 0o644);
    h.run(&["providers"]).assert_code(0);
    // --provider-file follows the same rule.
    let loose = h.home.path().join("loose.toml");
    std::fs::copy(&file, &loose).unwrap();
    chmod(&loose, 0o666);
    let run = h.run(&["--provider-file", loose.to_str().unwrap(), "providers"]);
    refused(&run, &loose, "is writable by other users");

    if as_root("a provider file of another uid is refused") {
        chown(&file, 4242);
        refused(
            &h.run(&["providers"]),
            &file,
            "belongs to another user (uid 4242)",
        );
    }
}

#[test]
fn r6_a_state_dir_of_another_user_is_refused() {
    if !as_root("a state dir of another uid is refused") {
        return;
    }
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    let state = h.state_dir();
    chown(&state, 4242);
    // A refresh is due: its lock would live in the other user's directory.
    h.set_secret("ACME_TOKEN_EXPIRES_AT", "1");
    let run = h.run(&["token", "--provider", "acme"]);
    run.assert_error(3, "belongs to another user (uid 4242)");
    assert!(
        run.stderr.contains(&state.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert_eq!(h.auth.refreshes(), 0, "nothing was spent");
}

/// Under `umask 000` every directory the tool creates is 0700 and every file 0600.
#[test]
fn r6_under_umask_000_everything_created_is_private() {
    let h = Harness::new(AsConfig::jobber());
    h.authorized();
    std::fs::remove_dir_all(h.home.path().join(".local")).unwrap();
    let cmd = h.cmd();
    let bin = cmd.get_program().to_owned();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(bin)
        .args(["token", "--provider", "acme"]);
    sh.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh.current_dir(h.home.path());
    let run = Run::from(sh.output().unwrap());
    run.assert_code(0);
    let mut seen = 0;
    let mut stack = vec![h.home.path().join(".local")];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
        seen += 1;
    }
    assert!(
        seen >= 4,
        "the cache and its dirs were created ({seen} entries)"
    );
}
