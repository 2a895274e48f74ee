//! `oauth-pkce`: parse, run, print the error and a hint, exit with SPEC.md's code.

mod cli;

use clap::Parser as _;

fn main() {
    let cli = cli::Cli::parse();
    init_logging(cli.verbosity());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let code = runtime.block_on(async {
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
fn report(e: &oauth_pkce::Error) -> i32 {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    eprintln!("error: {}", oauth_pkce::text::terminal_safe(&message, 1000));
    eprintln!("hint: {}", e.hint());
    e.exit_code()
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => return,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
