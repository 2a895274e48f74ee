//! `oauth-pkce demo` as a new user runs it: the bare binary, an empty environment (no HOME,
//! no Doppler token, no provider files), dead proxies in the environment, and — where this
//! machine allows an unprivileged network namespace — no network but loopback at all.

use std::path::Path;
use std::process::Command;

use crate::support::{browser, http, Run, Running};

fn demo_cmd(tmp: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-pkce"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TMPDIR", tmp)
        // A proxy that does not exist: anything sent through one fails.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .current_dir(tmp)
        .arg("demo")
        .args(args);
    cmd
}

/// `cmd` inside a new network namespace with only loopback up, when this machine allows it
/// (`unshare -rn` and `ip`); else `None`.
fn isolated(cmd: &Command) -> Option<Command> {
    let usable = Command::new("unshare")
        .args(["-rn", "sh", "-c", "ip link set lo up"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        return None;
    }
    let mut wrapped = Command::new("unshare");
    wrapped
        .args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(cmd.get_current_dir().unwrap());
    Some(wrapped)
}

fn assert_whole_cycle(run: &Run) {
    run.assert_code(0);
    for step in [
        "[1/5]",
        "[2/5] authorize",
        "[3/5] status",
        "[4/5] token",
        "[5/5] refresh",
        "Done.",
    ] {
        assert!(
            run.stderr.contains(step),
            "stderr lacks {step:?}:\n{}",
            run.stderr
        );
    }
    // Data on stdout: the summary, the status table with a working check, the token alone on
    // its line, the refresh summary.
    let out = &run.stdout;
    assert!(
        out.contains("Authorized demo: tokens stored in Doppler (demo-in-memory/local)"),
        "{out}"
    );
    assert!(
        out.contains("PROVIDER") && out.contains("ok (200)"),
        "{out}"
    );
    let token = out
        .lines()
        .find(|l| l.starts_with("demo-at-"))
        .expect("the token line");
    assert!(token.len() > 40 && !token.contains(' '), "{token}");
    assert!(out.contains("Refreshed demo"), "{out}");
    // The refreshed access token is a new one (its masked form differs from the first).
    let masked: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("access token"))
        .collect();
    assert_eq!(masked.len(), 2, "{out}");
    assert_ne!(masked[0], masked[1]);
    // Every URL it mentions is on loopback.
    for word in run.stderr.split_whitespace().filter(|w| w.contains("://")) {
        let url = url::Url::parse(word.trim_matches(|c: char| c == '(' || c == ')' || c == '`'));
        if let Ok(url) = url {
            assert_eq!(url.host_str(), Some("127.0.0.1"), "{word}");
        }
    }
}

#[test]
fn demo_no_browser_runs_the_whole_cycle_unattended_on_loopback_only() {
    let tmp = tempfile::tempdir().unwrap();
    let cmd = demo_cmd(tmp.path(), &["--no-browser"]);
    let run = match isolated(&cmd) {
        Some(mut wrapped) => Run::from(wrapped.output().unwrap()),
        None => {
            eprintln!(
                "note: no unprivileged network namespace here; the demo ran with dead proxies only"
            );
            let mut cmd = cmd;
            Run::from(cmd.output().unwrap())
        }
    };
    assert_whole_cycle(&run);
    // Nothing left behind: the temporary state directory is gone.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `oauth-pkce demo` with a `$BROWSER` that only records the URL; waits for it and returns
/// the running demo and the URL the browser was given.
fn demo_with_recorded_browser(tmp: &Path) -> (Running, String) {
    let opened = tmp.join("opened");
    let browser_script = crate::support::script(
        tmp,
        "browser.sh",
        &format!("printf '%s' \"$1\" > '{}'", opened.display()),
    );
    let mut cmd = demo_cmd(tmp, &["--timeout", "30"]);
    cmd.env("BROWSER", &browser_script);
    let mut running = Running::spawn(&mut cmd);
    running.wait_for_line("Waiting up to 30 s");
    // The opener runs detached: wait for it to have written the URL.
    let mut url = String::new();
    for _ in 0..100 {
        url = std::fs::read_to_string(&opened).unwrap_or_default();
        if !url.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (running, url)
}

/// The request id of the consent page's form.
fn request_id(body: &str) -> String {
    body.split("name=\"request\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn demo_in_a_browser_shows_a_consent_page_that_approves_through_the_real_callback() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, url) = demo_with_recorded_browser(tmp.path());
    // The consent page: escaped, locked down, a form posting to /approve.
    let page = browser::open(&url);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-security-policy").is_some());
    let id = request_id(&page.body);
    let base = url.split("/authorize").next().unwrap();
    let approved = http::request(
        "POST",
        &format!("{base}/approve"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("request={id}&decision=approve"),
    );
    assert_eq!(approved.status, 303);
    let callback = approved.header("location").unwrap().to_string();
    assert!(callback.contains("&iss="), "{callback}");
    assert_eq!(browser::deliver(&callback).status, 200);
    // The same answer again is refused (one consent, one code).
    let again = http::request(
        "POST",
        &format!("{base}/approve"),
        &[],
        format!("request={id}&decision=approve"),
    );
    assert_eq!(again.status, 400);
    let run = running.finish();
    assert_whole_cycle(&run);
}

/// Issue 15: Deny on the demo's consent page ends the demo with exit 4 and a hint to run the
/// demo again (not `authorize`, which needs a real app).
#[test]
fn deny_on_the_demo_s_consent_page_says_to_run_the_demo_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, url) = demo_with_recorded_browser(tmp.path());
    let id = request_id(&browser::open(&url).body);
    let base = url.split("/authorize").next().unwrap();
    let denied = http::request(
        "POST",
        &format!("{base}/approve"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("request={id}&decision=deny"),
    );
    assert_eq!(denied.status, 303);
    browser::deliver(denied.header("location").unwrap());
    let run = running.finish();
    run.assert_error(4, "Deny was chosen on the demo's consent page");
    assert!(
        run.stderr.contains("run `oauth-pkce demo` again"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("oauth-pkce authorize"),
        "{}",
        run.stderr
    );
}
