//! The serve loop: bind, accept up to the connection cap, hand each connection to
//! `connection` (TLS, protocol, timeouts), and drain gracefully on SIGTERM/SIGINT (SPEC §8).

use super::connection_limit::{PeerConnections, PeerSlot};
use crate::api::state::AppState;
use crate::config::Settings;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Binds, logs `listening on http://ADDR`, and serves until `shutdown` resolves;
/// then drains running pipelines for the grace period and returns.
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let listener = TcpListener::bind(settings.listener.addr).await?;
    let addr = listener.local_addr()?;
    let tls = match &settings.listener.tls {
        Some(files) => Some(crate::tls::acceptor(files)?),
        None => None,
    };
    if !settings.auth.auth_required() {
        crate::log_warn!(
            "no MESH_USER/MESH_PASS or MESH_API_KEYS set: authentication is off (loopback only)"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    crate::log::announce(format_args!("listening on {scheme}://{addr}"));
    crate::log_info!(
        "provider {} (configured: {})",
        settings.providers.active,
        settings
            .providers
            .configured()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let grace = settings.listener.shutdown_grace;
    let max_connections = settings.listener.max_connections;
    // Behind a trusted edge every connection comes from the edge: no per-peer cap.
    let per_peer = (settings.auth.trust_proxy == crate::http::client_addr::TrustProxy::Off)
        .then_some(settings.listener.max_connections_per_peer);
    let state = AppState::new(settings)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // The catalog fills in the background; serving starts at once.
    let catalog = state.providers.catalog().clone();
    tokio::spawn(catalog.keep_fresh(
        state.providers.clone(),
        state.providers.configured().to_vec(),
    ));
    // MCP servers connect in the background too: a slow or dead one delays nothing,
    // and its error shows in GET /api/tools.
    let tools = state.providers.tools().cloned();
    if let Some(tools) = tools.clone() {
        let roster = state.pipeline.roster.clone();
        tokio::spawn(async move {
            tools.connect_all().await;
            // A roster entry naming a tool its (connected) server lacks grants nothing.
            for server in tools.servers().await.iter().filter(|s| s.connected) {
                let names: Vec<&str> = server.tools.iter().map(|t| t.name.as_str()).collect();
                for warning in roster.grants_missing_from(&server.name, &names) {
                    crate::log_warn!("MESH_AGENTS: {warning}");
                }
            }
        });
    }

    let server = Arc::new(Server {
        state,
        tls,
        connections: Arc::new(Semaphore::new(max_connections)),
        per_peer: PeerConnections::new(per_peer),
    });

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => server.accepted(accepted).await,
        }
    }
    drain(server, grace, listener).await;
    // Sessions end and stdio children are stopped, not left behind.
    if let Some(tools) = tools {
        tools.shutdown().await;
    }
    Ok(())
}

/// What every connection needs.
struct Server {
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// One permit per open connection: at the cap, new connections get a 503.
    connections: Arc<Semaphore>,
    /// Open connections per peer address (`MESH_MAX_CONNECTIONS_PER_PEER`).
    per_peer: Arc<PeerConnections>,
}

impl Server {
    async fn accepted(self: &Arc<Self>, accepted: std::io::Result<(TcpStream, SocketAddr)>) {
        match accepted {
            Ok((stream, peer)) => {
                let Some(slot) = self.per_peer.try_open(peer.ip()) else {
                    return refuse(stream, Refusal::PeerCap);
                };
                match self.connections.clone().try_acquire_owned() {
                    Ok(permit) => self.spawn_connection(stream, peer, (permit, slot)),
                    Err(_) => refuse(stream, Refusal::ServerCap),
                }
            }
            Err(e) => {
                // Running out of file descriptors must not end the server: log, pause, go on.
                crate::log_warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn spawn_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        permit: (OwnedSemaphorePermit, PeerSlot),
    ) {
        let _ = stream.set_nodelay(true);
        let state = self.state.clone();
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            super::connection::serve(stream, peer, state, tls).await;
        });
    }
}

/// Which connection cap a new connection met.
enum Refusal {
    ServerCap,
    PeerCap,
}

/// At a connection cap: a short 503 instead of a silent queue, so clients and
/// load balancers know to back off.
fn refuse(mut stream: TcpStream, cap: Refusal) {
    crate::metrics::METRICS.connection_refused();
    tokio::spawn(async move {
        let body = match cap {
            Refusal::ServerCap => {
                r#"{"error":{"code":"overloaded","message":"the server is at its connection limit; try again shortly"}}"#
            }
            Refusal::PeerCap => {
                r#"{"error":{"code":"overloaded","message":"too many connections are open from your address (MESH_MAX_CONNECTIONS_PER_PEER); close some and try again"}}"#
            }
        };
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            stream.write_all(response.as_bytes()),
        )
        .await;
        let _ = stream.shutdown().await;
    });
}

/// Graceful shutdown: no new runs (503), running pipelines may finish within the grace
/// period, the rest are cancelled; open streams get their `done` and close. New
/// connections are still served meanwhile, so clients can follow their runs to the end.
async fn drain(server: Arc<Server>, grace: Duration, listener: TcpListener) {
    let store = server.state.store.clone();
    store.begin_shutdown();
    let active = store.active_runs();
    crate::log_info!(
        "shutting down: {active} running pipelines get up to {} s to finish",
        grace.as_secs()
    );
    let accepting = server.clone();
    let accept_loop = tokio::spawn(async move {
        loop {
            let accepted = listener.accept().await;
            accepting.accepted(accepted).await;
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
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        crate::http::sse::all_streams_closed(),
    )
    .await;
    accept_loop.abort();
    crate::log_info!("shutdown complete");
}
