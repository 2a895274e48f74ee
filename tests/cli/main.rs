//! The one integration-test binary: it runs the real `oauth-pkce` executable with a cleared
//! environment and a temporary `HOME` against fake servers on `127.0.0.1:0` (a strict OAuth
//! authorization server and a Doppler-compatible API), and counts what they receive.

// Test support is not the product: Cargo.toml's lints hold src/ to its invariants; the test
// harness prints, kills its children (unsafe libc calls) and shares `pub` helpers freely.
#![allow(
    unreachable_pub,
    unsafe_code,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod support;

mod authorize;
mod cache;
mod callback;
mod completions;
mod demo;
mod device;
mod doctor;
mod doppler_fidelity;
mod errors;
mod exec;
mod fake_as_selftest;
mod fleet;
mod git;
mod headless;
mod leaks;
mod local_files;
mod network;
mod providers;
mod proxy;
mod real_as;
mod real_kubectl;
mod real_vault;
mod revoke;
mod rotation;
mod source;
mod tokens;
mod transport;
