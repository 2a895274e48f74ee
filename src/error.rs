//! One error type for the whole library. Each variant belongs to a class that maps to an exit
//! code (the README's "Exit codes"), carries what failed (file, URL, secret *name*; never a
//! secret value) and knows the next step a user can take ([`Error::hint`]).

use std::path::PathBuf;

/// The exit-code classes (the README's "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// 1: nothing stored, or the refresh token is gone or refused: run `authorize`.
    ReauthorizationNeeded = 1,
    /// 2: usage error.
    Usage = 2,
    /// 3: configuration error.
    Configuration = 3,
    /// 4: the browser authorization failed.
    Authorization = 4,
    /// 5: the token endpoint refused or could not be reached.
    Provider = 5,
    /// 6: the store (Doppler, Vault) refused or could not be reached.
    Doppler = 6,
}

/// Everything that can go wrong, grouped so that a caller can act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- configuration (3) -------------------------------------------------------------
    #[error("unknown provider `{name}`")]
    UnknownProvider { name: String, known: Vec<String> },
    #[error("{path}: {message}")]
    ProviderFile { path: String, message: String },
    #[error("cannot read {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory of the user's state dir (locks, journals) that cannot be used.
    #[error("cannot {op} {}", path.display())]
    StateFile {
        op: FileOp,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not set in {store} ({secret}) nor in the environment")]
    MissingCredential {
        what: &'static str,
        secret: String,
        store: StoreKind,
    },
    #[error("no Doppler token found")]
    NoDopplerToken,
    #[error("no Vault token found")]
    NoVaultToken,
    /// The Vault mount cannot hold the tokens (KV version 1, not a KV engine, absent).
    #[error("the Vault mount `{mount}` {problem}")]
    VaultMount { mount: String, problem: String },
    #[error("the Doppler token in the Doppler CLI's configuration is kept in the OS keyring")]
    DopplerTokenInKeyring,
    #[error("{0}")]
    Config(String),
    /// A CA file or proxy setting that cannot be used.
    #[error("{0}")]
    Network(String),
    #[error("{provider} cannot be authorized through a loopback redirect: {reason}")]
    NoLoopbackFlow {
        provider: String,
        reason: String,
        alternative: String,
    },
    #[error("{provider} has no device authorization endpoint (`device_authorization_url` in its provider file)")]
    NoDeviceFlow { provider: String },

    // ---- usage (2) ---------------------------------------------------------------------
    #[error("{0}")]
    Usage(String),
    #[error("cannot run `{program}`")]
    CommandNotStarted {
        program: String,
        #[source]
        source: std::io::Error,
    },

    // ---- authorization (4) -------------------------------------------------------------
    #[error("no free port for the callback server in {range} on {host}")]
    NoFreePort { range: String, host: String },
    #[error("cannot start the callback server")]
    CallbackServer(#[source] std::io::Error),
    #[error("no authorization arrived within {seconds} s")]
    CallbackTimeout { provider: String, seconds: u64 },
    #[error("the authorization was refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationDenied {
        provider: String,
        error: String,
        description: Option<String>,
    },
    #[error("{message}")]
    Authorization { provider: String, message: String },
    #[error("another `oauth-pkce authorize` for {provider} is already waiting for its sign-in on this machine")]
    SignInInProgress { provider: String },
    #[error("the device code expired before the sign-in was approved (after {seconds} s)")]
    DeviceCodeExpired { provider: String, seconds: u64 },
    #[error("Deny was chosen on the demo's consent page, so the demo stopped before any token")]
    DemoDenied,

    // ---- provider (5) ------------------------------------------------------------------
    #[error("the token endpoint refused the request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenEndpoint {
        provider: String,
        error: String,
        description: Option<String>,
    },
    #[error("the token endpoint {url} could not be reached")]
    ProviderUnreachable {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the token endpoint answered badly: {0}")]
    ProviderResponse(String),
    /// A refresh request reached the token endpoint but its outcome is unknown (a timeout, a
    /// reset, a 5xx): the provider may have rotated the refresh token. It was not resent.
    #[error("the refresh at {provider}'s token endpoint may or may not have happened ({detail})")]
    RefreshUncertain { provider: String, detail: String },
    #[error("the device authorization endpoint refused the request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    DeviceAuthorization {
        error: String,
        description: Option<String>,
    },
    #[error("the revocation endpoint {url} did not revoke the {token}: {detail}")]
    RevocationFailed {
        provider: String,
        url: String,
        token: String,
        detail: String,
    },
    #[error(
        "{display_name} revokes only access tokens and none is stored (only a refresh token), \
         so nothing was revoked at {display_name} and nothing was removed"
    )]
    RevocationNeedsAccessToken {
        provider: String,
        display_name: String,
    },
    #[error("the revocation endpoint {url} could not be reached")]
    RevocationUnreachable {
        provider: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    // ---- re-authorization (1) ----------------------------------------------------------
    #[error("no tokens are stored in {store} for {provider} ({secret} is empty)")]
    NotAuthorized {
        provider: String,
        secret: String,
        store: StoreKind,
    },
    #[error("the refresh token for {provider} was refused: {error}")]
    RefreshRefused { provider: String, error: String },

    // ---- Doppler (6) -------------------------------------------------------------------
    #[error("Doppler refused the request ({status}): {message}")]
    Doppler {
        status: u16,
        message: String,
        kind: DopplerFailure,
    },
    #[error("Doppler at {host} could not be reached")]
    DopplerUnreachable {
        host: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Vault refused: `kind` classifies it as for Doppler (read-only, rate limited, …).
    #[error("Vault refused the request ({status}): {message}")]
    Vault {
        status: u16,
        message: String,
        kind: DopplerFailure,
    },
    #[error("Vault at {addr} could not be reached")]
    VaultUnreachable {
        addr: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Vault answered badly: {0}")]
    VaultResponse(String),
    /// Another refresh of the same tokens did not finish within the wait.
    #[error("{}", match holder {
        Holder::ThisMachine { lock } => format!("another oauth-pkce process on this machine has been refreshing {provider} for {seconds} s (lock {})", lock.display()),
        Holder::AnotherMachine => format!("waited {seconds} s for another machine's refresh of {provider} to finish"),
    })]
    RefreshBusy {
        provider: String,
        seconds: u64,
        holder: Holder,
    },
    #[error("Doppler answered badly: {0}")]
    DopplerResponse(String),
    /// A write whose answer never came (5xx, timeout, reset): it may have landed.
    #[error("{store} at {host} did not answer a write ({detail}); it may or may not have landed")]
    StoreAnswerLost {
        store: StoreKind,
        host: String,
        detail: String,
    },
    #[error("the new tokens for {provider} could not be written to {store}")]
    StoreFailed {
        provider: String,
        store: StoreKind,
        journal: PathBuf,
        #[source]
        source: Box<Error>,
    },
    #[error("the provider rotated the tokens for {provider}, but neither the local journal nor {store} could store the new ones")]
    TokensLost {
        provider: String,
        store: StoreKind,
        #[source]
        source: Box<Error>,
    },
    #[error("the tokens of {provider} were revoked at the provider but could not be removed from {store}")]
    RevokedNotRemoved {
        provider: String,
        store: StoreKind,
        #[source]
        source: Box<Error>,
    },
    #[error("the access token for {provider} must be refreshed, but this {store} token cannot write, so the new tokens could not be stored")]
    ReadOnlyCannotRefresh { provider: String, store: StoreKind },
    #[error("this {store} token cannot write to {target}, so a sign-in to {provider} could not be stored; nothing was opened")]
    ReadOnlyCannotSignIn {
        provider: String,
        target: String,
        store: StoreKind,
    },
}

/// What could not be done to a state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOp {
    Create,
    Open,
    Read,
    Write,
    Remove,
    Lock,
}

impl std::fmt::Display for FileOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileOp::Create => "create",
            FileOp::Open => "open",
            FileOp::Read => "read",
            FileOp::Write => "write",
            FileOp::Remove => "remove",
            FileOp::Lock => "lock",
        })
    }
}

/// Who holds the refresh that a process waited for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Another process of this machine holds the local lock (this file).
    ThisMachine { lock: PathBuf },
    /// Another machine holds the lease in the store.
    AnotherMachine,
}

/// Which store an error is about, so that its text and hint name the right commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Doppler,
    /// Vault or OpenBao: the KV v2 mount and the path under it (of one provider's secret, or
    /// of the folder holding them all).
    Vault {
        mount: String,
        path: String,
    },
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::Doppler => "Doppler",
            StoreKind::Vault { .. } => "Vault",
        })
    }
}

impl StoreKind {
    /// How a user puts `secret` into the store.
    fn set_command(&self, secret: &str) -> String {
        match self {
            StoreKind::Doppler => format!("`doppler secrets set {secret}`"),
            StoreKind::Vault { mount, path } => format!(
                "`bao kv patch -mount={mount} {path} {secret}=VALUE` (`kv put` if the secret does not exist yet; `vault` takes the same arguments)"
            ),
        }
    }

    /// What a token that cannot write needs.
    fn write_access(&self) -> String {
        match self {
            StoreKind::Doppler => "a read/write Doppler token in DOPPLER_TOKEN (a service token with write access: Doppler → project → config → Access)".into(),
            StoreKind::Vault { mount, path } => format!(
                "a Vault token whose policy allows writing: path \"{mount}/data/{}/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}",
                path.split('/').next().unwrap_or(path)
            ),
        }
    }
}

/// Why Doppler (or Vault) refused, so the hint can say what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DopplerFailure {
    Unauthorized,
    Forbidden,
    ReadOnly,
    NotFound,
    RateLimited,
    Server,
    Conflict,
    Other,
}

impl Error {
    /// The exit-code class (the README's "Exit codes").
    pub fn class(&self) -> ExitClass {
        use Error::*;
        match self {
            UnknownProvider { .. }
            | ProviderFile { .. }
            | ReadFile { .. }
            | StateFile { .. }
            | MissingCredential { .. }
            | NoDopplerToken
            | NoVaultToken
            | VaultMount { .. }
            | DopplerTokenInKeyring
            | Config(_)
            | Network(_)
            | NoLoopbackFlow { .. }
            | NoDeviceFlow { .. } => ExitClass::Configuration,
            Usage(_) | CommandNotStarted { .. } => ExitClass::Usage,
            NoFreePort { .. }
            | CallbackServer(_)
            | CallbackTimeout { .. }
            | AuthorizationDenied { .. }
            | SignInInProgress { .. }
            | Authorization { .. }
            | DeviceCodeExpired { .. }
            | DemoDenied => ExitClass::Authorization,
            TokenEndpoint { .. }
            | ProviderUnreachable { .. }
            | ProviderResponse(_)
            | RefreshUncertain { .. }
            | DeviceAuthorization { .. }
            | RevocationFailed { .. }
            | RevocationNeedsAccessToken { .. }
            | RevocationUnreachable { .. } => ExitClass::Provider,
            NotAuthorized { .. } | RefreshRefused { .. } => ExitClass::ReauthorizationNeeded,
            Doppler { .. }
            | DopplerUnreachable { .. }
            | DopplerResponse(_)
            | Vault { .. }
            | VaultUnreachable { .. }
            | VaultResponse(_)
            | StoreAnswerLost { .. }
            | RefreshBusy { .. }
            | StoreFailed { .. }
            | TokensLost { .. }
            | RevokedNotRemoved { .. }
            | ReadOnlyCannotRefresh { .. }
            | ReadOnlyCannotSignIn { .. } => ExitClass::Doppler,
        }
    }

    /// How the store refused, whichever store it is: Doppler's or Vault's refusal, classified.
    pub fn store_refusal(&self) -> Option<(u16, DopplerFailure)> {
        match self {
            Error::Doppler { status, kind, .. } | Error::Vault { status, kind, .. } => {
                Some((*status, *kind))
            }
            _ => None,
        }
    }

    /// A refusal by `store`, of the kind the store's own client would give.
    pub(crate) fn store_refused(
        store: &StoreKind,
        status: u16,
        message: String,
        kind: DopplerFailure,
    ) -> Error {
        match store {
            StoreKind::Doppler => Error::Doppler {
                status,
                message,
                kind,
            },
            StoreKind::Vault { .. } => Error::Vault {
                status,
                message,
                kind,
            },
        }
    }

    /// An answer of `store` that makes no sense (a write answered but not applied, …).
    pub(crate) fn store_response(store: &StoreKind, message: String) -> Error {
        match store {
            StoreKind::Doppler => Error::DopplerResponse(message),
            StoreKind::Vault { .. } => Error::VaultResponse(message),
        }
    }

    /// The store could not be reached at all (nothing was sent).
    pub fn store_unreachable(&self) -> bool {
        matches!(
            self,
            Error::DopplerUnreachable { .. } | Error::VaultUnreachable { .. }
        )
    }

    /// The message followed by each cause, `: `-separated: what the CLI prints after `error: `.
    pub fn with_causes(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        message
    }

    /// The process exit code for this error (the README's "Exit codes").
    pub fn exit_code(&self) -> i32 {
        self.class() as i32
    }

    /// What the user can do next.
    pub fn hint(&self) -> String {
        use Error::*;
        match self {
            UnknownProvider { name, known } => {
                let near = crate::text::nearest(&name.to_ascii_lowercase(), known.iter().map(String::as_str))
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                format!(
                    "{near}`oauth-pkce providers` lists the {} known ones; add your own with --provider-file",
                    known.len()
                )
            }
            ProviderFile { .. } => "fix the file, then run the command again (docs/providers.md lists every key; `oauth-pkce providers --json` shows the built-in providers in full)".into(),
            ReadFile { .. } => "check that the file exists and is readable".into(),
            StateFile { .. } => "oauth-pkce keeps locks and journals there: check that the directory is yours, writable (mode 0700) and the disk not full, then run the command again".into(),
            RefreshBusy { holder: Holder::ThisMachine { .. }, .. } => "wait for the other oauth-pkce process to finish (or stop it), then run the command again".into(),
            RefreshBusy { holder: Holder::AnotherMachine, .. } => "run the command again in a minute: the other machine's tokens will be there, and a lease left by a killed process expires by itself".into(),
            MissingCredential { secret, store, .. } => format!(
                "add it to {store}: {} (or export {secret} in the environment)",
                store.set_command(secret)
            ),
            NoDopplerToken => "set DOPPLER_TOKEN (a service token with write access is best), point DOPPLER_TOKEN_FILE at a file holding one, or run `doppler login` and `doppler setup`".into(),
            NoVaultToken => "set VAULT_TOKEN (or BAO_TOKEN) to a Vault token, or run `bao login` (or `vault login`), which writes ~/.vault-token".into(),
            VaultMount { mount, .. } => format!(
                "the tokens need a KV version 2 mount (its check-and-set makes every write atomic): `bao kv enable-versioning {mount}` upgrades a version 1 mount, `bao secrets enable -path=NAME kv-v2` makes a new one; OAUTH_PKCE_VAULT_MOUNT names the mount to use"
            ),
            DopplerTokenInKeyring => "oauth-pkce cannot read the OS keyring: set DOPPLER_TOKEN (or DOPPLER_TOKEN_FILE) to a Doppler token".into(),
            Config(_) => "fix what the error names (a setting, file or directory), then run the command again; `oauth-pkce doctor` checks the whole setup".into(),
            Network(_) => "fix the CA file (a PEM file of CA certificates: SSL_CERT_FILE, OAUTH_PKCE_CA_FILE or --ca-file) or the proxy variables (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY)".into(),
            NoLoopbackFlow { alternative, .. } => alternative.clone(),
            NoDeviceFlow { provider } => format!(
                "run `oauth-pkce authorize --provider {provider}` without --device; on a remote machine add --no-browser and paste the redirect URL, or forward the port with ssh -L. If the provider supports RFC 8628, add `device_authorization_url` to a provider file (--provider-file)"
            ),
            DeviceCodeExpired { provider, .. } => format!("run `oauth-pkce authorize --provider {provider} --device` again and enter the code sooner"),
            DeviceAuthorization { error, .. } => match error.as_str() {
                "device_flow_disabled" | "unauthorized_client" | "invalid_grant" => "enable the device flow (\"device authorization\", \"public client flows\") in the app's settings at the provider, or authorize without --device".into(),
                "invalid_client" => "check the provider's *_CLIENT_ID (and *_CLIENT_SECRET) secrets, and that the app is of a type that may use the device flow".into(),
                "invalid_scope" => "check the scopes in the provider file and --scope: device flows often allow fewer scopes".into(),
                _ => "check the app's settings at the provider, or authorize without --device".into(),
            },
            Usage(_) => "run `oauth-pkce --help`".into(),
            CommandNotStarted { program, source } => match source.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "`{program}` was not found: check its name and PATH (the command runs without a shell; for shell syntax use `-- sh -c '...'`)"
                ),
                std::io::ErrorKind::PermissionDenied => format!(
                    "`{program}` is not executable: check its permissions (chmod +x)"
                ),
                _ => "check the command after `--`".into(),
            },
            NoFreePort { .. } => "free one of these ports, or choose others with --ports (each redirect URI must be registered with the provider)".into(),
            CallbackServer(_) => "check that the loopback interface is up, or choose other ports with --ports".into(),
            CallbackTimeout { provider, .. } => format!("run `oauth-pkce authorize --provider {provider}` again and finish the sign-in in the browser, or raise --timeout"),
            AuthorizationDenied { provider, error, .. } => match error.as_str() {
                "access_denied" => format!("the sign-in was cancelled or consent was refused; run `oauth-pkce authorize --provider {provider}` again and approve the request"),
                "invalid_scope" => "check the scopes in the provider file and --scope".into(),
                "unauthorized_client" | "invalid_request" => "check the client id and that the redirect URI is registered with the provider".into(),
                _ => format!("run `oauth-pkce authorize --provider {provider}` again; if it keeps failing, check the app's settings at the provider"),
            },
            Authorization { provider, .. } => format!("run `oauth-pkce authorize --provider {provider}` again"),
            SignInInProgress { .. } => "finish the sign-in that is already open in your browser, or stop that `oauth-pkce authorize` (Ctrl-C) and run it again".into(),
            TokenEndpoint { provider, error, .. } => match error.as_str() {
                "invalid_client" => "check the provider's *_CLIENT_ID and *_CLIENT_SECRET secrets in Doppler, and its client_auth method (`oauth-pkce providers --json`)".into(),
                "invalid_grant" => format!("the code or refresh token was refused; run `oauth-pkce authorize --provider {provider}` again"),
                "redirect_uri_mismatch" => "register the redirect URI shown above with the provider, or pick a registered port with --ports".into(),
                _ => "check the provider app's settings; run with -v for details".into(),
            },
            ProviderUnreachable { .. } => "check the network (HTTPS_PROXY/NO_PROXY) and the provider's token_url, then retry; for a certificate error, trust your CA with --ca-file, OAUTH_PKCE_CA_FILE or SSL_CERT_FILE".into(),
            ProviderResponse(_) => "the provider answered something that is not an OAuth token response; check token_url in the provider file".into(),
            DemoDenied => "run `oauth-pkce demo` again and choose Approve, or `oauth-pkce demo --no-browser` to let the demo approve".into(),
            RefreshUncertain { provider, .. } => format!(
                "the stored tokens were kept and the refresh was not sent again (if {provider} rotated the refresh token before failing, it is spent); run `oauth-pkce refresh --provider {provider}` once: if that is refused (exit 1), sign in again with `oauth-pkce authorize --provider {provider}`"
            ),
            RevocationFailed { provider, .. } | RevocationUnreachable { provider, .. } => format!(
                "nothing was removed from Doppler, so you can retry `oauth-pkce revoke --provider {provider}` later; `--local-only` removes the tokens from Doppler without the provider (the grant then stays valid until it expires or you revoke the app's access in your account settings there)"
            ),
            RevocationNeedsAccessToken { provider, .. } => format!(
                "run `oauth-pkce refresh --provider {provider}` (it gets an access token), then `oauth-pkce revoke --provider {provider}` again; or `oauth-pkce revoke --provider {provider} --local-only` to remove the tokens from Doppler only, and revoke the app's access in your account settings there"
            ),
            RevokedNotRemoved { provider, store, .. } => format!(
                "the stored tokens no longer work; fix the {store} problem, then run `oauth-pkce revoke --provider {provider} --local-only` to remove them"
            ),
            NotAuthorized { provider, .. } => format!("run `oauth-pkce authorize --provider {provider}`"),
            RefreshRefused { provider, .. } => format!(
                "the refresh token was already used or revoked: run `oauth-pkce authorize --provider {provider}`"
            ),
            Doppler { kind, .. } => match kind {
                DopplerFailure::Unauthorized => "the Doppler token is invalid or revoked: create a new one and set DOPPLER_TOKEN".into(),
                DopplerFailure::Forbidden | DopplerFailure::ReadOnly => "this Doppler token cannot write: use a service token created with write access (read/write), or a personal token".into(),
                DopplerFailure::NotFound => "check the project and config names (--project/--config, DOPPLER_PROJECT/DOPPLER_CONFIG)".into(),
                DopplerFailure::RateLimited => "Doppler is rate limiting this token; wait a minute and retry".into(),
                DopplerFailure::Server => "Doppler is having trouble; retry in a minute (status.doppler.com)".into(),
                DopplerFailure::Conflict => "another process changed the secret at the same time; run the command again".into(),
                DopplerFailure::Other => "check the project, config and token; run with -v for details".into(),
            },
            DopplerUnreachable { .. } => "check the network (HTTPS_PROXY/NO_PROXY) and DOPPLER_API_HOST, then retry; for a certificate error, trust your CA with --ca-file, OAUTH_PKCE_CA_FILE or SSL_CERT_FILE".into(),
            DopplerResponse(_) => "check DOPPLER_API_HOST points at the Doppler API".into(),
            Vault { kind, message, .. } => match kind {
                _ if message.contains("sealed") => "the Vault server is sealed: unseal it (`bao operator unseal`), then run the command again".into(),
                _ if message.contains("namespace") => "check VAULT_NAMESPACE: the namespace must exist and the token must belong to it (or to a parent)".into(),
                DopplerFailure::Unauthorized | DopplerFailure::Forbidden => "the Vault token is invalid, expired, or its policy does not allow reading the secret: check it with `bao token lookup`, log in again (`bao login`), or ask for a policy with: path \"MOUNT/data/PATH/*\" { capabilities = [\"create\", \"read\", \"update\"] } (docs/vault.md)".into(),
                DopplerFailure::ReadOnly => "this Vault token can read but not write the secret; give its policy create and update on the path (docs/vault.md), or use it only on machines that read tokens".into(),
                DopplerFailure::NotFound => "check OAUTH_PKCE_VAULT_MOUNT (the KV v2 mount, default `secret`) and VAULT_ADDR; `bao secrets list` shows the mounts".into(),
                DopplerFailure::RateLimited => "Vault is rate limiting this client (a rate-limit quota); wait a minute and retry".into(),
                DopplerFailure::Server => "Vault is having trouble; check `bao status`, then retry".into(),
                DopplerFailure::Conflict | DopplerFailure::Other => "check VAULT_ADDR, the mount and the token; run with -v for details".into(),
            },
            VaultUnreachable { .. } => "check VAULT_ADDR (or BAO_ADDR) and that the server runs (`bao status`); for a certificate error, set VAULT_CACERT to the server's CA file".into(),
            VaultResponse(_) => "check that VAULT_ADDR points at a Vault or OpenBao server and OAUTH_PKCE_VAULT_MOUNT at a KV version 2 mount".into(),
            StoreAnswerLost { store: StoreKind::Doppler, .. } => "Doppler may be having trouble (status.doppler.com); run `oauth-pkce status` to see what it holds, then run the command again".into(),
            StoreAnswerLost { .. } => "Vault may be having trouble (`bao status`); run `oauth-pkce status` to see what it holds, then run the command again".into(),
            StoreFailed { journal, store, .. } => format!(
                "the new tokens are safe on this machine ({}) and will be pushed to {store} on the next run of oauth-pkce; fix the {store} problem above, then run `oauth-pkce status`",
                journal.display()
            ),
            TokensLost { provider, store, .. } => format!(
                "free disk space in the state directory and fix {store}, then run `oauth-pkce authorize --provider {provider}` (the old refresh token is spent)"
            ),
            ReadOnlyCannotRefresh { provider, store } => format!(
                "run `oauth-pkce refresh --provider {provider}` with {}; read-only tokens can then keep reading the fresh token",
                store.write_access()
            ),
            ReadOnlyCannotSignIn { provider, store, .. } => format!(
                "use {}, then run `oauth-pkce authorize --provider {provider}`",
                store.write_access()
            ),
        }
    }
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
