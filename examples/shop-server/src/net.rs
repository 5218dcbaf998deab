//! The network edge: serving HTTP/1.1 with a connection cap, a header-read timeout and a
//! shutdown deadline (hyper-util's server; `axum::serve` offers none of them). The
//! client address every per-source limit counts by is the library's
//! (`shopsafe::web::client_source`).

use std::future::Future;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The limits of the edge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub(crate) max_connections: usize,
    /// How long a client may take to send a request's headers (and how long an idle
    /// kept-alive connection stays open).
    pub(crate) header_timeout: Duration,
    /// How long a shutdown waits for requests in flight before it drops their
    /// connections.
    pub(crate) shutdown_deadline: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for at most the deadline and drops whatever is still open.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    edge: Edge,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(edge.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // A failed accept (out of file descriptors, a reset before accept) is
                // the client's or the moment's, not the server's: wait a little, go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream); // Full: closed at once, nothing read.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    // Connections finish their request in flight and close; idle ones close now.
    if tokio::time::timeout(edge.shutdown_deadline, graceful.shutdown())
        .await
        .is_err()
    {
        let left = connections.len();
        connections.abort_all();
        crate::log(&format!(
            "shutdown deadline passed: {left} connections dropped"
        ));
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}
