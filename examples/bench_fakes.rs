//! Runs the test suite's fake authorization server and fake Doppler on loopback for
//! `scripts/bench.sh`: prints `export` lines for the shell (Doppler host and token, the provider
//! directory), then serves until stdin closes, and prints the request counts to stderr.
//!
//! Usage: `cargo run --release --example bench_fakes -- DIR EXPIRES_IN`

// Test support is not the product: Cargo.toml's lints hold src/ to its invariants; the test
// harness prints, kills its children (unsafe libc calls) and shares `pub` helpers freely.
#![allow(
    unreachable_pub,
    unsafe_code,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../tests/cli/support/fake_as/mod.rs"]
mod fake_as;
#[path = "../tests/cli/support/fake_doppler.rs"]
mod fake_doppler;
#[path = "../tests/cli/support/server.rs"]
mod server;

use std::io::Read as _;

use fake_as::{AsConfig, FakeAuthServer};
use fake_doppler::{Access, FakeDoppler};

/// A fake service token: only the fake Doppler started here knows it.
const TOKEN: &str = "dp.st.bench.FAKE-rw-token-for-benchmarks"; // fake: not a real Doppler token

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("DIR"));
    let expires_in: i64 = args
        .next()
        .map(|s| s.parse().expect("EXPIRES_IN seconds"))
        .unwrap_or(3600);
    let doppler = FakeDoppler::start();
    doppler.add_service_token(TOKEN, "bench", "dev", Access::ReadWrite);
    let auth = FakeAuthServer::start(AsConfig::jobber());
    let (at, rt) = auth.issue_grant();
    let at_for_api = at.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (k, v) in [
        ("ACME_CLIENT_ID", fake_as::CLIENT_ID.to_string()),
        ("ACME_CLIENT_SECRET", fake_as::CLIENT_SECRET.to_string()),
        ("ACME_ACCESS_TOKEN", at),
        ("ACME_REFRESH_TOKEN", rt),
        ("ACME_TOKEN_EXPIRES_AT", (now + expires_in).to_string()),
        (
            "ACME_REFRESH_LEASE",
            r#"{"free":"0123456789abcdef"}"#.to_string(),
        ),
    ] {
        doppler.set_secret("bench", "dev", k, &v);
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("acme.toml"),
        format!(
            "name = \"acme\"\ndisplay_name = \"Acme\"\nauthorization_url = \"{}\"\ntoken_url = \"{}\"\napi_base_url = \"{}\"\nclient_auth = \"client_secret_post\"\nsecret_prefix = \"ACME\"\nredirect_host = \"127.0.0.1\"\nports = \"47100-47110\"\n",
            auth.authorize_url(),
            auth.token_url(),
            auth.url()
        ),
    )
    .unwrap();
    println!("export DOPPLER_API_HOST={}", doppler.url());
    println!("export DOPPLER_TOKEN={TOKEN}");
    println!("export OAUTH_PKCE_PROVIDERS_DIR={}", dir.display());
    // The fake API (the fake AS's /userinfo) and the stored (fake) token, for direct calls
    // that the proxy's are compared with.
    println!("export BENCH_API={}/userinfo", auth.url());
    println!("export BENCH_ACCESS_TOKEN={}", at_for_api);
    println!("export BENCH_READY=1");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    eprintln!(
        "requests: doppler_reads={} doppler_writes={} token_requests={} refreshes={} code_exchanges={}",
        doppler.reads(),
        doppler.writes(),
        auth.token_requests().len(),
        auth.refreshes(),
        auth.code_exchanges()
    );
}
