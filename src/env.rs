//! Every environment variable oauth-pkce reads, named in one place.

/// Doppler API token (service token recommended).
pub const DOPPLER_TOKEN: &str = "DOPPLER_TOKEN";
/// A file holding the Doppler API token.
pub const DOPPLER_TOKEN_FILE: &str = "DOPPLER_TOKEN_FILE";
/// Doppler project (else the token's own, or the Doppler CLI's scoped setup).
pub const DOPPLER_PROJECT: &str = "DOPPLER_PROJECT";
/// Doppler config.
pub const DOPPLER_CONFIG: &str = "DOPPLER_CONFIG";
/// Doppler API base URL (default `https://api.doppler.com`).
pub const DOPPLER_API_HOST: &str = "DOPPLER_API_HOST";
/// Where the Doppler CLI keeps `.doppler.yaml` (default `~/.doppler`).
pub const DOPPLER_CONFIG_DIR: &str = "DOPPLER_CONFIG_DIR";
/// Which store keeps the tokens: `doppler` (the default) or `vault`.
pub const OAUTH_PKCE_STORE: &str = "OAUTH_PKCE_STORE";
/// The Vault (or OpenBao) server's address.
pub const VAULT_ADDR: &str = "VAULT_ADDR";
/// OpenBao's name for the address, read after `VAULT_ADDR`.
pub const BAO_ADDR: &str = "BAO_ADDR";
/// The Vault token (else `BAO_TOKEN`, else `~/.vault-token`).
pub const VAULT_TOKEN: &str = "VAULT_TOKEN";
/// OpenBao's name for the token, read after `VAULT_TOKEN`.
pub const BAO_TOKEN: &str = "BAO_TOKEN";
/// The Vault namespace (Vault Enterprise, OpenBao).
pub const VAULT_NAMESPACE: &str = "VAULT_NAMESPACE";
/// A PEM file of the CA that signed the Vault server's certificate.
pub const VAULT_CACERT: &str = "VAULT_CACERT";
/// The KV version 2 mount holding the tokens (default `secret`).
pub const OAUTH_PKCE_VAULT_MOUNT: &str = "OAUTH_PKCE_VAULT_MOUNT";
/// The path under the mount; each provider's secret is `{path}/{provider}` (default `oauth-pkce`).
pub const OAUTH_PKCE_VAULT_PATH: &str = "OAUTH_PKCE_VAULT_PATH";
/// Directory of the user's provider TOML files.
pub const OAUTH_PKCE_PROVIDERS_DIR: &str = "OAUTH_PKCE_PROVIDERS_DIR";
/// The browser command (`%s` is the URL).
pub const BROWSER: &str = "BROWSER";
/// Test hook: `after-journal:SECONDS` pauses a refresh right after its journal is written.
pub const OAUTH_PKCE_TEST_PAUSE: &str = "OAUTH_PKCE_TEST_PAUSE";
/// Test hook (debug builds only): `journal-write` makes the journal write fail as a full disk.
pub const OAUTH_PKCE_TEST_FAULT: &str = "OAUTH_PKCE_TEST_FAULT";
/// Test hook (debug builds only): seconds added to this machine's clock (a skewed machine).
pub const OAUTH_PKCE_TEST_CLOCK_OFFSET: &str = "OAUTH_PKCE_TEST_CLOCK_OFFSET";
/// `off` turns this machine's token cache off for every command.
pub const OAUTH_PKCE_CACHE: &str = "OAUTH_PKCE_CACHE";

/// Whether [`OAUTH_PKCE_CACHE`]'s value leaves the cache on: anything but `off` (any case).
/// The one rule for the CLI and [`crate::TokenSource::from_env`].
pub fn cache_on(value: Option<&str>) -> bool {
    value.is_none_or(|v| !v.eq_ignore_ascii_case("off"))
}
/// Disables colour.
pub const NO_COLOR: &str = "NO_COLOR";
/// `dumb` disables the spinner.
pub const TERM: &str = "TERM";
/// The terminal's width, as shells export it: long text is wrapped to it (default 80).
pub const COLUMNS: &str = "COLUMNS";
/// Set in an SSH session: the browser is probably on another machine.
pub const SSH_CONNECTION: &str = "SSH_CONNECTION";
/// Set in an interactive SSH session.
pub const SSH_TTY: &str = "SSH_TTY";
/// X11 display; with neither it nor `WAYLAND_DISPLAY` on Linux, no local browser can open.
pub const DISPLAY: &str = "DISPLAY";
/// Wayland display.
pub const WAYLAND_DISPLAY: &str = "WAYLAND_DISPLAY";
/// Where `doctor` looks for a browser opener (and the OS looks for `exec`'s command).
pub const PATH: &str = "PATH";

// ---- network (read by `http::NetworkSettings::from_process`) ------------------------------
/// A PEM file of CA certificates trusted in addition to the built-in roots (OpenSSL's name).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// oauth-pkce's own name for an extra CA bundle (also `--ca-file`).
pub const OAUTH_PKCE_CA_FILE: &str = "OAUTH_PKCE_CA_FILE";
/// Proxy for https URLs (the lower-case name is read too).
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
/// Proxy for http URLs (ignored under CGI, where `REQUEST_METHOD` is set: "httpoxy").
pub const HTTP_PROXY: &str = "HTTP_PROXY";
/// Proxy for every scheme, after the scheme's own.
pub const ALL_PROXY: &str = "ALL_PROXY";
/// Hosts reached directly (curl's rules); loopback hosts always are.
pub const NO_PROXY: &str = "NO_PROXY";
/// Set by a CGI server: `HTTP_PROXY` may then come from a request header, so it is ignored.
pub const REQUEST_METHOD: &str = "REQUEST_METHOD";

/// The variables read when resolving the store's settings (Doppler's, Vault's, the choice).
pub const STORE_VARS: &[&str] = &[
    DOPPLER_TOKEN,
    DOPPLER_TOKEN_FILE,
    DOPPLER_PROJECT,
    DOPPLER_CONFIG,
    DOPPLER_API_HOST,
    DOPPLER_CONFIG_DIR,
    OAUTH_PKCE_STORE,
    VAULT_ADDR,
    BAO_ADDR,
    VAULT_TOKEN,
    BAO_TOKEN,
    VAULT_NAMESPACE,
    VAULT_CACERT,
    OAUTH_PKCE_VAULT_MOUNT,
    OAUTH_PKCE_VAULT_PATH,
];

#[cfg(test)]
mod tests {
    #[test]
    fn only_off_turns_the_cache_off() {
        assert!(super::cache_on(None));
        assert!(super::cache_on(Some("")) && super::cache_on(Some("on")));
        assert!(!super::cache_on(Some("off")) && !super::cache_on(Some("OFF")));
    }
}
