//! `oauth-pkce demo`: runs `authorize`, `status`, `token` and `refresh` — the library's own
//! functions, printed by the same code as the real commands — against the demo's local
//! authorization server and in-memory store ([`oauth_pkce::demo`]), explaining each step on
//! stderr. Data (summaries, the status table, the token) goes to stdout as usual.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use secrecy::ExposeSecret as _;

use super::demo_server::Demo;
use oauth_pkce::bin::{authorize, refresh, status_of, AuthorizeOptions};
use oauth_pkce::{Error, Event, Reporter, Result};

use super::args::DemoArgs;
use super::output::{print_status, Stderr, Summary};

fn step(n: u8, text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "\n[{n}/5] {text}");
}

pub(super) async fn run(
    args: &DemoArgs,
    browser_var: Option<String>,
    reporter: &Stderr,
) -> Result<i32> {
    let _ = writeln!(
        std::io::stderr().lock(),
        "oauth-pkce demo: the whole cycle on this machine. Nothing leaves 127.0.0.1; no Doppler\naccount and no provider app are involved, and everything is gone when the demo ends."
    );
    let demo = Demo::start().await?;
    let ctx = &demo.ctx;
    step(
        1,
        &format!(
            "Two local servers, in this process:\n      authorization server     {}  (PKCE S256 required, single-use codes, rotating refresh tokens)\n      Doppler-compatible store {}  (in memory; DOPPLER_API_HOST points here)\n      The store already holds DEMO_CLIENT_ID and DEMO_CLIENT_SECRET, as Doppler would hold\n      JOBBER_CLIENT_ID and JOBBER_CLIENT_SECRET for a real app.",
            demo.server_url, demo.store_url
        ),
    );

    step(
        2,
        &format!(
            "authorize: a fresh PKCE verifier and state, a callback server on 127.0.0.1:{}, the sign-in\n      in the browser, the code exchanged with the verifier, and the tokens written to the store\n      in one request.{}",
            ctx.provider.ports.first,
            if args.no_browser {
                " With --no-browser the demo plays the browser: it opens the URL below,\n      approves on the consent page and follows the redirect to the callback."
            } else {
                " Approve on the page that opens in your browser."
            }
        ),
    );
    let (url_tx, url_rx) = tokio::sync::oneshot::channel();
    let demo_reporter = DemoReporter {
        inner: reporter,
        url: Mutex::new(args.no_browser.then_some(url_tx)),
    };
    let opts = AuthorizeOptions {
        no_browser: args.no_browser,
        timeout: Duration::from_secs(args.timeout),
        browser_var,
        ..AuthorizeOptions::default()
    };
    let signed_in = authorize(ctx, &opts, &demo_reporter);
    // The demo's browser, when it plays one: only its failure ends the wait early.
    let browser = async {
        match url_rx.await {
            Ok(url) => match demo.play_browser(&url).await {
                Err(e) => e,
                Ok(()) => std::future::pending().await,
            },
            Err(_) => std::future::pending().await,
        }
    };
    let done = tokio::select! {
        // Deny on the demo's own page: say how to run the demo again, not `authorize`.
        done = signed_in => done.map_err(|e| match e {
            Error::AuthorizationDenied { .. } => Error::DemoDenied,
            e => e,
        })?,
        e = browser => return Err(e),
    };
    Summary::new(
        ctx,
        &done.tokens.access_token,
        done.tokens.refresh_token.is_some(),
        done.tokens.expires_at,
    )
    .print("Authorized", false);

    step(
        3,
        "status: what the store holds now (tokens masked), and the provider's check request sent\n      with the access token (`oauth-pkce status --check`).",
    );
    let row = status_of(
        &ctx.store,
        &ctx.provider,
        ctx.refresh_buffer,
        Some(&ctx.http),
    )
    .await?;
    print_status(&[row], false);

    step(
        4,
        "token: what scripts use, `oauth-pkce token --provider P` — a valid access token alone on\n      stdout, refreshed first when it expires within 300 s. (This one is only good at the demo's\n      server, which stops with the demo.)",
    );
    let fresh = refresh::token(ctx, reporter).await?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        fresh.access_token.expose_secret()
    );

    step(
        5,
        "refresh: a new pair now (`oauth-pkce refresh`). The server rotates the refresh token — the\n      old one dies at once — so oauth-pkce takes this machine's lock and the lease in the\n      store, journals the new pair, and stores it with a compare-and-swap against the token it\n      spent.",
    );
    let refreshed = refresh::refresh(ctx, reporter).await?;
    Summary::new(ctx, &refreshed.access_token, true, refreshed.expires_at)
        .print("Refreshed", false);

    let _ = writeln!(
        std::io::stderr().lock(),
        "\nDone. For real, with your own app and Doppler: put a Doppler token in DOPPLER_TOKEN, the\napp's JOBBER_CLIENT_ID and JOBBER_CLIENT_SECRET in Doppler, then run\n`oauth-pkce authorize --provider jobber` (see the README)."
    );
    Ok(0)
}

/// Passes events on, except the remote-machine hint (the demo's servers are all on this
/// machine); hands the authorization URL to the demo's browser; says what to do when no
/// browser opens.
struct DemoReporter<'a> {
    inner: &'a Stderr,
    url: Mutex<Option<tokio::sync::oneshot::Sender<url::Url>>>,
}

impl Reporter for DemoReporter<'_> {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Remote { .. } => {}
            Event::AuthorizationUrl(url) => {
                self.inner.event(Event::AuthorizationUrl(url));
                if let Some(tx) = self.url.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(url.clone());
                }
            }
            Event::BrowserFailed(why) => {
                self.inner.event(Event::BrowserFailed(why));
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "Open it in a browser on this machine, or run `oauth-pkce demo --no-browser` to let the demo play the browser."
                );
            }
            other => self.inner.event(other),
        }
    }
}
