//! The command line: parse ([`args`]) → resolve settings once ([`settings`]) → run one small
//! function per command → print ([`output`]). stdout carries data (the token, tables, JSON);
//! everything for people goes to stderr.

mod args;
mod demo;
mod demo_server;
mod doctor;
mod exec;
mod git;
mod output;
mod proxy;
mod settings;
mod spinner;

use std::io::IsTerminal as _;
use std::time::Duration;

use oauth_pkce::bin::{authorize, refresh, status_all, status_of, AuthorizeOptions};
use oauth_pkce::{Catalog, Error, Reporter, Result, DEFAULT_REFRESH_BUFFER};

pub(crate) use args::Cli;
use args::{
    AuthorizeArgs, Command, DoctorArgs, ExecArgs, ProxyArgs, RefreshArgs, RevokeArgs, StatusArgs,
    TokenArgs,
};
use output::{Stderr, Summary};
use settings::{Ready, Settings};

impl Cli {
    /// Runs the command; returns the process exit code.
    pub(crate) async fn run(self) -> Result<i32> {
        let options = self.options().map_err(Error::Usage)?;
        // The commands that need no settings.
        match &self.command {
            Command::Completions { shell } => {
                let mut cmd = Cli::grammar();
                clap_complete::generate(*shell, &mut cmd, "oauth-pkce", &mut std::io::stdout());
                return Ok(0);
            }
            Command::Man { command } => {
                output::print_man(command.as_deref())?;
                return Ok(0);
            }
            _ => {}
        }
        let settings = Settings::resolve(self.global.verbose, &options);
        match &self.command {
            Command::Providers(args) => {
                let catalog = settings.catalog()?;
                output::print_providers(&catalog, args.json.json, args.wide, settings.columns);
                Ok(0)
            }
            Command::Demo(args) => {
                let reporter = settings.reporter();
                demo::run(args, settings.browser_var, &reporter).await
            }
            Command::Authorize(args) => run_authorize(args, settings).await,
            Command::Refresh(args) => run_refresh(args, settings).await,
            Command::Exec(args) => run_exec(args, settings).await,
            Command::Revoke(args) => run_revoke(args, settings).await,
            Command::Doctor(args) => run_doctor(args, settings).await,
            Command::Token(args) => run_token(args, settings).await,
            Command::Status(args) => run_status(args, settings).await,
            Command::GitCredential(args) => git::credential(args.action, settings).await,
            Command::Proxy(args) => run_proxy(args, settings).await,
            Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
        }
    }
}

async fn run_authorize(args: &AuthorizeArgs, settings: Settings) -> Result<i32> {
    // Refuse a provider without the flow asked for before anything else is needed.
    let provider = settings.provider(args.provider.name())?;
    if !args.device {
        provider.ensure_loopback_flow()?;
    } else if provider.device_authorization_url.is_none() {
        return Err(Error::NoDeviceFlow {
            provider: provider.name.clone(),
        });
    }
    let reporter = settings.reporter();
    let mut opts = AuthorizeOptions {
        ports: args.ports.clone(),
        scopes: args.scopes.clone(),
        no_browser: args.no_browser,
        timeout: Duration::from_secs(args.timeout.unwrap_or(300)),
        browser_var: settings.browser_var.clone(),
        paste: None,
        remote: settings.remote,
    };
    let ctx = settings.ready()?.context(provider, DEFAULT_REFRESH_BUFFER);
    let tokens = if args.device {
        opts.timeout = Duration::from_secs(args.timeout.unwrap_or(3600));
        oauth_pkce::bin::authorize_device(&ctx, &opts, &reporter).await?
    } else {
        opts.paste = pasted_lines(args.paste);
        authorize(&ctx, &opts, &reporter).await?.tokens
    };
    let refresh_present = tokens.refresh_token.is_some();
    Summary::new(
        &ctx,
        &tokens.access_token,
        refresh_present,
        tokens.expires_at,
    )
    .print("Authorized", args.json.json);
    Ok(0)
}

async fn run_refresh(args: &RefreshArgs, settings: Settings) -> Result<i32> {
    let buffer = args.buffer.refresh_buffer;
    let reporter = settings.reporter();
    let Some(name) = args.provider.given() else {
        return refresh_all(args, settings).await;
    };
    let provider = settings.provider(name)?;
    let ctx = settings.ready()?.context(provider, buffer);
    let mut fresh = if args.if_due {
        refresh::if_due(&ctx, &reporter).await?
    } else {
        refresh::refresh(&ctx, &reporter).await?
    };
    // Not due, but a sliding grant near its end is renewed too. That needs the refresh
    // token's expiry, which only the store holds: one read, for providers a refresh can
    // renew; if it fails, the valid token above stands.
    let renewable = ctx.provider.lifetime_from() == Some(oauth_pkce::LifetimeFrom::Refresh);
    if args.if_due && !fresh.refreshed && renewable {
        match status_of(&ctx.store, &ctx.provider, buffer, None).await {
            Ok(row) if keep_alive_due(&ctx.provider, &row) => {
                fresh = refresh::refresh(&ctx, &reporter).await?;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("no keep-alive check: {e}"),
        }
    }
    let verb = if fresh.refreshed || !args.if_due {
        "Refreshed"
    } else {
        "Still valid"
    };
    Summary::new(&ctx, &fresh.access_token, true, fresh.expires_at).print(verb, args.json.json);
    Ok(0)
}

/// Whether `refresh --if-due` refreshes a provider whose access token is not due: its
/// refresh token dies soon and a refresh gives it a new lifetime.
fn keep_alive_due(provider: &oauth_pkce::Provider, row: &oauth_pkce::bin::ProviderStatus) -> bool {
    row.refresh_token_present
        && row
            .refresh_token_expires_in
            .is_some_and(|left| provider.keep_alive_due(left))
}

/// `refresh --all [--if-due]`: every provider with a refresh token in Doppler (one read
/// finds them), one after the other; a failure is reported and the others still run; the
/// exit code is the first failure's.
async fn refresh_all(args: &RefreshArgs, settings: Settings) -> Result<i32> {
    let buffer = args.buffer.refresh_buffer;
    let catalog = settings.catalog()?;
    output::overrides(&catalog);
    let reporter = settings.reporter();
    let ready = settings.ready()?;
    let rows = status_all(&ready.store(), &catalog, buffer, None).await?;
    let mut code = 0;
    for row in rows.iter().filter(|r| r.refresh_token_present) {
        let provider = catalog.get(&row.provider)?.clone();
        let ctx = ready.context(provider, buffer);
        let done = if args.if_due && !keep_alive_due(&ctx.provider, row) {
            refresh::if_due(&ctx, &reporter).await
        } else {
            refresh::refresh(&ctx, &reporter).await
        };
        match done {
            Ok(fresh) => {
                let verb = if fresh.refreshed {
                    "Refreshed"
                } else {
                    "Still valid"
                };
                Summary::new(&ctx, &fresh.access_token, true, fresh.expires_at)
                    .print(verb, args.json.json);
            }
            Err(e) => {
                output::error_of(&row.provider, &e);
                if code == 0 {
                    code = e.exit_code();
                }
            }
        }
    }
    Ok(code)
}

async fn run_proxy(args: &ProxyArgs, settings: Settings) -> Result<i32> {
    let provider = settings.provider(args.provider.name())?;
    let key = match &args.key_file {
        Some(path) => Some(read_key(path)?),
        None => None,
    };
    let reporter = settings.reporter();
    let ctx = settings
        .ready()?
        .context(provider, args.buffer.refresh_buffer);
    let source = oauth_pkce::TokenSource::new(ctx).with_reporter(Box::new(reporter));
    let options = proxy::Options {
        listen: args.listen,
        key,
        ready_file: args.ready_file.clone(),
    };
    proxy::run(source, options).await
}

/// The proxy's key from `path`: a file only its owner may read, holding one line.
fn read_key(path: &std::path::Path) -> Result<secrecy::SecretString> {
    let bad = |why: String| Error::Usage(format!("--key-file {}: {why}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(format!(
                "others may read it (mode {:o}); run `chmod 600 {}`",
                meta.permissions().mode() & 0o777,
                path.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let key = text.trim();
    if key.len() < 16 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "the key must be one line of at least 16 printable characters".into(),
        ));
    }
    Ok(secrecy::SecretString::from(key.to_string()))
}

async fn run_token(args: &TokenArgs, settings: Settings) -> Result<i32> {
    let provider = settings.provider(args.provider.name())?;
    let reporter = settings.reporter();
    let mut ctx = settings
        .ready()?
        .context(provider, args.buffer.refresh_buffer);
    ctx.cache &= !args.cache.no_cache;
    let fresh = if args.after_401 {
        let refused = match args.refused_token_stdin {
            true => Some(read_refused_token()?),
            false => None,
        };
        refresh::after_unauthorized(&ctx, refused, &reporter).await?
    } else {
        refresh::token(&ctx, &reporter).await?
    };
    output::print_token(&fresh, &ctx.provider.name, args.format);
    Ok(0)
}

/// `--refused-token-stdin`: the token on stdin (a line; at most 16 KiB, surrounding
/// whitespace dropped).
fn read_refused_token() -> Result<secrecy::SecretString> {
    use std::io::Read as _;
    const LIMIT: u64 = 16 * 1024;
    let mut text = String::new();
    std::io::stdin()
        .take(LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::Usage(format!("--refused-token-stdin: could not read stdin: {e}")))?;
    let token = text.trim();
    // Cut short, it would match no stored token, and the refused one would come back.
    if text.len() as u64 > LIMIT || token.is_empty() || token.contains(char::is_whitespace) {
        return Err(Error::Usage(
            "--refused-token-stdin: stdin must hold the refused access token, alone".into(),
        ));
    }
    Ok(secrecy::SecretString::from(token.to_string()))
}

async fn run_exec(args: &ExecArgs, settings: Settings) -> Result<i32> {
    let mut providers = Vec::new();
    for name in &args.provider {
        providers.push(settings.provider(name)?);
    }
    let reporters = settings.reporters();
    let ready = settings.ready()?;
    let contexts: Vec<oauth_pkce::Context> = providers
        .into_iter()
        .map(|p| {
            let mut ctx = ready.context(p, args.buffer.refresh_buffer);
            ctx.cache &= !args.cache.no_cache;
            ctx
        })
        .collect();
    let reporter = || Box::new(reporters()) as Box<dyn Reporter>;
    let remove: &'static [&'static str] = match (args.keep_doppler_token, ready.store_kind()) {
        (true, _) => &[],
        (false, oauth_pkce::StoreKind::Doppler) => &[
            oauth_pkce::env::DOPPLER_TOKEN,
            oauth_pkce::env::DOPPLER_TOKEN_FILE,
        ],
        (false, _) => &[oauth_pkce::env::VAULT_TOKEN, oauth_pkce::env::BAO_TOKEN],
    };
    let vars: Vec<(String, secrecy::SecretString)> = if args.proxy {
        let mut vars = Vec::new();
        for ctx in contexts {
            let name = ctx.provider.secret_name("API_BASE");
            if vars.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let source = oauth_pkce::TokenSource::new(ctx).with_reporter(reporter());
            vars.push((name, proxy::start_for_exec(source).await?));
        }
        vars
    } else {
        let tokens = oauth_pkce::bin::token_env(contexts, &reporter).await?;
        tokens
            .vars()
            .map(|(name, token)| (name.to_string(), token.clone()))
            .collect()
    };
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::Usage("no command given after `--`".into()))?;
    let command = exec::Command {
        program: program.clone(),
        args: rest.to_vec(),
        remove,
    };
    exec::run(&command, &vars).await
}

async fn run_revoke(args: &RevokeArgs, settings: Settings) -> Result<i32> {
    let provider = settings.provider(args.provider.name())?;
    let reporter = settings.reporter();
    let ctx = settings.ready()?.context(provider, DEFAULT_REFRESH_BUFFER);
    let done = oauth_pkce::bin::revoke(&ctx, args.local_only, &reporter).await?;
    let target = ctx.store.describe();
    output::print_revoked(&done, &target, args.json.json);
    Ok(0)
}

async fn run_doctor(args: &DoctorArgs, settings: Settings) -> Result<i32> {
    let (marks, columns) = (settings.marks, settings.columns);
    let catalog = settings.catalog()?;
    let provider = match &args.provider {
        Some(name) => Some(catalog.get(name)?.clone()),
        None => None,
    };
    let checks = doctor::run(doctor::Inputs {
        network: &settings.network,
        http: settings.http,
        settings: settings.store,
        catalog: &catalog,
        provider: provider.as_ref(),
        env_credentials: &settings.env_credentials,
        browser_var: settings.browser_var,
        path_var: settings.path_var,
        no_display: settings.no_display,
        refresh_buffer: DEFAULT_REFRESH_BUFFER,
        state_dir: settings.state_dir.as_ref().ok().map(|d| d.path()),
    })
    .await;
    output::print_checks(&checks, args.json.json, marks, columns);
    Ok(doctor::exit_code(&checks))
}

async fn run_status(args: &StatusArgs, settings: Settings) -> Result<i32> {
    let buffer = args.buffer.refresh_buffer;
    let reporter = settings.reporter();
    let (rows, store) = match &args.provider {
        Some(name) => {
            let provider = settings.provider(name)?;
            let ctx = settings.ready()?.context(provider, buffer);
            refresh::push_pending(&ctx, &reporter).await?;
            let check = args.check.then_some(&ctx.http);
            let mut row = status_of(&ctx.store, &ctx.provider, buffer, check).await?;
            row.cached_until = refresh::cached_until(&ctx);
            (vec![row], ctx.store.kind())
        }
        None => {
            let catalog = settings.catalog()?;
            output::overrides(&catalog);
            let ready = settings.ready()?;
            push_all_pending(&ready, &catalog, &reporter).await?;
            let check = args.check.then_some(&ready.http);
            let mut rows = status_all(&ready.store(), &catalog, buffer, check).await?;
            for row in &mut rows {
                if let Ok(provider) = catalog.get(&row.provider) {
                    let ctx = ready.context(provider.clone(), buffer);
                    row.cached_until = refresh::cached_until(&ctx);
                }
            }
            (rows, ready.store_kind())
        }
    };
    output::print_status(&rows, args.json.json);
    Ok(output::status_notes(&rows, &store))
}

/// Pushes every journal a failed store left on this machine, before `status` reads.
async fn push_all_pending(ready: &Ready, catalog: &Catalog, reporter: &Stderr) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(ready.state_dir().journal_dir()) else {
        return Ok(());
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for provider in catalog.iter() {
        let prefix = format!("{}-", provider.name);
        if names.iter().any(|n| n.starts_with(&prefix)) {
            let ctx = ready.context(provider.clone(), DEFAULT_REFRESH_BUFFER);
            refresh::push_pending(&ctx, reporter).await?;
        }
    }
    Ok(())
}

/// Lines typed or pasted on stdin, when it is a terminal or `--paste` says so (a script's
/// closed or unrelated stdin is never read). A thread reads them; each line is a secret (it
/// may hold an authorization code).
fn pasted_lines(flag: bool) -> Option<oauth_pkce::bin::PastedLines> {
    let stdin = std::io::stdin();
    if !(flag || (stdin.is_terminal() && in_foreground())) {
        return None;
    }
    let (tx, lines) = oauth_pkce::bin::PastedLines::channel();
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
        rustix::termios::tcgetpgrp(std::io::stdin()).is_ok_and(|p| p == rustix::process::getpgrp())
    }
    #[cfg(not(unix))]
    {
        true
    }
}
