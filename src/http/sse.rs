//! Serving a run's event stream: `retry`, the `connection` event, replay after
//! `Last-Event-ID`, then live events as they are logged, with keep-alive comments.
//!
//! The response body reads the run's log itself: each time hyper asks for more, it
//! gets the logged bytes after its position as shared slices of the log, or parks its
//! waker with the run until the next event. No task, channel or copy per subscriber,
//! and hyper asks only when it can write, which is the backpressure for slow clients
//! (the log, kept anyway for replay, holds the rest).

use super::body::Body;
use super::subscriber_limit::SubscriberSlot;
use crate::store::{LogPoll, RunHandle, Subscription};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame};
use hyper::Response;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// A `: keep-alive` comment goes out after this much silence, so proxies and
/// browsers do not close an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The comment sent after `KEEP_ALIVE` of silence (SSE clients ignore comments).
pub const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// Live stream subscribers in this process (for metrics and shutdown).
pub static ACTIVE_STREAMS: AtomicUsize = AtomicUsize::new(0);
/// Woken whenever a stream ends, so shutdown can wait for the last one without polling.
static STREAM_ENDED: Notify = Notify::const_new();

/// Held by every open event stream (this module's and `/v1`'s chunk streams), so
/// shutdown waits for them all.
pub(crate) struct StreamCount;

impl StreamCount {
    pub(crate) fn new() -> StreamCount {
        ACTIVE_STREAMS.fetch_add(1, Ordering::Relaxed);
        StreamCount
    }
}

impl Drop for StreamCount {
    fn drop(&mut self) {
        ACTIVE_STREAMS.fetch_sub(1, Ordering::Relaxed);
        STREAM_ENDED.notify_waiters();
    }
}

/// An event-stream body that a task feeds through a channel (`/v1`'s chunks, an MCP
/// tool call's messages). It counts as an open stream, so a graceful shutdown lets
/// it deliver a run's last frames before the process exits; the task sees the
/// channel close as soon as the client goes away.
pub(crate) struct ChannelBody {
    frames: tokio::sync::mpsc::Receiver<Bytes>,
    _count: StreamCount,
}

impl ChannelBody {
    pub(crate) fn new(frames: tokio::sync::mpsc::Receiver<Bytes>) -> ChannelBody {
        ChannelBody {
            frames,
            _count: StreamCount::new(),
        }
    }
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .frames
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Resolves when no event stream is open.
pub async fn all_streams_closed() {
    loop {
        let ended = STREAM_ENDED.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        if ACTIVE_STREAMS.load(Ordering::Relaxed) == 0 {
            return;
        }
        ended.await;
    }
}

/// The event stream of `run` for the subscriber holding `guard` and `slot`.
pub fn stream_response(
    run: &RunHandle,
    guard: Subscription,
    slot: SubscriberSlot,
    resume_from: Option<u64>,
) -> Response<Body> {
    let hello = format!(
        "retry: 2000\n\nevent: connection\ndata: {}\n\n",
        json!({"run_id": run.id(), "resumed_from": resume_from})
    );
    let offset = guard.offset_after(resume_from.unwrap_or(0));
    let stream = RunStream {
        guard,
        hello: Some(Bytes::from(hello)),
        offset,
        ready: VecDeque::new(),
        keep_alive: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
        keep_alive_waker: None,
        last_sent: Instant::now(),
        _count: StreamCount::new(),
        _slot: slot,
    };
    super::body::sse(stream.boxed())
}

/// One subscriber's response body. Dropping it (the stream ended, or hyper saw the
/// client go away) releases the subscriber and its parked waker.
struct RunStream {
    guard: Subscription,
    hello: Option<Bytes>,
    /// Log offset of the next byte to send.
    offset: u64,
    /// Slices of the log handed out but not yet given to hyper.
    ready: VecDeque<Bytes>,
    /// Fires at `last_sent + KEEP_ALIVE` or earlier; it is not re-armed per event
    /// (a timer-wheel insert and remove each time), only when it fires.
    keep_alive: Pin<Box<Sleep>>,
    /// The waker the pending keep-alive timer will wake: while it is the current one
    /// and the timer has not fired, polling the timer again would only re-register it.
    keep_alive_waker: Option<Waker>,
    last_sent: Instant,
    _count: StreamCount,
    /// Its place under the subscriber caps, given back with the stream.
    _slot: SubscriberSlot,
}

impl RunStream {
    fn send(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.last_sent = Instant::now();
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl HttpBody for RunStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(hello) = this.hello.take() {
            return this.send(hello);
        }
        if this.ready.is_empty() {
            match this
                .guard
                .poll_log(&mut this.offset, &mut this.ready, cx.waker())
            {
                LogPoll::Data => {}
                // After `done` the stream ends.
                LogPoll::Finished => return Poll::Ready(None),
                LogPoll::Pending => loop {
                    let armed = this
                        .keep_alive_waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()));
                    if armed && !this.keep_alive.is_elapsed() {
                        return Poll::Pending;
                    }
                    if this.keep_alive.as_mut().poll(cx).is_pending() {
                        this.keep_alive_waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    this.keep_alive_waker = None;
                    let due = this.last_sent + KEEP_ALIVE;
                    if Instant::now() >= due {
                        this.keep_alive.as_mut().reset(Instant::now() + KEEP_ALIVE);
                        return this.send(Bytes::from_static(KEEP_ALIVE_COMMENT));
                    }
                    this.keep_alive.as_mut().reset(due);
                },
            }
        }
        match this.ready.pop_front() {
            Some(bytes) => this.send(bytes),
            None => Poll::Ready(None),
        }
    }
}
