//! docs/ARCHITECTURE.md's invariants that a lint cannot state, checked over the source.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files of `src/` (relative paths) whose code, comments aside, contains any of `needles`.
fn files_containing(needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let mut found: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|l| needles.iter().any(|n| l.contains(n)))
        })
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    found.sort();
    found
}

#[test]
fn the_environment_is_read_only_where_the_architecture_says() {
    let readers = files_containing(&[
        "env::var",
        "env::vars",
        "current_dir()",
        "dirs::",
        "home_dir()",
    ]);
    assert_eq!(
        readers,
        [
            "src/architecture.rs",     // this test's needles
            "src/browser.rs",          // scrubs secrets from the opener's environment
            "src/cli/settings.rs",     // Settings::resolve: the run's one reader
            "src/error/tests.rs",      // UPDATE_SNAPSHOTS
            "src/http.rs",             // Http::new, for library users
            "src/lib.rs",              // SettingsInputs::from_process, for library users
            "src/provider/catalog.rs", // the default providers dir, for library users
            "src/refresh/hooks.rs",    // the debug-only test hooks
            "src/source.rs",           // TokenSource::from_env
            "src/state.rs",            // StateDir::locate
        ],
        "a new reader of the environment: resolve it in src/cli/settings.rs and pass it down"
    );
}

#[test]
fn only_the_callback_and_the_demo_listen() {
    assert_eq!(
        files_containing(&["TcpListener"]),
        [
            "src/architecture.rs",
            "src/callback/mod.rs",
            "src/callback/peer.rs", // its unit test looks up a connection of its own
            "src/cli/demo_server/mod.rs",
            "src/cli/proxy.rs",   // `oauth-pkce proxy`, loopback only
            "src/token/tests.rs", // a unit test's server that never answers
        ]
    );
}
