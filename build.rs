//! Names the commit in `oauth-pkce --version` (`0.1.0 (1a2b3c4d 2026-12-03)`): from git when
//! building a checkout, from `OAUTH_PKCE_COMMIT` when a packager sets it, else "no commit"
//! (a build from the crates.io package). No dependency: it only runs `git`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OAUTH_PKCE_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = std::env::var("OAUTH_PKCE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let hash = git(&["rev-parse", "--short=8", "HEAD"])?;
            let date = git(&["show", "-s", "--format=%cs", "HEAD"]).unwrap_or_default();
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
            Some(format!(
                "{hash}{} {date}",
                if dirty { "-modified" } else { "" }
            ))
        })
        .unwrap_or_else(|| "no commit".into());
    println!("cargo:rustc-env=OAUTH_PKCE_COMMIT={commit}");
}
