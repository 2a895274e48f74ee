//! The checks of this machine itself: its state dir, its clock against Doppler's, the
//! browser opener, the callback ports.

use super::*;

/// The state dir and what is in it (locks, journals, the token cache): directories 0700 and
/// files 0600, so no other local user can read a cached token or a pending journal.
pub(super) fn state_dir_check(root: &std::path::Path) -> Check {
    use std::os::unix::fs::PermissionsExt as _;
    let mut loose = Vec::new();
    let mut seen = 0;
    let mut visit = |path: &std::path::Path| {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            seen += 1;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 || meta.file_type().is_symlink() {
                loose.push(format!("{} ({mode:o})", path.display()));
            }
        }
    };
    visit(root);
    for sub in ["cache", "journal", "locks"] {
        let dir = root.join(sub);
        visit(&dir);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                visit(&entry.path());
            }
        }
    }
    if seen == 0 {
        return Check::new(
            "state dir",
            None,
            Status::Pass,
            format!(
                "{} does not exist yet (made 0700 when needed)",
                root.display()
            ),
        );
    }
    match loose.first() {
        None => Check::new(
            "state dir",
            None,
            Status::Pass,
            format!("{}: private (0700 dirs, 0600 files)", root.display()),
        ),
        Some(first) => Check::new(
            "state dir",
            None,
            Status::Fail,
            format!("readable by other users: {first}"),
        )
        .next(format!("chmod -R go-rwx {}", root.display())),
    }
}

/// This machine's clock against Doppler's (its `Date`): leases and expiries are judged on
/// Doppler's, so a skew is safe, but it misleads people and other tools.
pub(super) fn clock_check(clock: &oauth_pkce::bin::Clock, store: &str) -> Check {
    let skew = clock.skew();
    if !clock.is_shared() {
        return Check::new(
            "clock",
            None,
            Status::Skip,
            format!("{store}'s answer had no Date header"),
        );
    }
    if skew.abs() <= 60 {
        return Check::new(
            "clock",
            None,
            Status::Pass,
            format!("within {} s of {store}'s", skew.abs().max(1)),
        );
    }
    let how = if skew > 0 { "behind" } else { "ahead of" };
    Check::new(
        "clock",
        None,
        Status::Warn,
        format!(
            "{} s {how} {store}'s (leases and expiries use {store}'s clock)",
            skew.abs()
        ),
    )
    .next("sync this machine's clock: timedatectl set-ntp true (Linux), w32tm /resync (Windows)")
}

pub(super) fn browser_check(
    browser_var: Option<&str>,
    path: Option<&std::ffi::OsStr>,
    no_display: bool,
) -> Check {
    match find_opener(browser_var.filter(|b| !b.trim().is_empty()), path) {
        Opener::BrowserVar {
            program,
            found: Some(at),
        } => Check::new(
            "browser",
            None,
            Status::Pass,
            format!("BROWSER runs `{program}` ({})", at.display()),
        ),
        Opener::BrowserVar {
            program,
            found: None,
        } => Check::new(
            "browser",
            None,
            Status::Fail,
            format!("BROWSER names `{program}`, which is not on PATH"),
        )
        .next("fix or unset BROWSER, or run `authorize --no-browser` and open the URL yourself"),
        Opener::System {
            found: Some((name, _)),
            ..
        } if no_display => Check::new(
            "browser",
            None,
            Status::Warn,
            format!("the system opener `{name}` is there, but no display (DISPLAY and WAYLAND_DISPLAY are unset): it cannot show a browser"),
        )
        .next("run `oauth-pkce authorize --provider NAME --no-browser`, open the URL on a machine with a browser and paste back the address it ends on; or set BROWSER"),
        Opener::System {
            found: Some((name, at)),
            ..
        } => Check::new(
            "browser",
            None,
            Status::Pass,
            format!("the system opener `{name}` ({})", at.display()),
        ),
        Opener::System {
            found: None,
            candidates,
        } => Check::new(
            "browser",
            None,
            Status::Warn,
            format!(
                "no browser opener found (looked for {}; BROWSER is not set)",
                candidates.join(", ")
            ),
        )
        .next("`authorize` still prints the URL: open it in a browser on any machine that can reach this one's loopback, or set BROWSER"),
    }
}

pub(super) async fn callback_checks(provider: &Provider) -> Vec<Check> {
    if let Some(u) = &provider.loopback_unsupported {
        return vec![Check::new(
            "callback ports",
            Some(provider),
            Status::Skip,
            format!("no loopback flow: {}", u.reason),
        )
        .next(u.alternative.clone())];
    }
    let ports = &provider.ports;
    let probed = oauth_pkce::bin::probe_ports(&provider.redirect_host, ports, MAX_PORTS).await;
    let free: Vec<u16> = probed.iter().filter(|(_, f)| *f).map(|(p, _)| *p).collect();
    let busy: Vec<String> = probed
        .iter()
        .filter(|(_, f)| !*f)
        .map(|(p, _)| p.to_string())
        .collect();
    let list = |v: &[String]| v.join(", ");
    let range = format!("{} on {}", ports, provider.redirect_host);
    let ports_check = match free.first() {
        Some(&p) if p == ports.first => Check::new(
            "callback ports",
            Some(provider),
            Status::Pass,
            if busy.is_empty() {
                format!("{range}: all free; `authorize` listens on {p}")
            } else {
                format!("{range}: {p} is free (busy: {})", list(&busy))
            },
        ),
        Some(&p) => Check::new(
            "callback ports",
            Some(provider),
            Status::Warn,
            format!(
                "{range}: {} busy, so `authorize` would listen on {p}",
                list(&busy)
            ),
        )
        .next(format!(
            "free port {} (see `ss -ltnp`), or register {} too",
            ports.first,
            provider.redirect_uri(p)
        )),
        None => Check::new(
            "callback ports",
            Some(provider),
            Status::Fail,
            format!("{range}: every port is busy"),
        )
        .next("free one of them (see `ss -ltnp`), or choose others with --ports and register their redirect URIs"),
    };
    let first = provider.redirect_uri(ports.first);
    let redirect = if ports.first == ports.last {
        format!("register exactly {first} with the provider")
    } else {
        format!(
            "register {first} with the provider (and {} … {} if it matches ports exactly and {} may be busy)",
            provider.redirect_uri(ports.first + 1),
            provider.redirect_uri(ports.last),
            ports.first
        )
    };
    vec![
        ports_check,
        Check::new("redirect URI", Some(provider), Status::Pass, redirect),
    ]
}
