//! The command line's grammar: clap types only. `settings.rs` turns them (and the
//! environment) into settings; nothing here reads the environment or does work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use oauth_pkce::bin::PortRange;

/// `0.1.0 (1a2b3c4d 2026-12-03)`: the release and the commit it was built from (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("OAUTH_PKCE_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "oauth-pkce", version = VERSION, about, long_about = None, propagate_version = true, max_term_width = 80)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(flatten)]
    pub(crate) early: Common,
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Diagnostic logs on stderr (-v, -vv). Never shows a secret.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

/// The options of the commands that reach the store: where the tokens are kept, and the
/// providers and CA certificates to use on the way.
#[derive(Debug, Args, Default)]
pub(crate) struct Common {
    #[command(flatten)]
    pub(crate) store: StoreOpts,
    #[command(flatten)]
    pub(crate) files: ProviderFiles,
}

#[derive(Debug, Args, Default)]
pub(crate) struct StoreOpts {
    /// Where the tokens are kept: doppler (the default) or vault (Vault or OpenBao KV v2);
    /// else OAUTH_PKCE_STORE.
    #[arg(long, value_name = "STORE")]
    pub(crate) store: Option<String>,
    /// Doppler project (else DOPPLER_PROJECT, the service token's own, or `doppler setup`).
    #[arg(long, value_name = "NAME")]
    pub(crate) project: Option<String>,
    /// Doppler config (else DOPPLER_CONFIG, the service token's own, or `doppler setup`).
    #[arg(long, value_name = "NAME")]
    pub(crate) config: Option<String>,
    /// A PEM file of CA certificates to trust besides the built-in roots (repeatable; also
    /// OAUTH_PKCE_CA_FILE and SSL_CERT_FILE), e.g. for a TLS-inspecting proxy.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub(crate) ca_files: Vec<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub(crate) struct ProviderFiles {
    /// An extra provider definition (TOML); overrides a built-in one with the same name.
    #[arg(long = "provider-file", value_name = "PATH")]
    pub(crate) provider_files: Vec<PathBuf>,
}

/// The store and provider-file options as given before the command: still accepted there,
/// but listed (`--help`) only under the commands they apply to.
const EARLY: &[&str] = &["store", "project", "config", "ca_files", "provider_files"];

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Authorize in the browser once and store the tokens in Doppler.
    #[command(visible_alias = "login")]
    Authorize(AuthorizeArgs),
    /// Show what is stored for one provider, or for every provider with anything stored.
    Status(StatusArgs),
    /// Refresh now with the stored refresh token, and store the new tokens.
    Refresh(RefreshArgs),
    /// Print a valid access token, refreshing it first if it expires within the buffer.
    Token(TokenArgs),
    /// List the providers oauth-pkce knows, built-in and custom.
    Providers(ProvidersArgs),
    /// Try the whole cycle on this machine: a built-in local authorization server and an
    /// in-memory Doppler-compatible store (no Doppler account, no provider app needed).
    ///
    /// It runs the real authorize, status --check, token and refresh against them and explains
    /// each step on stderr. Nothing leaves 127.0.0.1.
    Demo(DemoArgs),
    /// Run a command with valid access tokens in its environment ({PREFIX}_ACCESS_TOKEN).
    ///
    /// Each token is refreshed first if it expires within the buffer, as `token` does. The
    /// command runs without a shell, with this terminal and environment (minus DOPPLER_TOKEN
    /// and DOPPLER_TOKEN_FILE); its exit code is oauth-pkce's (128 + N when signal N ended it).
    #[command(
        after_help = "Example:\n  oauth-pkce exec -p jobber -- sh -c 'curl -H \"Authorization: Bearer $JOBBER_ACCESS_TOKEN\" https://api.getjobber.com/api/graphql'"
    )]
    Exec(ExecArgs),
    /// Revoke the stored tokens at the provider (RFC 7009) and remove them from Doppler.
    ///
    /// The refresh token is revoked first, then the access token, at the provider's
    /// revocation_url; then ACCESS_TOKEN, REFRESH_TOKEN and TOKEN_EXPIRES_AT are emptied in one
    /// Doppler write (the client id and secret stay). If the provider refuses, Doppler is left
    /// as it was so that you can retry; --local-only skips the provider.
    Revoke(RevokeArgs),
    /// Check the setup: the Doppler token (where from, what kind, can it write), the
    /// project/config, the proxy and CA settings, a browser opener, and per provider the client
    /// credentials, free callback ports, the redirect URIs to register and the stored token.
    ///
    /// Each check says pass, warn, fail or skip, and what to do next. The write check writes
    /// a provider's REFRESH_LEASE secret to the value it already holds (a compare-and-swap that
    /// changes nothing). Exit code 0 when nothing failed (warnings allowed), else 1.
    Doctor(DoctorArgs),
    /// A local API gateway: forwards requests to the provider's API with a valid token, so
    /// the program calling it (an AI agent, a script) never holds the token.
    ///
    /// Each request needs the proxy's key (printed on stderr at start, or --key-file) in an
    /// X-OAuth-Pkce-Key header or as the first path segment. Loopback only.
    Proxy(ProxyArgs),
    /// A git credential helper: answers `get` for the hosts of a provider's `git_hosts`
    /// (github.com, gitlab.com) with a valid access token; any other host gets no answer.
    ///
    /// Set up: `git config --global credential.https://github.com.helper ''` then
    /// `git config --global --add credential.https://github.com.helper '!oauth-pkce git-credential'`.
    GitCredential(GitCredentialArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Examples:\n  oauth-pkce completions bash > ~/.local/share/bash-completion/completions/oauth-pkce\n  oauth-pkce completions zsh > \"${fpath[1]}/_oauth-pkce\"\n  oauth-pkce completions fish > ~/.config/fish/completions/oauth-pkce.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), of oauth-pkce or of one of its commands.
    #[command(
        after_help = "Examples:\n  oauth-pkce man | man -l -\n  oauth-pkce man > ~/.local/share/man/man1/oauth-pkce.1\n  oauth-pkce man exec > ~/.local/share/man/man1/oauth-pkce-exec.1"
    )]
    Man {
        /// A command (e.g. `exec`): its own page, oauth-pkce-COMMAND(1).
        command: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct GitCredentialArgs {
    /// What git asks: `get` is answered; `store` and `erase` do nothing.
    #[arg(value_enum)]
    pub(crate) action: GitAction,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Only this provider (default: every provider with anything stored in Doppler).
    #[arg(long, short = 'p')]
    pub(crate) provider: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    pub(crate) provider: ProviderArg,
    /// Only remove the tokens from Doppler; do not ask the provider to revoke them.
    #[arg(long)]
    pub(crate) local_only: bool,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// A provider whose access token the command gets as {PREFIX}_ACCESS_TOKEN (repeatable).
    #[arg(long, short = 'p', required = true)]
    pub(crate) provider: Vec<String>,
    /// Pass the store's token on to the command (DOPPLER_TOKEN and DOPPLER_TOKEN_FILE;
    /// with --store vault, VAULT_TOKEN and BAO_TOKEN), which is removed by default; e.g. for
    /// a long-running command that runs `oauth-pkce token` itself.
    #[arg(long, visible_alias = "keep-store-token")]
    pub(crate) keep_doppler_token: bool,
    /// Give the command no token: instead {PREFIX}_API_BASE, the URL of a local proxy (as
    /// `oauth-pkce proxy`) that adds the token to every request to the provider's API.
    #[arg(long)]
    pub(crate) proxy: bool,
    #[command(flatten)]
    pub(crate) buffer: BufferArg,
    #[command(flatten)]
    pub(crate) cache: CacheArg,
    #[command(flatten)]
    pub(crate) common: Common,
    /// The command and its arguments, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND",
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct ProvidersArgs {
    #[command(flatten)]
    pub(crate) json: JsonArg,
    /// Also show each provider's secrets, source and what limits a CLI flow.
    #[arg(long)]
    pub(crate) wide: bool,
    #[command(flatten)]
    pub(crate) files: ProviderFiles,
}

#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AuthorizeArgs {
    #[command(flatten)]
    pub(crate) provider: ProviderArg,
    /// Callback ports to try, first free wins: "A-B" or "A" (default: the provider's, else 3000-3010).
    #[arg(long, value_parser = parse_ports)]
    pub(crate) ports: Option<PortRange>,
    /// A scope to request instead of the provider's defaults (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,
    /// Only print the authorization URL; do not open a browser.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Also accept the final redirect URL pasted on stdin, as when the browser is on another
    /// machine (stdin is read anyway when it is a terminal).
    #[arg(long)]
    pub(crate) paste: bool,
    /// Use the device authorization grant (RFC 8628): enter a short code on any device; no
    /// callback port. Needs the provider's `device_authorization_url`.
    #[arg(long, conflicts_with_all = ["ports", "paste"])]
    pub(crate) device: bool,
    /// Seconds to wait for the browser's redirect [default: 300]; with --device, at most this
    /// (default: the code's own lifetime).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) timeout: Option<u64>,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only this provider (default: every provider with anything stored in Doppler).
    #[arg(long, short = 'p')]
    pub(crate) provider: Option<String>,
    /// Also send each provider's [check] request with the stored access token; a refused
    /// check makes the exit code 1.
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) buffer: BufferArg,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    pub(crate) provider: ProviderArg,
    /// Every provider with a refresh token in Doppler, instead of one (for cron).
    #[arg(long, group = "the_provider")]
    pub(crate) all: bool,
    /// Only refresh what is due (expires within the buffer): a keep-alive that spends
    /// nothing otherwise.
    #[arg(long)]
    pub(crate) if_due: bool,
    #[command(flatten)]
    pub(crate) buffer: BufferArg,
    #[command(flatten)]
    pub(crate) json: JsonArg,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    pub(crate) provider: ProviderArg,
    #[command(flatten)]
    pub(crate) buffer: BufferArg,
    #[command(flatten)]
    pub(crate) cache: CacheArg,
    /// The API just refused the token this printed (HTTP 401): drop this machine's cached
    /// copy, re-read Doppler, and refresh only if Doppler still holds the refused token.
    #[arg(long = "after-401")]
    pub(crate) after_401: bool,
    /// With --after-401: read the refused token from stdin (never from the command line),
    /// so that only it counts as refused, not whatever this machine cached since
    #[arg(long = "refused-token-stdin", requires = "after_401")]
    pub(crate) refused_token_stdin: bool,
    /// How to print it: the token alone, JSON, an Authorization header line, that header as
    /// JSON (for tools that run a command for request headers), or a Kubernetes
    /// ExecCredential (kubectl's `users[].user.exec`).
    #[arg(long, value_enum, default_value_t = TokenFormat::Plain)]
    pub(crate) format: TokenFormat,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GitAction {
    Get,
    Store,
    Erase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TokenFormat {
    Plain,
    Json,
    Header,
    HeadersJson,
    ExecCredential,
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    #[command(flatten)]
    pub(crate) provider: ProviderArg,
    /// Where to listen (loopback only; default: the first free of 127.0.0.1:8400-8410).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Read the key from this file (mode 0600) instead of making one up.
    #[arg(long, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// Write `http://ADDR` to this file once listening, for scripts to wait on.
    #[arg(long, value_name = "PATH")]
    pub(crate) ready_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) buffer: BufferArg,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// The one provider a command is about: `--provider NAME` (`-p`), or the name alone.
#[derive(Debug, Args)]
#[group(id = "the_provider", required = true, multiple = false)]
pub(crate) struct ProviderArg {
    /// The provider, e.g. jobber (see `oauth-pkce providers`).
    #[arg(long = "provider", short = 'p', value_name = "NAME")]
    flag: Option<String>,
    /// The provider, as `--provider` (e.g. `oauth-pkce token jobber`).
    #[arg(value_name = "PROVIDER")]
    name: Option<String>,
}

impl ProviderArg {
    /// The provider named (clap requires one, except beside `refresh --all`).
    pub(crate) fn name(&self) -> &str {
        self.given().expect("clap requires one of them")
    }

    pub(crate) fn given(&self) -> Option<&str> {
        self.flag.as_deref().or(self.name.as_deref())
    }
}

#[derive(Debug, Args)]
pub(crate) struct CacheArg {
    /// Do not use this machine's token cache (read Doppler every time).
    #[arg(long)]
    pub(crate) no_cache: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BufferArg {
    /// Refresh a token that expires within this many seconds.
    #[arg(long = "refresh-buffer", value_name = "SECONDS", default_value_t = oauth_pkce::DEFAULT_REFRESH_BUFFER)]
    pub(crate) refresh_buffer: i64,
}

fn parse_ports(text: &str) -> std::result::Result<PortRange, String> {
    PortRange::parse(text)
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Do not open a browser: the demo plays the browser itself (approves on the consent page
    /// and follows the redirect), so it runs unattended.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Seconds to wait for the sign-in in the browser.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) timeout: u64,
}

impl Cli {
    /// The grammar, with the options given before the command hidden from `--help`.
    pub(crate) fn grammar() -> clap::Command {
        EARLY
            .iter()
            .fold(<Cli as clap::CommandFactory>::command(), |cmd, id| {
                cmd.mut_arg(*id, |a| a.hide(true))
            })
    }

    /// Parses the process's arguments; on a usage error, prints it and exits 2 (clap's way).
    pub(crate) fn parse_args() -> Cli {
        let mut matches = Cli::grammar().get_matches();
        <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
            .unwrap_or_else(|e| e.exit())
    }

    /// The store and provider-file options that apply to the command, those given before
    /// it included; one that does not apply is a usage error naming it.
    pub(crate) fn options(&self) -> std::result::Result<Common, String> {
        let (store, files, name) = match &self.command {
            Command::Authorize(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Status(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Refresh(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Token(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Exec(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Revoke(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Doctor(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Proxy(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::GitCredential(a) => (Some(&a.common.store), Some(&a.common.files), ""),
            Command::Providers(a) => (None, Some(&a.files), "providers"),
            Command::Demo(_) => (None, None, "demo"),
            Command::Completions { .. } => (None, None, "completions"),
            Command::Man { .. } => (None, None, "man"),
        };
        let early = &self.early;
        let refuse = |flag: &str| {
            Err(format!(
                "{flag} does not apply to `oauth-pkce {name}`; leave it out \
                 (`oauth-pkce {name} --help` lists what does)"
            ))
        };
        let mut merged = Common::default();
        match store {
            Some(s) => {
                merged.store = StoreOpts {
                    store: s.store.clone().or_else(|| early.store.store.clone()),
                    project: s.project.clone().or_else(|| early.store.project.clone()),
                    config: s.config.clone().or_else(|| early.store.config.clone()),
                    ca_files: [&early.store.ca_files[..], &s.ca_files[..]].concat(),
                }
            }
            None => {
                let e = &early.store;
                for (given, flag) in [
                    (e.store.is_some(), "--store"),
                    (e.project.is_some(), "--project"),
                    (e.config.is_some(), "--config"),
                    (!e.ca_files.is_empty(), "--ca-file"),
                ] {
                    if given {
                        return refuse(flag);
                    }
                }
            }
        }
        match files {
            Some(f) => {
                merged.files.provider_files =
                    [&early.files.provider_files[..], &f.provider_files[..]].concat()
            }
            None if !early.files.provider_files.is_empty() => return refuse("--provider-file"),
            None => {}
        }
        Ok(merged)
    }

    /// Diagnostic verbosity (0, 1, 2+).
    pub(crate) fn verbosity(&self) -> u8 {
        self.global.verbose
    }

    /// Whether the command handles Ctrl-C itself (`exec` waits for its child instead).
    pub(crate) fn handles_interrupt(&self) -> bool {
        matches!(self.command, Command::Exec(_))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::grammar().debug_assert();
    }
}
