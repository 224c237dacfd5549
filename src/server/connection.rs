//! Serving one accepted connection, with a time limit on every stage, so a client
//! that goes silent anywhere gives its connection slot back:
//!
//! | stage | limit |
//! |---|---|
//! | TLS handshake | `MESH_CONN_TIMEOUT_SECS` (10 s) |
//! | first bytes, until the protocol is known (a partial HTTP/2 preface waits here) | the same |
//! | an HTTP/1 request head, also between keep-alive requests | the same |
//! | no request in flight (an HTTP/2 connection with no stream, an idle keep-alive) | the same |
//! | a request body (answered `408`, in the router) | the same |
//! | a write the client does not read (`ConnIo`) | `MESH_WRITE_TIMEOUT_SECS` (30 s) |
//! | an HTTP/2 stream the client takes nothing from (`stream_stall`): reset | the same |
//!
//! HTTP/2 connections are also pinged every 20 s; a ping not answered within the
//! stage limit closes the connection, even with streams open.

use super::conn_io::ConnIo;
use super::idle::{Activity, Tracked};
use super::stream_stall::{GuardedStreams, Watched};
use crate::api::state::AppState;
use bytes::{Bytes, BytesMut};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

pub const MAX_HEADERS: usize = 64;
/// Bounds the per-connection read buffer, and so the size of the request head.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How often an HTTP/2 peer is asked to prove it is still there.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
/// What every HTTP/2 connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http1,
    Http2,
}

/// Serves `stream` (over TLS when an acceptor is given) until it ends or times out.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let stage = state.listener.conn_timeout;
    let Some(acceptor) = tls else {
        return serve_io(stream, peer, state).await;
    };
    match tokio::time::timeout(stage, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => serve_io(tls_stream, peer, state).await,
        Ok(Err(e)) => crate::log_debug!("TLS handshake with {peer} failed: {e}"),
        Err(_) => crate::log_debug!("TLS handshake with {peer} timed out"),
    }
}

async fn serve_io<T>(mut io: T, peer: SocketAddr, state: Arc<AppState>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stage = state.listener.conn_timeout;
    let write_timeout = state.listener.write_timeout;
    let (version, seen) = match tokio::time::timeout(stage, detect_version(&mut io)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            crate::log_debug!("connection from {peer} ended before a request: {e}");
            return;
        }
        Err(_) => {
            crate::log_debug!(
                "connection from {peer} sent no request in {} s",
                stage.as_secs()
            );
            return;
        }
    };
    let io = TokioIo::new(ConnIo::new(io, seen, write_timeout));

    let activity = Arc::new(Activity::default());
    let ip = peer.ip();
    let service = {
        let activity = activity.clone();
        service_fn(move |req| {
            let state = state.clone();
            let in_flight = activity.begin();
            async move {
                let resp = super::router::handle(req, state, ip).await?;
                // On an HTTP/2 stream's task: the body is watched by its stream's guard.
                Ok::<_, Infallible>(resp.map(|body| Tracked::new(Watched::new(body), in_flight)))
            }
        })
    };
    let builder = auto::Builder::new(GuardedStreams { write_timeout });
    let mut builder = match version {
        Version::Http1 => builder.http1_only(),
        Version::Http2 => builder.http2_only(),
    };
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(stage)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(stage);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = activity.idle_for(stage) => {
            crate::log_debug!("closing idle connection from {peer}");
            conn.as_mut().graceful_shutdown();
            // The goodbye (an HTTP/2 GOAWAY) gets as long as any other stage.
            tokio::time::timeout(stage, conn.as_mut()).await.unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        crate::log_debug!("connection from {peer} ended: {e}");
    }
}

/// Reads until the first bytes tell HTTP/1 from HTTP/2: a byte that leaves the
/// HTTP/2 preface, or the whole preface. Returns what was read, for hyper to read again.
async fn detect_version<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<(Version, Bytes)> {
    let mut seen = BytesMut::with_capacity(H2_PREFACE.len());
    loop {
        if io.read_buf(&mut seen).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let common = seen.len().min(H2_PREFACE.len());
        if seen[..common] != H2_PREFACE[..common] {
            return Ok((Version::Http1, seen.freeze()));
        }
        if seen.len() >= H2_PREFACE.len() {
            return Ok((Version::Http2, seen.freeze()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn detect(parts: &[&[u8]]) -> std::io::Result<(Version, Bytes)> {
        let (mut client, mut server) = tokio::io::duplex(1024);
        for p in parts {
            client.write_all(p).await.unwrap();
        }
        drop(client);
        detect_version(&mut server).await
    }

    #[tokio::test]
    async fn the_first_bytes_tell_the_protocol() {
        let (v, seen) = detect(&[b"GET / HTTP/1.1\r\n"]).await.unwrap();
        assert_eq!(v, Version::Http1);
        assert!(seen.starts_with(b"G"));
        // "P" could be either until a byte leaves the preface.
        let (v, _) = detect(&[b"P", b"OST / HTTP/1.1\r\n"]).await.unwrap();
        assert_eq!(v, Version::Http1);
        let (v, seen) = detect(&[b"PRI * HTTP/2.0\r\n", b"\r\nSM\r\n\r\n\0\0"])
            .await
            .unwrap();
        assert_eq!(v, Version::Http2);
        assert!(seen.starts_with(H2_PREFACE));
        // A partial preface and then the end: no protocol.
        assert!(detect(&[b"PRI * HTTP/2.0\r\n"]).await.is_err());
        assert!(detect(&[]).await.is_err());
    }
}
