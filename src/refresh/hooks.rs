//! The debug-only test hooks: a pause, a clock offset, an injected fault. Release builds have
//! none of them and read none of their variables.

use std::time::Duration;

/// Test hook: `OAUTH_PKCE_TEST_PAUSE=after-journal:SECONDS` sleeps at that point so a test can
/// kill the process there. Only in debug builds (those `cargo test` runs): a release build,
/// as `cargo install` makes, has no such hook and reads no such variable.
#[cfg(not(debug_assertions))]
pub(super) fn failpoint(_: &str) {}

/// Test hook: `OAUTH_PKCE_TEST_CLOCK_OFFSET` seconds added to this machine's clock, to play a
/// machine whose clock is off. Always 0 in release builds.
pub(crate) fn clock_offset() -> i64 {
    if !cfg!(debug_assertions) {
        return 0;
    }
    std::env::var(crate::env::OAUTH_PKCE_TEST_CLOCK_OFFSET)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Test hook: whether `OAUTH_PKCE_TEST_FAULT` names `fault` (a disk refusing the journal).
/// Always false in release builds.
pub(crate) fn injected_fault(fault: &str) -> bool {
    cfg!(debug_assertions)
        && std::env::var(crate::env::OAUTH_PKCE_TEST_FAULT).is_ok_and(|f| f == fault)
}

#[cfg(debug_assertions)]
pub(super) fn failpoint(name: &str) {
    let Ok(spec) = std::env::var(crate::env::OAUTH_PKCE_TEST_PAUSE) else {
        return;
    };
    if let Some(secs) = spec.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
        if let Ok(secs) = secs.parse::<u64>() {
            std::thread::sleep(Duration::from_secs(secs));
        }
    }
}
