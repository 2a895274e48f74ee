//! The command line: clap types, the step that resolves them (plus the environment) into
//! settings, and the printing of results. stdout carries data (the token, tables, JSON);
//! everything for people goes to stderr.

mod demo;
mod spinner;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;
use serde::Serialize;

use oauth_pkce::authorize::{authorize, AuthorizeOptions};
use oauth_pkce::doppler::{DopplerSettings, SettingsInputs};
use oauth_pkce::http::{Http, NetworkSettings};
use oauth_pkce::provider::{Catalog, PortRange, Provider};
use oauth_pkce::status::{status_all, status_of, CheckResult, ProviderStatus};
use oauth_pkce::text::{mask, terminal_safe};
use oauth_pkce::{env, refresh, Context, Error, Event, Reporter, Result};

/// OAuth 2.0 Authorization Code + PKCE from the terminal, with tokens kept in Doppler.
#[derive(Debug, Parser)]
#[command(name = "oauth-pkce", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Debug, Args)]
struct Global {
    /// Diagnostic logs on stderr (-v, -vv). Never shows a secret.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Doppler project (else DOPPLER_PROJECT, the service token's own, or `doppler setup`).
    #[arg(long, global = true, value_name = "NAME")]
    project: Option<String>,
    /// Doppler config (else DOPPLER_CONFIG, the service token's own, or `doppler setup`).
    #[arg(long, global = true, value_name = "NAME")]
    config: Option<String>,
    /// An extra provider definition (TOML); overrides a built-in one with the same name.
    #[arg(long = "provider-file", global = true, value_name = "PATH")]
    provider_files: Vec<PathBuf>,
    /// A PEM file of CA certificates to trust besides the built-in roots (repeatable; also
    /// OAUTH_PKCE_CA_FILE and SSL_CERT_FILE), e.g. for a TLS-inspecting proxy.
    #[arg(long = "ca-file", global = true, value_name = "PATH")]
    ca_files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Authorize in the browser once and store the tokens in Doppler.
    Authorize(AuthorizeArgs),
    /// Show what is stored for one provider, or for every provider with anything stored.
    Status(StatusArgs),
    /// Refresh now with the stored refresh token, and store the new tokens.
    Refresh(RefreshArgs),
    /// Print a valid access token, refreshing it first if it expires within the buffer.
    Token(TokenArgs),
    /// List the providers oauth-pkce knows, built-in and custom.
    Providers(JsonArg),
    /// Try the whole cycle on this machine: a built-in local authorization server and an
    /// in-memory Doppler-compatible store (no Doppler account, no provider app needed).
    ///
    /// It runs the real authorize, status --check, token and refresh against them and explains
    /// each step on stderr. Nothing leaves 127.0.0.1; the global Doppler, provider and network
    /// options do not apply.
    Demo(demo::DemoArgs),
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
struct DoctorArgs {
    /// Only this provider (default: every provider with anything stored in Doppler).
    #[arg(long, short = 'p')]
    provider: Option<String>,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    #[arg(long, short = 'p')]
    provider: String,
    /// Only remove the tokens from Doppler; do not ask the provider to revoke them.
    #[arg(long)]
    local_only: bool,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// A provider whose access token the command gets as {PREFIX}_ACCESS_TOKEN (repeatable).
    #[arg(long, short = 'p', required = true)]
    provider: Vec<String>,
    /// Pass DOPPLER_TOKEN and DOPPLER_TOKEN_FILE on to the command (they are removed by
    /// default), e.g. for a long-running command that runs `oauth-pkce token` itself.
    #[arg(long)]
    keep_doppler_token: bool,
    #[command(flatten)]
    buffer: BufferArg,
    /// The command and its arguments, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND",
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AuthorizeArgs {
    /// The provider (see `oauth-pkce providers`).
    #[arg(long, short = 'p')]
    provider: String,
    /// Callback ports to try, first free wins: "A-B" or "A" (default: the provider's, else 3000-3010).
    #[arg(long, value_parser = parse_ports)]
    ports: Option<PortRange>,
    /// A scope to request instead of the provider's defaults (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Only print the authorization URL; do not open a browser.
    #[arg(long)]
    no_browser: bool,
    /// Also accept the final redirect URL pasted on stdin, as when the browser is on another
    /// machine (stdin is read anyway when it is a terminal).
    #[arg(long)]
    paste: bool,
    /// Use the device authorization grant (RFC 8628): enter a short code on any device; no
    /// callback port. Needs the provider's `device_authorization_url`.
    #[arg(long, conflicts_with_all = ["ports", "paste"])]
    device: bool,
    /// Seconds to wait for the browser's redirect [default: 300]; with --device, at most this
    /// (default: the code's own lifetime).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: Option<u64>,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Only this provider (default: every provider with anything stored in Doppler).
    #[arg(long, short = 'p')]
    provider: Option<String>,
    /// Also send each provider's [check] request with the stored access token; a refused
    /// check makes the exit code 1.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    buffer: BufferArg,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct RefreshArgs {
    #[arg(long, short = 'p')]
    provider: String,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[arg(long, short = 'p')]
    provider: String,
    #[command(flatten)]
    buffer: BufferArg,
}

#[derive(Debug, Args)]
struct BufferArg {
    /// Refresh a token that expires within this many seconds.
    #[arg(long = "refresh-buffer", value_name = "SECONDS", default_value_t = oauth_pkce::DEFAULT_REFRESH_BUFFER)]
    refresh_buffer: i64,
}

fn parse_ports(text: &str) -> std::result::Result<PortRange, String> {
    PortRange::parse(text)
}

impl Cli {
    /// Diagnostic verbosity (0, 1, 2+).
    pub fn verbosity(&self) -> u8 {
        self.global.verbose
    }

    /// Whether the command handles Ctrl-C itself (`exec` waits for its child instead).
    pub fn handles_interrupt(&self) -> bool {
        matches!(self.command, Command::Exec(_))
    }

    /// Runs the command; returns the process exit code.
    pub async fn run(self) -> Result<i32> {
        let global = &self.global;
        let reporter = Stderr::new(global.verbose);
        match &self.command {
            Command::Providers(args) => {
                let catalog = load_catalog(global)?;
                print_providers(&catalog, args.json);
                Ok(0)
            }
            Command::Demo(args) => demo::run(args, &reporter).await,
            Command::Authorize(args) => {
                // Refuse a provider without the flow asked for before anything else is needed.
                let catalog = load_catalog(global)?;
                let provider = catalog.get(&args.provider)?;
                if !args.device {
                    provider.ensure_loopback_flow()?;
                } else if provider.device_authorization_url.is_none() {
                    return Err(Error::NoDeviceFlow {
                        provider: provider.name.clone(),
                    });
                }
                let ctx = context(global, &args.provider, oauth_pkce::DEFAULT_REFRESH_BUFFER)?;
                let mut opts = AuthorizeOptions {
                    ports: args.ports.clone(),
                    scopes: args.scopes.clone(),
                    no_browser: args.no_browser,
                    timeout: Duration::from_secs(args.timeout.unwrap_or(300)),
                    browser_var: std::env::var(env::BROWSER).ok(),
                    paste: None,
                    remote: remote_session(),
                };
                let tokens = if args.device {
                    opts.timeout = Duration::from_secs(args.timeout.unwrap_or(3600));
                    oauth_pkce::device::authorize_device(&ctx, &opts, &reporter).await?
                } else {
                    opts.paste = pasted_lines(args.paste);
                    authorize(&ctx, &opts, &reporter).await?.tokens
                };
                let summary = Summary::new(
                    &ctx,
                    &tokens.access_token,
                    tokens.refresh_token.is_some(),
                    tokens.expires_at,
                );
                summary.print("Authorized", args.json.json);
                Ok(0)
            }
            Command::Refresh(args) => {
                let ctx = context(global, &args.provider, oauth_pkce::DEFAULT_REFRESH_BUFFER)?;
                let fresh = refresh::refresh(&ctx, &reporter).await?;
                Summary::new(&ctx, &fresh.access_token, true, fresh.expires_at)
                    .print("Refreshed", args.json.json);
                Ok(0)
            }
            Command::Exec(args) => {
                let mut contexts = Vec::new();
                for name in &args.provider {
                    contexts.push(context(global, name, args.buffer.refresh_buffer)?);
                }
                let verbose = global.verbose;
                let tokens = oauth_pkce::exec::token_env(contexts, &|| {
                    Box::new(Stderr::new(verbose)) as Box<dyn Reporter>
                })
                .await?;
                let (program, rest) = args
                    .command
                    .split_first()
                    .ok_or_else(|| Error::Usage("no command given after `--`".into()))?;
                let command = oauth_pkce::exec::Command {
                    program: program.clone(),
                    args: rest.to_vec(),
                    keep_doppler_token: args.keep_doppler_token,
                };
                oauth_pkce::exec::run(&command, &tokens).await
            }
            Command::Revoke(args) => {
                let ctx = context(global, &args.provider, oauth_pkce::DEFAULT_REFRESH_BUFFER)?;
                let done = oauth_pkce::revoke::revoke(&ctx, args.local_only, &reporter).await?;
                print_revoked(
                    &done,
                    &ctx.doppler.settings().describe_target(),
                    args.json.json,
                );
                Ok(0)
            }
            Command::Completions { shell } => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(*shell, &mut cmd, "oauth-pkce", &mut std::io::stdout());
                Ok(0)
            }
            Command::Man { command } => {
                print_man(command.as_deref())?;
                Ok(0)
            }
            Command::Doctor(args) => {
                let catalog = load_catalog(global)?;
                let provider = match &args.provider {
                    Some(name) => Some(catalog.get(name)?.clone()),
                    None => None,
                };
                let net = network(global);
                let env_credentials = oauth_pkce::credentials_from_env(std::env::vars());
                let checks = oauth_pkce::doctor::run(oauth_pkce::doctor::Inputs {
                    network: &net,
                    http: Http::with_network(&net),
                    settings: doppler_settings(global),
                    catalog: &catalog,
                    provider: provider.as_ref(),
                    env_credentials: &env_credentials,
                    browser_var: std::env::var(env::BROWSER).ok(),
                    path_var: std::env::var_os(env::PATH),
                    refresh_buffer: oauth_pkce::DEFAULT_REFRESH_BUFFER,
                })
                .await;
                print_checks(&checks, args.json.json);
                Ok(oauth_pkce::doctor::exit_code(&checks))
            }
            Command::Token(args) => {
                let ctx = context(global, &args.provider, args.buffer.refresh_buffer)?;
                let source = oauth_pkce::TokenSource::new(ctx).with_reporter(Box::new(reporter));
                let token = source.access_token().await?;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", token.expose_secret());
                Ok(0)
            }
            Command::Status(args) => {
                let buffer = args.buffer.refresh_buffer;
                let rows = match &args.provider {
                    Some(name) => {
                        let ctx = context(global, name, buffer)?;
                        refresh::push_pending(&ctx, &reporter).await?;
                        let check = args.check.then_some(&ctx.http);
                        vec![status_of(&ctx.doppler, &ctx.provider, buffer, check).await?]
                    }
                    None => {
                        let catalog = load_catalog(global)?;
                        push_all_pending(global, &catalog, &reporter).await?;
                        let doppler = doppler_client(global)?;
                        let http = http_client(global)?;
                        let check = args.check.then_some(&http);
                        status_all(&doppler, &catalog, buffer, check).await?
                    }
                };
                print_status(&rows, args.json.json);
                if rows.is_empty() {
                    eprintln!("Nothing is stored in Doppler for any known provider.");
                    eprintln!("hint: run `oauth-pkce authorize --provider NAME` (see `oauth-pkce providers`)");
                    return Ok(1);
                }
                for r in rows.iter().filter(|r| !r.usable) {
                    eprintln!(
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
                    eprintln!(
                        "{}: the token check failed ({}); run `oauth-pkce refresh --provider {}`, or `authorize` if that fails",
                        r.provider,
                        terminal_safe(detail, 200),
                        r.provider
                    );
                }
                let ok = rows.iter().all(|r| r.usable && !check_failed(r));
                Ok(if ok { 0 } else { 1 })
            }
        }
    }
}

fn load_catalog(global: &Global) -> Result<Catalog> {
    Catalog::load(
        oauth_pkce::provider::user_dir().as_deref(),
        &global.provider_files,
    )
}

/// Pushes every journal a failed store left on this machine, before `status` reads.
async fn push_all_pending(global: &Global, catalog: &Catalog, reporter: &Stderr) -> Result<()> {
    let dir = oauth_pkce::state::state_dir()?.join("journal");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for provider in catalog.iter() {
        let prefix = format!("{}-", provider.name);
        if names.iter().any(|n| n.starts_with(&prefix)) {
            let ctx = Context::with_http(
                http_client(global)?,
                doppler_settings(global)?,
                provider.clone(),
            )?;
            refresh::push_pending(&ctx, reporter).await?;
        }
    }
    Ok(())
}

fn doppler_settings(global: &Global) -> Result<DopplerSettings> {
    DopplerSettings::resolve(&SettingsInputs::from_process(
        global.project.clone(),
        global.config.clone(),
    ))
}

/// Proxies and CA files from the environment, plus `--ca-file`.
fn network(global: &Global) -> NetworkSettings {
    let mut net = NetworkSettings::from_process();
    net.ca_files.extend(global.ca_files.iter().cloned());
    net
}

fn http_client(global: &Global) -> Result<Http> {
    Http::with_network(&network(global))
}

fn doppler_client(global: &Global) -> Result<oauth_pkce::doppler::Doppler> {
    Ok(oauth_pkce::doppler::Doppler::new(
        http_client(global)?,
        doppler_settings(global)?,
    ))
}

fn find_provider(global: &Global, provider: &str) -> Result<Provider> {
    Catalog::find(
        oauth_pkce::provider::user_dir().as_deref(),
        &global.provider_files,
        provider,
    )
}

fn context(global: &Global, provider: &str, buffer: i64) -> Result<Context> {
    let provider = find_provider(global, provider)?;
    let mut ctx = Context::with_http(http_client(global)?, doppler_settings(global)?, provider)?;
    ctx.refresh_buffer = buffer;
    Ok(ctx)
}

/// Lines typed or pasted on stdin, when it is a terminal or `--paste` says so (a script's
/// closed or unrelated stdin is never read). A thread reads them; each line is a secret (it
/// may hold an authorization code).
fn pasted_lines(flag: bool) -> Option<oauth_pkce::callback::PastedLines> {
    let stdin = std::io::stdin();
    if !(flag || (stdin.is_terminal() && in_foreground())) {
        return None;
    }
    let (tx, lines) = oauth_pkce::callback::PastedLines::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut input = stdin.lock();
        loop {
            let mut line = String::new();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.blocking_send(secrecy::SecretString::from(line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Some(lines)
}

/// Whether this process is in the terminal's foreground: a background job (`… &`) reading
/// its terminal would be stopped (SIGTTIN), so it does not read.
fn in_foreground() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: tcgetpgrp and getpgrp only read process state.
        unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp() }
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Whether the browser is probably on another machine: an SSH session, or Linux without a
/// display (and no `$BROWSER`).
fn remote_session() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    set(env::SSH_CONNECTION)
        || set(env::SSH_TTY)
        || (cfg!(target_os = "linux")
            && !set(env::DISPLAY)
            && !set(env::WAYLAND_DISPLAY)
            && !set(env::BROWSER))
}

/// Prints [`Event`]s to stderr. `verbose == 0` still shows what a person needs. While a person
/// is awaited, a spinner shows the time left when stderr is a terminal; otherwise plain lines.
struct Stderr {
    verbose: u8,
    /// Spinners are drawn (stderr is a terminal and `TERM` is not `dumb`).
    animate: bool,
    colour: bool,
    /// The running spinner, and what it shows, to redraw it after a message.
    spinner: Mutex<Option<(spinner::Spinner, String, Instant)>>,
    /// The user was asked to paste a redirect URL: no animation that could draw over it.
    pasting: std::sync::atomic::AtomicBool,
}

impl Stderr {
    fn new(verbose: u8) -> Stderr {
        let term = std::env::var(env::TERM).unwrap_or_default();
        Stderr {
            verbose,
            animate: std::io::stderr().is_terminal() && term != "dumb",
            colour: std::env::var_os(env::NO_COLOR).is_none_or(|v| v.is_empty()),
            spinner: Mutex::new(None),
            pasting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Stops the spinner (its line cleared) and returns what it showed.
    fn pause(&self) -> Option<(String, Instant)> {
        let mut slot = self.spinner.lock().unwrap_or_else(|e| e.into_inner());
        slot.take().map(|(s, label, deadline)| {
            drop(s);
            (label, deadline)
        })
    }

    fn spin(&self, label: &str, deadline: Instant) {
        if self.animate && !self.pasting.load(std::sync::atomic::Ordering::Relaxed) {
            let s = spinner::Spinner::start(label.to_string(), deadline, self.colour);
            *self.spinner.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((s, label.to_string(), deadline));
        }
    }
}

impl Reporter for Stderr {
    fn event(&self, event: Event<'_>) {
        let paused = self.pause();
        let mut err = std::io::stderr().lock();
        let _ = match event {
            Event::Remote { port, redirect_uri, paste } => {
                self.pasting.store(paste, std::sync::atomic::Ordering::Relaxed);
                let second = if paste {
                    format!("or sign in wherever the browser is, then paste here the address it lands on ({redirect_uri}?code=…) and press Enter")
                } else {
                    "or run again with --paste, sign in wherever the browser is, and paste the address it lands on into oauth-pkce's stdin".to_string()
                };
                writeln!(
                    err,
                    "If the browser runs on another machine (SSH, a container), it cannot reach {redirect_uri} here:\n  - forward the port first, then open the URL on that machine:  ssh -L {port}:127.0.0.1:{port} <this host>\n  - {second}\n"
                )
            }
            Event::PasteRefused(why) => {
                let _ = writeln!(err, "The pasted address was refused: {why}. Still waiting: paste the address again, or finish in the browser.");
                drop(err);
                if let Some((label, deadline)) = paused {
                    self.spin(&label, deadline);
                }
                return;
            }
            Event::PasteAccepted => writeln!(err, "Got the authorization from the pasted address."),
            Event::DeviceCode { user_code, verification_uri, verification_uri_complete, seconds } => {
                let _ = writeln!(err, "To sign in, open {verification_uri} on any device and enter the code:\n\n    {user_code}\n");
                if let Some(complete) = verification_uri_complete {
                    let _ = writeln!(err, "(or open {complete}, which has the code filled in)");
                }
                writeln!(err, "The code expires in {} min. Enter it only if you started this sign-in yourself, just now, with oauth-pkce: a code someone sends you would sign you in on their machine.\n", seconds.div_ceil(60))
            }
            Event::SlowDown { interval } if self.verbose > 0 => {
                writeln!(err, "The provider asked to poll less often: every {interval} s now.")
            }
            Event::SlowDown { .. } => Ok(()),
            Event::AuthorizationUrl(url) => writeln!(err, "Open this URL in a browser to authorize:\n\n    {url}\n"),
            Event::PortFallback { port, first, redirect_uri } => writeln!(
                err,
                "warning: port {first} is busy, so the callback listens on {port}: the provider must accept {redirect_uri} (register it, or free port {first})"
            ),
            Event::BrowserOpened => writeln!(err, "Opened your browser."),
            Event::BrowserFailed(why) => writeln!(err, "Could not open a browser ({why}): open the URL above yourself."),
            Event::Waiting { seconds, redirect_uri } => {
                let _ = writeln!(err, "Waiting up to {seconds} s for the redirect to {redirect_uri} ...");
                drop(err);
                self.spin("Waiting for the browser", Instant::now() + Duration::from_secs(seconds));
                return;
            }
            Event::DeviceWaiting { seconds } => {
                let _ = writeln!(err, "Waiting up to {seconds} s for the sign-in to be approved ...");
                drop(err);
                self.spin("Waiting for the approval", Instant::now() + Duration::from_secs(seconds));
                return;
            }
            Event::Exchanging => writeln!(err, "Exchanging the authorization code for tokens..."),
            Event::Refreshing if self.verbose > 0 => writeln!(err, "Refreshing the access token..."),
            Event::Refreshing => Ok(()),
            Event::Warning(w) => writeln!(err, "warning: {w}"),
            _ => Ok(()),
        };
    }
}

/// What `authorize` and `refresh` print: tokens masked.
#[derive(Serialize)]
struct Summary {
    provider: String,
    access_token: String,
    refresh_token_present: bool,
    expires_at: Option<i64>,
    doppler: String,
}

impl Summary {
    fn new(
        ctx: &Context,
        access: &secrecy::SecretString,
        refresh_present: bool,
        expires_at: Option<i64>,
    ) -> Summary {
        Summary {
            provider: ctx.provider.name.clone(),
            access_token: mask(access.expose_secret()),
            refresh_token_present: refresh_present,
            expires_at,
            doppler: ctx.doppler.settings().describe_target(),
        }
    }

    fn print(&self, verb: &str, json: bool) {
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(self).unwrap_or_default()
            );
            return;
        }
        let _ = writeln!(
            out,
            "{verb} {}: tokens stored in Doppler ({})",
            self.provider, self.doppler
        );
        let _ = writeln!(out, "  access token   {}", self.access_token);
        let _ = writeln!(
            out,
            "  refresh token  {}",
            if self.refresh_token_present {
                "stored"
            } else {
                "none"
            }
        );
        let _ = writeln!(out, "  expires        {}", describe_expiry(self.expires_at));
    }
}

fn describe_expiry(expires_at: Option<i64>) -> String {
    match expires_at {
        None => "unknown".into(),
        Some(e) => format!(
            "{} ({})",
            local_time(e),
            time_left(e - oauth_pkce::token::now())
        ),
    }
}

fn local_time(epoch: i64) -> String {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_opt(epoch, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
        None => epoch.to_string(),
    }
}

/// "in 59m 10s", "expired 3m ago".
fn time_left(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let text = match a {
        0..=59 => format!("{a}s"),
        60..=3599 => format!("{}m {}s", a / 60, a % 60),
        3600..=86399 => format!("{}h {}m", a / 3600, (a % 3600) / 60),
        _ => format!("{}d {}h", a / 86400, (a % 86400) / 3600),
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("expired {text} ago")
    }
}

/// The man page of oauth-pkce, or of one of its commands (named `oauth-pkce-COMMAND`).
fn print_man(command: Option<&str>) -> Result<()> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                let known: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                Error::Usage(format!(
                    "no command `{name}` (commands: {})",
                    known.join(", ")
                ))
            })?;
            let full = format!("oauth-pkce-{name}");
            sub.display_name(full.clone()).bin_name(full)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Error::Usage(format!("cannot render the man page: {e}")))?;
    let _ = std::io::stdout().lock().write_all(&out);
    Ok(())
}

fn print_checks(checks: &[oauth_pkce::doctor::Check], json: bool) {
    use oauth_pkce::doctor::Status;
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(checks).unwrap_or_default()
        );
    } else {
        let label = |c: &oauth_pkce::doctor::Check| match &c.provider {
            Some(p) => format!("{p}: {}", c.check),
            None => c.check.clone(),
        };
        let width = checks.iter().map(|c| label(c).len()).max().unwrap_or(0);
        for c in checks {
            let status = match c.status {
                Status::Pass => "ok",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let _ = writeln!(out, "{status:<4}  {:<width$}  {}", label(c), c.detail);
            if let Some(next) = &c.next {
                let _ = writeln!(out, "      {:<width$}  next: {next}", "");
            }
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (failed, warned) = (count(Status::Fail), count(Status::Warn));
    if failed == 0 && warned == 0 {
        eprintln!("All checks passed.");
    } else {
        eprintln!("{failed} failed, {warned} with warnings.");
    }
}

fn print_revoked(done: &oauth_pkce::revoke::Revoked, target: &str, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(done).unwrap_or_default()
        );
        return;
    }
    if done.nothing_stored {
        eprintln!(
            "Nothing is stored in Doppler ({target}) for {}: nothing to revoke.",
            done.provider
        );
        return;
    }
    let at_provider = match (&done.provider_skipped, done.revoked_at_provider.as_slice()) {
        (Some(why), _) => format!("not revoked at the provider ({why})"),
        (None, []) => "nothing to revoke at the provider".to_string(),
        (None, tokens) => format!(
            "{} revoked at the provider",
            tokens
                .iter()
                .map(|t| t.replace('_', " "))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    };
    let _ = writeln!(
        out,
        "Revoked {}: {at_provider}; tokens removed from Doppler ({target})",
        done.provider
    );
}

fn print_status(rows: &[ProviderStatus], json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(rows).unwrap_or_default()
        );
        return;
    }
    if rows.is_empty() {
        return;
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.provider.clone(),
                yes(r.client_id_present).into(),
                r.access_token.clone().unwrap_or_else(|| "-".into()),
                r.expires_at
                    .map(local_time)
                    .unwrap_or_else(|| "unknown".into()),
                r.expires_in.map(time_left).unwrap_or_else(|| "-".into()),
                yes(r.refresh_token_present).into(),
                yes(r.refresh_due).into(),
                r.check.as_ref().map(describe_check).unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "PROVIDER",
        "CLIENT ID",
        "ACCESS TOKEN",
        "EXPIRES",
        "TIME LEFT",
        "REFRESH TOKEN",
        "REFRESH DUE",
        "CHECK",
    ];
    if rows.iter().any(|r| r.check.is_some()) {
        write_table(&mut out, &header, &table);
    } else {
        // Without --check, no CHECK column.
        let table: Vec<[String; 7]> = table
            .into_iter()
            .map(|row| std::array::from_fn(|i| row[i].clone()))
            .collect();
        write_table(&mut out, &std::array::from_fn(|i| header[i]), &table);
    }
}

fn describe_check(check: &oauth_pkce::status::CheckOutcome) -> String {
    match (check.result, check.http_status) {
        (CheckResult::Ok, Some(s)) => format!("ok ({s})"),
        (CheckResult::Ok, None) => "ok".into(),
        (CheckResult::Failed, Some(s)) => format!("FAILED ({s})"),
        (CheckResult::Failed, None) => "FAILED (unreachable)".into(),
        (CheckResult::Skipped, _) => format!("skipped: {}", check.detail),
    }
}

fn print_providers(catalog: &Catalog, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<&Provider> = catalog.iter().collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return;
    }
    let rows: Vec<[String; 6]> = catalog
        .iter()
        .map(|p| {
            let redirect = if p.loopback_unsupported.is_some() {
                "none: no loopback flow".to_string()
            } else {
                format!("http://{}:{}{}", p.redirect_host, p.ports, p.redirect_path)
            };
            [
                p.name.clone(),
                plain(&p.display_name),
                p.refresh_token_rotation.to_string(),
                redirect,
                format!("{}_*", p.secret_prefix),
                terminal_safe(&p.source, 80),
            ]
        })
        .collect();
    write_table(
        &mut out,
        &[
            "NAME",
            "DISPLAY NAME",
            "ROTATES REFRESH TOKENS",
            "REDIRECT URI",
            "SECRETS",
            "SOURCE",
        ],
        &rows,
    );
    // What limits a CLI flow, one paragraph per provider, below the table.
    let notes: Vec<(String, String)> = catalog
        .iter()
        .filter_map(|p| {
            let mut text = Vec::new();
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
            (!text.is_empty()).then(|| (p.name.clone(), plain(&text.join(" "))))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nLimits of a CLI flow:");
        for (name, text) in notes {
            let _ = writeln!(out, "  {name}: {text}");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_naturally() {
        assert_eq!(time_left(59), "in 59s");
        assert_eq!(time_left(3599), "in 59m 59s");
        assert_eq!(time_left(7260), "in 2h 1m");
        assert_eq!(time_left(-120), "expired 2m 0s ago");
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
