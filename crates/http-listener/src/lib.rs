//! The HTTP listener of `tsubame serve`: accepts connections, caps them per client address
//! and in total, bounds every stage of a connection in time, and serves the axum router
//! over HTTP/1.1 (keep-alive) and HTTP/2. `axum::serve` has no such limits: a client that
//! opened connections and sent nothing, half a head or half a body kept each one open
//! forever, and the process's descriptors are shared with SMTP.
//!
//! # Layout
//! - [`admission`]: the caps at accept time and the 429/503 answers.
//! - [`timed_io`]: the socket with idle, header and send deadlines.
//! - [`bodies`]: the request body's deadline; the response body's end.

pub mod admission;
pub mod bodies;
pub mod timed_io;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

use admission::{Admission, Refusal, Slot};
use bodies::{DeadlineBody, FinishingBody};
use timed_io::{Activity, Deadlines, TimedIo};

/// The listener's limits, validated by the caller.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// From the first byte of a request to the end of its head.
    pub header_timeout: Duration,
    /// From the end of a request's head to the end of its body.
    pub body_timeout: Duration,
    /// How long a connection may wait between requests (and before its first).
    pub idle_timeout: Duration,
    /// How long writing an answer may stall (a client that does not read).
    pub send_timeout: Duration,
    /// Open HTTP connections in total; beyond, 503 and close.
    pub connections_max: usize,
    /// Open HTTP connections from one address; beyond, 429 and close.
    pub connections_per_ip_max: u32,
    /// Longest request head (request line and header fields); beyond, 431.
    pub header_bytes_max: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets
/// requests in progress finish (idle connections close at once) and returns when every
/// connection has closed or `grace` has passed.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    let admission = Admission::new(limits.connections_max, limits.connections_per_ip_max);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, most likely: wait for some to be given back rather
                // than spinning on the error.
                tracing::warn!(error = %err, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match admission.admit(peer.ip()) {
            Ok(slot) => {
                connections.spawn(connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    slot,
                    stop_rx.clone(),
                ));
            }
            Err(refusal) => {
                connections.spawn(refuse(stream, refusal));
            }
        }
        metrics::gauge!("tsubame_http_connections_open").set(admission.open() as f64);
    }
    let _ = stop_tx.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("HTTP connections still open after the shutdown grace; closing them");
        connections.abort_all();
    }
}

/// Answers a refused connection and closes it, within a second.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    metrics::counter!("tsubame_http_connections_refused_total", "reason" => refusal.label())
        .increment(1);
    let answer = refusal.answer();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// Serves one connection.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    limits: HttpLimits,
    _slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let deadlines = Deadlines {
        header: limits.header_timeout,
        idle: limits.idle_timeout,
        send: limits.send_timeout,
    };
    let io = TokioIo::new(TimedIo::new(stream, activity.clone(), deadlines));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = activity.request_started();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = axum::body::Body::new(DeadlineBody::new(body, limits.body_timeout));
        let mut router = router.clone();
        async move {
            let response = match router.call(hyper::Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = response.map(|b| axum::body::Body::new(FinishingBody::new(b, guard)));
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Our own deadlines (TimedIo) apply instead of hyper's, which would also cut idle
        // keep-alive connections at the header timeout.
        .header_read_timeout(None)
        .max_buf_size(limits.header_bytes_max.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.header_bytes_max as u32);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "HTTP connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
