//! Settings, resolved once per run: the one place that reads the process environment (through
//! `oauth_pkce::env`'s names). Flags beat variables, which beat files. What can fail (a CA
//! file, the Doppler token, the state directory) is kept as a `Result` until a command needs
//! it, so that `doctor` can report each failure instead of stopping at the first; every other
//! command asks for [`Settings::ready`], which gives the first error.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use secrecy::SecretString;

use oauth_pkce::SettingsInputs;
use oauth_pkce::StateDir;
use oauth_pkce::{env, Context, Result};
use oauth_pkce::{Catalog, Provider};
use oauth_pkce::{Http, NetworkSettings};
use oauth_pkce::{Store, StoreKind, StoreSettings};

use super::args::Common;
use super::output::Stderr;

/// Everything a run reads from outside, read once.
pub(crate) struct Settings {
    pub(crate) verbose: u8,
    providers_dir: Option<PathBuf>,
    provider_files: Vec<PathBuf>,
    /// Proxies and CA files from the environment, plus `--ca-file`.
    pub(crate) network: NetworkSettings,
    /// The one HTTP client of the run (its CA files read once), or why it cannot be built.
    pub(crate) http: Result<Http>,
    /// The store's settings (Doppler's or Vault's), or why they could not be resolved.
    pub(crate) store: Result<StoreSettings>,
    pub(crate) state_dir: Result<StateDir>,
    /// `*_CLIENT_ID`/`*_CLIENT_SECRET` of the environment: the credentials' fallback.
    pub(crate) env_credentials: HashMap<String, SecretString>,
    /// This machine's token cache is on (`OAUTH_PKCE_CACHE=off` turns it off).
    pub(crate) cache: bool,
    pub(crate) browser_var: Option<String>,
    pub(crate) path_var: Option<OsString>,
    /// The browser is probably on another machine (SSH, or Linux without a display).
    pub(crate) remote: bool,
    /// Linux without `DISPLAY` or `WAYLAND_DISPLAY`: the system opener cannot show a browser.
    pub(crate) no_display: bool,
    /// The terminal's width (`COLUMNS`, else 80), for wrapped text.
    pub(crate) columns: usize,
    /// stdout is a terminal that can show ✓/✗ (not `NO_COLOR`, not `TERM=dumb`).
    pub(crate) marks: bool,
    /// stderr is a terminal that can draw a spinner; `NO_COLOR` is unset.
    animate: bool,
    colour: bool,
    /// Providers whose override by a user's file this command has already said.
    overrides_told: std::sync::Mutex<Vec<String>>,
}

/// The values every command but `doctor` needs, all known good.
pub(crate) struct Ready {
    pub(crate) http: Http,
    pub(crate) store: StoreSettings,
    state_dir: StateDir,
    env_credentials: HashMap<String, SecretString>,
    pub(crate) cache: bool,
}

impl Settings {
    pub(crate) fn resolve(verbose: u8, options: &Common) -> Settings {
        let var = |name: &str| std::env::var(name).ok();
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let inputs = SettingsInputs {
            store_flag: options.store.store.clone(),
            project_flag: options.store.project.clone(),
            config_flag: options.store.config.clone(),
            vars: env::STORE_VARS
                .iter()
                .filter_map(|k| var(k).map(|v| (k.to_string(), v)))
                .collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
            home: dirs::home_dir(),
        };
        let mut network = NetworkSettings::from_vars(var);
        network
            .ca_files
            .extend(options.store.ca_files.iter().cloned());
        network
            .ca_files
            .extend(oauth_pkce::bin::vault_ca_file(&inputs));
        let http = Http::with_network(&network);
        let no_display =
            cfg!(target_os = "linux") && !set(env::DISPLAY) && !set(env::WAYLAND_DISPLAY);
        let remote =
            set(env::SSH_CONNECTION) || set(env::SSH_TTY) || (no_display && !set(env::BROWSER));
        Settings {
            verbose,
            providers_dir: var(env::OAUTH_PKCE_PROVIDERS_DIR)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(oauth_pkce::bin::default_user_dir),
            provider_files: options.files.provider_files.clone(),
            network,
            http,
            store: StoreSettings::resolve(&inputs),
            state_dir: StateDir::locate(),
            env_credentials: oauth_pkce::credentials_from_env(std::env::vars()),
            cache: env::cache_on(var(env::OAUTH_PKCE_CACHE).as_deref()),
            browser_var: var(env::BROWSER),
            path_var: std::env::var_os(env::PATH),
            remote,
            no_display,
            marks: std::io::stdout().is_terminal()
                && !set(env::NO_COLOR)
                && var(env::TERM).as_deref() != Some("dumb"),
            columns: var(env::COLUMNS)
                .and_then(|c| c.trim().parse().ok())
                .filter(|c| *c >= 40)
                .unwrap_or(80),
            animate: std::io::stderr().is_terminal() && var(env::TERM).as_deref() != Some("dumb"),
            colour: !set(env::NO_COLOR),
            overrides_told: Default::default(),
        }
    }

    /// Every provider: the built-ins, overridden by the user's files.
    pub(crate) fn catalog(&self) -> Result<Catalog> {
        Catalog::load(self.providers_dir.as_deref(), &self.provider_files)
    }

    /// One provider, parsing only its own definition (and the user's files). A user's file
    /// that replaces a built-in is said on stderr, once per provider and command.
    pub(crate) fn provider(&self, name: &str) -> Result<Provider> {
        let provider = Catalog::find(self.providers_dir.as_deref(), &self.provider_files, name)?;
        if provider.overrides_builtin {
            let mut told = self
                .overrides_told
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !told.contains(&provider.name) {
                told.push(provider.name.clone());
                crate::cli::output::overridden(&provider);
            }
        }
        Ok(provider)
    }

    /// Where progress and warnings go.
    pub(crate) fn reporter(&self) -> Stderr {
        Stderr::new(self.verbose, self.animate, self.colour)
    }

    /// A maker of reporters, for a command that hands one to each provider's token source.
    pub(crate) fn reporters(&self) -> impl Fn() -> Stderr {
        let (verbose, animate, colour) = (self.verbose, self.animate, self.colour);
        move || Stderr::new(verbose, animate, colour)
    }

    /// The HTTP client, store settings and state directory, or the first that failed.
    pub(crate) fn ready(self) -> Result<Ready> {
        Ok(Ready {
            http: self.http?,
            store: self.store?,
            state_dir: self.state_dir?,
            env_credentials: self.env_credentials,
            cache: self.cache,
        })
    }
}

impl Ready {
    /// What the library needs for one provider; every context shares the one HTTP client.
    pub(crate) fn context(&self, provider: Provider, refresh_buffer: i64) -> Context {
        Context {
            store: self.store(),
            http: self.http.clone(),
            provider,
            env_credentials: self.env_credentials.clone(),
            refresh_buffer,
            state_dir: self.state_dir.clone(),
            cache: self.cache,
        }
    }

    /// The store's client, on the run's HTTP client.
    pub(crate) fn store(&self) -> Store {
        self.store.clone().into_store(self.http.clone())
    }

    pub(crate) fn store_kind(&self) -> StoreKind {
        self.store().kind()
    }

    pub(crate) fn state_dir(&self) -> &StateDir {
        &self.state_dir
    }
}
