//! The tables `status`, `providers` and `doctor` print, narrow enough for an 80-column
//! terminal, and what `status` says on stderr about the rows that need attention.

use std::io::Write as _;

use oauth_pkce::bin::{terminal_safe, CheckResult, ProviderStatus};
use oauth_pkce::{Catalog, Provider};

use super::{print_json, stderr, time_left};

/// `doctor`'s checks: JSON, or one line per check (its mark and name) with what was found and
/// what to do wrapped below it to `width`; marks are ✓ ! ✗ - on a terminal without NO_COLOR,
/// words (`ok`, `WARN`, `FAIL`, `skip`) otherwise.
pub(crate) fn print_checks(
    checks: &[crate::cli::doctor::Check],
    json: bool,
    marks: bool,
    width: usize,
) {
    use crate::cli::doctor::Status;
    let mut out = std::io::stdout().lock();
    if json {
        print_json(&mut out, checks);
    } else {
        let label = |c: &crate::cli::doctor::Check| match &c.provider {
            Some(p) => format!("{p}: {}", c.check),
            None => c.check.clone(),
        };
        let text = width.saturating_sub(6).max(40);
        for c in checks {
            let status = match (c.status, marks) {
                (Status::Pass, true) => "✓",
                (Status::Warn, true) => "!",
                (Status::Fail, true) => "✗",
                (Status::Skip, true) => "-",
                (Status::Pass, false) => "ok",
                (Status::Warn, false) => "WARN",
                (Status::Fail, false) => "FAIL",
                (Status::Skip, false) => "skip",
            };
            let _ = writeln!(out, "{status:<4}  {}", label(c));
            for line in wrap(&c.detail, text) {
                let _ = writeln!(out, "      {line}");
            }
            if let Some(next) = &c.next {
                let lines = wrap(&format!("next: {next}"), text - 2);
                for (i, line) in lines.iter().enumerate() {
                    let indent = if i == 0 { "      " } else { "        " };
                    let _ = writeln!(out, "{indent}{line}");
                }
            }
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (failed, warned) = (count(Status::Fail), count(Status::Warn));
    if failed == 0 && warned == 0 {
        let _ = writeln!(stderr(), "All checks passed.");
    } else {
        let _ = writeln!(stderr(), "{failed} failed, {warned} with warnings.");
    }
}

pub(crate) fn print_status(rows: &[ProviderStatus], json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        print_json(&mut out, rows);
        return;
    }
    if rows.is_empty() {
        return;
    }
    // Narrow (under 80 columns): the token masked short, the time left, the refresh
    // token's state, this machine's cache; `--json` has every field.
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let access = r
                .access_token
                .as_deref()
                .map(|m| m.split(" (").next().unwrap_or(m).to_string())
                .unwrap_or_else(|| "-".into());
            let refresh = match (r.refresh_token_present, r.refresh_due) {
                (false, _) => "none",
                (true, true) => "due",
                (true, false) => "stored",
            };
            let expires = match (r.access_token.is_some(), r.expires_in) {
                (false, _) => "-".to_string(),
                (true, Some(secs)) => time_left(secs),
                (true, None) => "unknown".to_string(),
            };
            [
                r.provider.clone(),
                access,
                expires,
                refresh.into(),
                if r.cached_until.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
                r.check.as_ref().map(describe_check).unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "PROVIDER",
        "ACCESS TOKEN",
        "EXPIRES",
        "REFRESH",
        "CACHED",
        "CHECK",
    ];
    if rows.iter().any(|r| r.check.is_some()) {
        write_table(&mut out, &header, &table);
    } else {
        // Without --check, no CHECK column.
        let table: Vec<[String; 5]> = table
            .into_iter()
            .map(|row| std::array::from_fn(|i| row[i].clone()))
            .collect();
        write_table(&mut out, &std::array::from_fn(|i| header[i]), &table);
    }
}

fn describe_check(check: &oauth_pkce::bin::CheckOutcome) -> String {
    match (check.result, check.http_status) {
        (CheckResult::Ok, Some(s)) => format!("ok ({s})"),
        (CheckResult::Ok, None) => "ok".into(),
        (CheckResult::Failed, Some(s)) => format!("FAILED ({s})"),
        (CheckResult::Failed, None) => "FAILED (unreachable)".into(),
        // Why, in `--json` (`detail`): the table stays narrow.
        (CheckResult::Skipped, _) => "skipped".into(),
    }
}

/// The providers: a narrow table (the URI to register), or with `wide` each one's secrets,
/// source and limits wrapped to `width` columns.
pub(crate) fn print_providers(catalog: &Catalog, json: bool, wide: bool, width: usize) {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<&Provider> = catalog.iter().collect();
        print_json(&mut out, &list);
        return;
    }
    // Narrow: the name, rotation, and the one redirect URI to register with the provider.
    let rows: Vec<[String; 3]> = catalog
        .iter()
        .map(|p| {
            let redirect = if p.loopback_unsupported.is_some() {
                "none: no loopback flow".to_string()
            } else {
                p.redirect_uri(p.ports.first)
            };
            [
                p.name.clone(),
                p.refresh_token_rotation.to_string(),
                redirect,
            ]
        })
        .collect();
    write_table(
        &mut out,
        &["NAME", "ROTATES", "REGISTER REDIRECT URI"],
        &rows,
    );
    for p in catalog.iter().filter(|p| p.overrides_builtin) {
        let _ = writeln!(
            out,
            "{}: from {} (overrides the built-in)",
            p.name,
            terminal_safe(&p.source, 200)
        );
    }
    if !wide {
        let _ = writeln!(
            out,
            "\nEach provider's secrets, source and limits: `oauth-pkce providers --wide`."
        );
        return;
    }
    // What limits a CLI flow, one paragraph per provider, wrapped below the table.
    let _ = writeln!(out);
    for p in catalog.iter() {
        let mut text = vec![
            format!(
                "{}, from {}.",
                plain(&p.display_name),
                terminal_safe(&p.source, 200)
            ),
            format!("Secrets: {}_*.", p.secret_prefix),
        ];
        let sentence = |t: &str| {
            let t = t.trim();
            if t.ends_with(['.', '!', '?']) {
                t.to_string()
            } else {
                format!("{t}.")
            }
        };
        if let Some(u) = &p.loopback_unsupported {
            text.push(format!(
                "No loopback flow: {} Instead: {}",
                sentence(&u.reason),
                sentence(&u.alternative)
            ));
        }
        if let Some(l) = &p.limitations {
            text.push(sentence(l));
        }
        let _ = writeln!(out, "{}:", p.name);
        for line in wrap(&plain(&text.join(" ")), width.saturating_sub(2).max(40)) {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stays
/// whole on its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Text from a provider file on one line, without control characters.
fn plain(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn write_table<const N: usize>(
    out: &mut impl std::io::Write,
    header: &[&str; N],
    rows: &[[String; N]],
) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// A grant with less than this left (its refresh token's own expiry) is warned about.
const GRANT_WARNING: i64 = 14 * 86_400;

/// What `status` says on stderr about each row that needs attention; the exit code.
pub(crate) fn status_notes(rows: &[ProviderStatus], store: &oauth_pkce::StoreKind) -> i32 {
    let mut err = stderr();
    if rows.is_empty() {
        let _ = writeln!(err, "Nothing is stored in {store} for any known provider.");
        let _ = writeln!(
            err,
            "hint: run `oauth-pkce authorize --provider NAME` (see `oauth-pkce providers`)"
        );
        return 1;
    }
    for r in rows.iter().filter(|r| !r.client_id_present) {
        let _ = writeln!(
            err,
            "{}: no client id in {store} or the environment (a refresh needs it)",
            r.provider
        );
    }
    // Grants that die of old age or disuse: said before a script fails at 3 a.m.
    for r in rows.iter().filter(|r| r.refresh_token_present) {
        match r.refresh_token_expires_in {
            Some(left) if left <= 0 => {
                let _ = writeln!(
                    err,
                    "{}: the refresh token expired {}; run `oauth-pkce authorize --provider {}`",
                    r.provider,
                    time_left(left).trim_start_matches("expired "),
                    r.provider
                );
            }
            Some(left) if left < GRANT_WARNING && r.refresh_token_renewable == Some(true) => {
                let _ = writeln!(
                    err,
                    "warning: {}: the refresh token expires {}; a refresh renews it: `oauth-pkce refresh --provider {}` (from cron: `oauth-pkce refresh --all --if-due`)",
                    r.provider,
                    time_left(left),
                    r.provider
                );
            }
            Some(left) if left < GRANT_WARNING => {
                let why = match r.refresh_token_renewable {
                    Some(false) => " and no refresh extends it",
                    _ => "",
                };
                let _ = writeln!(
                    err,
                    "warning: {}: the refresh token expires {}{why}; sign in again before then: `oauth-pkce authorize --provider {}`",
                    r.provider,
                    time_left(left),
                    r.provider
                );
            }
            _ => {}
        }
    }
    for r in rows.iter().filter(|r| !r.usable) {
        let _ = writeln!(
            err,
            "{}: no usable token; run `oauth-pkce authorize --provider {}`",
            r.provider, r.provider
        );
    }
    let check_failed = |r: &ProviderStatus| {
        r.check
            .as_ref()
            .is_some_and(|c| c.result == CheckResult::Failed)
    };
    for r in rows.iter().filter(|r| check_failed(r)) {
        let detail = r.check.as_ref().map(|c| c.detail.as_str()).unwrap_or("");
        let _ = writeln!(
            err,
            "{}: the token check failed ({}); run `oauth-pkce refresh --provider {}`, or `authorize` if that fails",
            r.provider,
            terminal_safe(detail, 200),
            r.provider
        );
    }
    let dead = |r: &ProviderStatus| {
        r.refresh_token_present && r.refresh_token_expires_in.is_some_and(|l| l <= 0)
    };
    let ok = rows
        .iter()
        .all(|r| r.usable && !check_failed(r) && !dead(r));
    if ok {
        0
    } else {
        1
    }
}
