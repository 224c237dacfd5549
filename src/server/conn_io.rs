//! A connection's IO as hyper sees it: the bytes read to detect the protocol are
//! handed out again first, and a write that makes no progress for the write timeout
//! fails, so a client that stops reading (an event-stream subscriber that went
//! silent) loses its connection and frees what its response holds.
//!
//! The write timer costs nothing while writes go through: it is armed only when a
//! write returns `Pending` (the socket buffer is full) and merely marked idle when the
//! next one succeeds, so streaming tokens never touches the timer wheel.

use bytes::{Buf, Bytes};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct ConnIo<T> {
    inner: T,
    /// Read before hyper took over (protocol detection); served before `inner`.
    replay: Bytes,
    write_timeout: Duration,
    /// Fires `write_timeout` after the first `Pending` of the current stall.
    stall_timer: Option<Pin<Box<Sleep>>>,
    /// True from a write's `Pending` to the next write, flush or shutdown that is ready.
    stalled: bool,
}

impl<T> ConnIo<T> {
    pub fn new(inner: T, replay: Bytes, write_timeout: Duration) -> ConnIo<T> {
        ConnIo {
            inner,
            replay,
            write_timeout,
            stall_timer: None,
            stalled: false,
        }
    }

    /// Passes a write's result on; while writes stay pending past the timeout, fails.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if result.is_ready() {
            self.stalled = false;
            return result;
        }
        if !self.stalled {
            self.stalled = true;
            let deadline = Instant::now() + self.write_timeout;
            match &mut self.stall_timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.stall_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        if let Some(timer) = &mut self.stall_timer {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client read nothing for {} s",
                        self.write_timeout.as_secs()
                    ),
                )));
            }
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ConnIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ConnIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn replayed_bytes_come_first() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut io = ConnIo::new(client, Bytes::from_static(b"PRI "), Duration::from_secs(1));
        server.write_all(b"rest").await.unwrap();
        let mut got = [0u8; 8];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"PRI rest");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        let (client, mut peer) = tokio::io::duplex(16);
        let mut io = ConnIo::new(client, Bytes::new(), Duration::from_secs(30));
        // While the peer reads, writes go on for longer than the timeout.
        for _ in 0..4 {
            io.write_all(&[7u8; 16]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(20)).await;
            let mut sink = [0u8; 16];
            peer.read_exact(&mut sink).await.unwrap();
        }
        // Now it stops reading: the buffer fills and the write fails 30 s later.
        io.write_all(&[7u8; 16]).await.unwrap();
        let started = Instant::now();
        let err = io.write_all(&[7u8; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
