//! The snapshot of every `error:`/`hint:` text.

use super::*;

fn io(kind: std::io::ErrorKind) -> std::io::Error {
    std::io::Error::new(kind, "os says no")
}

fn cause() -> Box<Error> {
    Box::new(Error::DopplerUnreachable {
        host: "https://api.doppler.com".into(),
        source: "connection refused".into(),
    })
}

/// One of each variant (and of each hint branch). The match is exhaustive, so a new
/// variant does not compile until it is added here, and so to the snapshot.
fn vault() -> StoreKind {
    StoreKind::Vault {
        mount: "secret".into(),
        path: "oauth-pkce/jobber".into(),
    }
}

fn every_error() -> Vec<Error> {
    let p = || "jobber".to_string();
    let oauth = |e: &str| (e.to_string(), Some("why".to_string()));
    let mut all = vec![
        Error::UnknownProvider {
            name: "jober".into(),
            known: vec!["github".into(), "jobber".into()],
        },
        Error::ProviderFile {
            path: "acme.toml".into(),
            message: "line 3: unknown key `tokne_url`".into(),
        },
        Error::ReadFile {
            path: "acme.toml".into(),
            source: io(std::io::ErrorKind::NotFound),
        },
        Error::StateFile {
            op: FileOp::Write,
            path: "state/journal/x.json".into(),
            source: io(std::io::ErrorKind::StorageFull),
        },
        Error::MissingCredential {
            what: "the client id",
            secret: "JOBBER_CLIENT_ID".into(),
            store: StoreKind::Doppler,
        },
        Error::MissingCredential {
            what: "the client id",
            secret: "JOBBER_CLIENT_ID".into(),
            store: vault(),
        },
        Error::NoVaultToken,
        Error::VaultMount {
            mount: "kv".into(),
            problem: "is KV version 1, which has no check-and-set".into(),
        },
        Error::NoDopplerToken,
        Error::DopplerTokenInKeyring,
        Error::Config("no Doppler project".into()),
        Error::Network("the CA file ca.pem holds no PEM certificate".into()),
        Error::NoLoopbackFlow {
            provider: p(),
            reason: "https only".into(),
            alternative: "use --device".into(),
        },
        Error::NoDeviceFlow { provider: p() },
        Error::Usage("no command given after `--`".into()),
        Error::CommandNotStarted {
            program: "nope".into(),
            source: io(std::io::ErrorKind::NotFound),
        },
        Error::CommandNotStarted {
            program: "x.sh".into(),
            source: io(std::io::ErrorKind::PermissionDenied),
        },
        Error::NoFreePort {
            range: "3000-3010".into(),
            host: "127.0.0.1".into(),
        },
        Error::CallbackServer(io(std::io::ErrorKind::AddrNotAvailable)),
        Error::CallbackTimeout {
            provider: "jobber".into(),
            seconds: 300,
        },
        Error::Authorization {
            provider: "jobber".into(),
            message: "state mismatch".into(),
        },
        Error::SignInInProgress { provider: p() },
        Error::DeviceCodeExpired {
            provider: "github".into(),
            seconds: 900,
        },
        Error::ProviderUnreachable {
            url: "https://x/token".into(),
            source: "timed out".into(),
        },
        Error::ProviderResponse("not JSON".into()),
        Error::DemoDenied,
        Error::RefreshUncertain {
            provider: p(),
            detail: "timed out after 60 s".into(),
        },
        Error::RevocationFailed {
            provider: p(),
            url: "https://x/revoke".into(),
            token: "refresh token".into(),
            detail: "500".into(),
        },
        Error::RevocationNeedsAccessToken {
            provider: "notion".into(),
            display_name: "Notion".into(),
        },
        Error::RevocationUnreachable {
            provider: p(),
            url: "https://x/revoke".into(),
            source: "reset".into(),
        },
        Error::NotAuthorized {
            provider: p(),
            secret: "JOBBER_REFRESH_TOKEN".into(),
            store: StoreKind::Doppler,
        },
        Error::NotAuthorized {
            provider: p(),
            secret: "JOBBER_ACCESS_TOKEN".into(),
            store: vault(),
        },
        Error::RefreshRefused {
            provider: p(),
            error: "invalid_grant".into(),
        },
        Error::DopplerUnreachable {
            host: "https://api.doppler.com".into(),
            source: "refused".into(),
        },
        Error::RefreshBusy {
            provider: p(),
            seconds: 90,
            holder: Holder::ThisMachine {
                lock: "state/locks/x.lock".into(),
            },
        },
        Error::RefreshBusy {
            provider: p(),
            seconds: 120,
            holder: Holder::AnotherMachine,
        },
        Error::DopplerResponse("not JSON".into()),
        Error::VaultUnreachable {
            addr: "https://vault.example:8200".into(),
            source: "refused".into(),
        },
        Error::VaultResponse("not a KV secret".into()),
        Error::StoreAnswerLost {
            store: StoreKind::Doppler,
            host: "https://api.doppler.com/".into(),
            detail: "HTTP 502".into(),
        },
        Error::StoreAnswerLost {
            store: vault(),
            host: "https://vault.example:8200".into(),
            detail: "HTTP 502".into(),
        },
        Error::StoreFailed {
            provider: p(),
            store: StoreKind::Doppler,
            journal: "state/journal/x.json".into(),
            source: cause(),
        },
        Error::TokensLost {
            provider: p(),
            store: StoreKind::Doppler,
            source: cause(),
        },
        Error::RevokedNotRemoved {
            provider: p(),
            store: StoreKind::Doppler,
            source: cause(),
        },
        Error::ReadOnlyCannotRefresh {
            provider: p(),
            store: StoreKind::Doppler,
        },
        Error::ReadOnlyCannotRefresh {
            provider: p(),
            store: vault(),
        },
        Error::ReadOnlyCannotSignIn {
            provider: p(),
            target: "demo/dev".into(),
            store: StoreKind::Doppler,
        },
        Error::ReadOnlyCannotSignIn {
            provider: p(),
            target: "secret/oauth-pkce at https://vault.example:8200".into(),
            store: vault(),
        },
    ];
    for e in [
        "access_denied",
        "invalid_scope",
        "unauthorized_client",
        "server_error",
    ] {
        let (error, description) = oauth(e);
        all.push(Error::AuthorizationDenied {
            provider: "jobber".into(),
            error,
            description,
        });
    }
    for e in [
        "invalid_client",
        "invalid_grant",
        "redirect_uri_mismatch",
        "temporarily_unavailable",
    ] {
        let (error, description) = oauth(e);
        all.push(Error::TokenEndpoint {
            provider: "jobber".into(),
            error,
            description,
        });
    }
    for e in [
        "device_flow_disabled",
        "invalid_client",
        "invalid_scope",
        "slow_down",
    ] {
        let (error, description) = oauth(e);
        all.push(Error::DeviceAuthorization { error, description });
    }
    use DopplerFailure::*;
    for kind in [
        Unauthorized,
        Forbidden,
        ReadOnly,
        NotFound,
        RateLimited,
        Server,
        Conflict,
        Other,
    ] {
        all.push(Error::Doppler {
            status: 400,
            message: "refused".into(),
            kind,
        });
        all.push(Error::Vault {
            status: 400,
            message: "refused".into(),
            kind,
        });
    }
    for message in ["Vault is sealed", "namespace not found"] {
        all.push(Error::Vault {
            status: 503,
            message: message.into(),
            kind: Server,
        });
    }
    for e in &all {
        match e {
            Error::UnknownProvider { .. }
            | Error::ProviderFile { .. }
            | Error::ReadFile { .. }
            | Error::StateFile { .. }
            | Error::MissingCredential { .. }
            | Error::NoDopplerToken
            | Error::NoVaultToken
            | Error::VaultMount { .. }
            | Error::DopplerTokenInKeyring
            | Error::Config(_)
            | Error::Network(_)
            | Error::NoLoopbackFlow { .. }
            | Error::NoDeviceFlow { .. }
            | Error::Usage(_)
            | Error::CommandNotStarted { .. }
            | Error::NoFreePort { .. }
            | Error::CallbackServer(_)
            | Error::CallbackTimeout { .. }
            | Error::AuthorizationDenied { .. }
            | Error::Authorization { .. }
            | Error::SignInInProgress { .. }
            | Error::DeviceCodeExpired { .. }
            | Error::DemoDenied
            | Error::TokenEndpoint { .. }
            | Error::ProviderUnreachable { .. }
            | Error::ProviderResponse(_)
            | Error::RefreshUncertain { .. }
            | Error::DeviceAuthorization { .. }
            | Error::RevocationFailed { .. }
            | Error::RevocationNeedsAccessToken { .. }
            | Error::RevocationUnreachable { .. }
            | Error::NotAuthorized { .. }
            | Error::RefreshRefused { .. }
            | Error::Doppler { .. }
            | Error::DopplerUnreachable { .. }
            | Error::Vault { .. }
            | Error::VaultUnreachable { .. }
            | Error::VaultResponse(_)
            | Error::RefreshBusy { .. }
            | Error::DopplerResponse(_)
            | Error::StoreAnswerLost { .. }
            | Error::StoreFailed { .. }
            | Error::TokensLost { .. }
            | Error::RevokedNotRemoved { .. }
            | Error::ReadOnlyCannotRefresh { .. }
            | Error::ReadOnlyCannotSignIn { .. } => {}
        }
    }
    all
}

/// What `main.rs` prints for `e`: the message with its causes, the hint, the exit code.
fn rendered(e: &Error) -> String {
    format!(
        "exit {}\nerror: {}\nhint: {}\n",
        e.exit_code(),
        e.with_causes(),
        e.hint()
    )
}

/// Every `error:`/`hint:` text, reviewed as a user reads it, lives in
/// tests/data/error-texts.txt; `UPDATE_SNAPSHOTS=1 cargo test --lib error::` rewrites it.
#[test]
fn every_error_and_hint_text_matches_the_reviewed_snapshot() {
    let all = every_error();
    let text: String = all.iter().map(|e| rendered(e) + "\n").collect();
    for e in &all {
        let hint = e.hint();
        // Only documents a user has: the README and docs/ (shipped with the source).
        assert!(
            hint.split_whitespace()
                .filter(|w| w.contains(".md"))
                .all(|w| w.contains("docs/") || w.contains("README")),
            "a hint names a file users lack: {hint}"
        );
        // A command to run again names the provider it is for.
        for run in hint.split("run `oauth-pkce ").skip(1) {
            let command = run.split('`').next().unwrap_or_default();
            let per_provider = ["authorize", "refresh", "token", "revoke"]
                .iter()
                .any(|c| command == *c || command.starts_with(&format!("{c} ")));
            assert!(
                !per_provider || command.contains("--provider "),
                "a hint's command lacks --provider: {hint}"
            );
        }
        let message = rendered(e);
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            let text = cause.to_string();
            assert_eq!(
                message.matches(&text).count(),
                1,
                "a cause printed twice: {message}"
            );
            source = cause.source();
        }
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/error-texts.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let snapshot = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        snapshot == text,
        "error texts changed: review them, then run UPDATE_SNAPSHOTS=1 cargo test --lib error::"
    );
}
