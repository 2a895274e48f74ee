//! `oauth-pkce`: parse, run, print the error and a hint, exit with the code the README's "Exit codes" gives.

mod cli;

#[allow(clippy::print_stderr)] // "interrupted", for the person at the terminal
fn main() {
    harden();
    let cli = cli::Cli::parse_args();
    init_logging(cli.verbosity());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let code = runtime.block_on(async {
        if cli.handles_interrupt() {
            return cli.run().await.unwrap_or_else(|e| report(&e));
        }
        tokio::select! {
            result = cli.run() => match result {
                Ok(code) => code,
                Err(e) => report(&e),
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ninterrupted");
                130
            }
        }
    });
    std::process::exit(code);
}

/// Prints `error: …` with its causes and `hint: …`; returns the exit code.
#[allow(clippy::print_stderr)]
fn report(e: &oauth_pkce::Error) -> i32 {
    eprintln!(
        "error: {}",
        oauth_pkce::bin::terminal_safe(&e.with_causes(), 1000)
    );
    eprintln!("hint: {}", oauth_pkce::bin::printable(&e.hint()));
    e.exit_code()
}

/// No core dumps (they would hold tokens), and on Linux no ptrace or /proc reading of this
/// process by other processes of the same user. Only the soft core limit is lowered: `exec`'s
/// command inherits it but may raise it again up to the hard limit, which stays as it was.
#[allow(unsafe_code)]
fn harden() {
    #[cfg(unix)]
    // SAFETY: getrlimit, setrlimit and prctl are called with valid pointers to a local
    // struct and touch no other memory.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_CORE, &mut limit) != 0 {
            limit.rlim_max = 0;
        }
        limit.rlim_cur = 0;
        libc::setrlimit(libc::RLIMIT_CORE, &limit);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => return,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    // Only this crate's events: dependencies' trace logs are not reviewed for secrets.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let ours = tracing_subscriber::filter::filter_fn(move |meta| {
        meta.target().starts_with("oauth_pkce") && *meta.level() <= level
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .without_time()
                .with_filter(ours),
        )
        .init();
}
