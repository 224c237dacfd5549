//! The serve loop: bind, accept (optionally over TLS), serve each connection with
//! header limits and timeouts, and drain gracefully on SIGTERM/SIGINT (SPEC §8).

use crate::app::AppState;
use crate::config::Config;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Headers must arrive within this time: a client that trickles them is cut off.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_HEADERS: usize = 64;
/// Bounds the per-connection read buffer, and so the size of the request head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Binds, logs `listening on http://ADDR`, and serves until `shutdown` resolves;
/// then drains running pipelines for the grace period and returns.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let tls = match &config.tls {
        Some(files) => Some(super::super::tls::acceptor(files)?),
        None => None,
    };
    if config.credentials.is_none() {
        crate::log_warn!("no MESH_USER/MESH_PASS set: authentication is off (loopback only)");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    crate::log_info!("listening on {scheme}://{addr}");
    crate::log_info!(
        "provider {} (configured: {})",
        config.provider,
        config
            .providers
            .configured()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let grace = config.shutdown_grace;
    let state = AppState::new(config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // The catalog fills in the background; serving starts at once.
    let catalog = state.providers.catalog().clone();
    tokio::spawn(catalog.keep_fresh(
        state.providers.clone(),
        state.providers.configured().to_vec(),
    ));

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_connection(stream, peer, state.clone(), tls.clone()),
                Err(e) => {
                    // Running out of file descriptors must not end the server: log, pause, go on.
                    crate::log_warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drain(&state, grace, listener).await;
    Ok(())
}

fn spawn_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let service = service_fn(move |req| super::router::handle(req, state.clone()));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEAD_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD_BYTES as u32);
        let result = match tls {
            None => {
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
            }
            Some(acceptor) => {
                match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        builder
                            .serve_connection(TokioIo::new(tls_stream), service)
                            .await
                    }
                    Ok(Err(e)) => {
                        crate::log_debug!("TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        crate::log_debug!("TLS handshake with {peer} timed out");
                        return;
                    }
                }
            }
        };
        if let Err(e) = result {
            crate::log_debug!("connection from {peer} ended: {e}");
        }
    });
}

/// Graceful shutdown: no new runs (503), running pipelines may finish within the grace
/// period, the rest are cancelled; open streams get their `done` and close. New
/// connections are still served meanwhile, so clients can follow their runs to the end.
async fn drain(state: &Arc<AppState>, grace: Duration, listener: TcpListener) {
    let store = state.store.clone();
    store.begin_shutdown();
    let active = store.active_runs();
    crate::log_info!(
        "shutting down: {active} running pipelines get up to {} s to finish",
        grace.as_secs()
    );
    let accept_state = state.clone();
    let accept_loop = tokio::spawn(async move {
        loop {
            if let Ok((stream, peer)) = listener.accept().await {
                spawn_connection(stream, peer, accept_state.clone(), None);
            }
        }
    });
    if tokio::time::timeout(grace, store.wait_idle())
        .await
        .is_err()
    {
        crate::log_info!("grace period over: cancelling {} runs", store.active_runs());
        store.cancel_all("server shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), store.wait_idle()).await;
    }
    // Let subscribers receive their final events before the process exits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while super::sse::ACTIVE_STREAMS.load(std::sync::atomic::Ordering::Relaxed) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    accept_loop.abort();
    crate::log_info!("shutdown complete");
}
