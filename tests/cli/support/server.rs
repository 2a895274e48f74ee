//! The one way every fake server here runs: a listener on `127.0.0.1:0`, served on a
//! current-thread tokio runtime of its own thread until the handle is dropped. Dropping stops
//! it and cancels any connection still in flight, so no test hangs on a slow client.

use std::future::Future;
use std::pin::Pin;

use tokio::net::TcpListener;

/// A server running in the background.
pub struct Background {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a server does with its listener.
pub type Serve = Box<dyn FnOnce(TcpListener) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

impl Background {
    /// Binds `127.0.0.1:0`; the socket is listening when this returns.
    pub fn bind() -> std::net::TcpListener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        listener
    }

    /// Runs `serve` on `listener` in a thread named `name`.
    pub fn start(name: &str, listener: std::net::TcpListener, serve: Serve) -> Background {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = serve(listener) => {}
                        _ = rx => {}
                    }
                });
            })
            .expect("spawn a server thread");
        Background {
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Serves an axum app on `listener` (from [`Background::bind`]).
    pub fn router(name: &str, listener: std::net::TcpListener, app: axum::Router) -> Background {
        Background::start(
            name,
            listener,
            Box::new(move |listener| {
                Box::pin(async move {
                    axum::serve(listener, app).await.expect("serve");
                })
            }),
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
