//! Serving a run's event stream: `retry`, the `connection` event, replay after
//! `Last-Event-ID`, then live events as they are logged, with keep-alive comments.

use super::body::{channel, Body};
use crate::store::{Run, SubscriberGuard};
use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// A `: keep-alive` comment goes out after this much silence, so proxies and
/// browsers do not close an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Live stream subscribers in this process (for metrics and shutdown).
pub static ACTIVE_STREAMS: AtomicUsize = AtomicUsize::new(0);
/// Woken whenever a stream ends, so shutdown can wait for the last one without polling.
static STREAM_ENDED: Notify = Notify::const_new();

/// A stalled reader is dropped after this long: its events stay in the run's log
/// for a later resume, but the connection is not held forever.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

struct StreamCount;

impl StreamCount {
    fn new() -> StreamCount {
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

async fn send(tx: &mpsc::Sender<Bytes>, chunk: Bytes) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(chunk)).await,
        Ok(Ok(()))
    )
}

pub fn stream_response(
    run: Arc<Run>,
    guard: SubscriberGuard,
    resume_from: Option<u64>,
) -> Response<Body> {
    // A small buffer: a slow client applies backpressure here while the run's log
    // (which is kept anyway for replay) absorbs the rest.
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(follow(run, guard, resume_from, tx));
    let mut resp = Response::new(channel(rx));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

async fn follow(
    run: Arc<Run>,
    guard: SubscriberGuard,
    resume_from: Option<u64>,
    tx: mpsc::Sender<Bytes>,
) {
    let _guard = guard;
    let _count = StreamCount::new();
    let hello = format!(
        "retry: 2000\n\nevent: connection\ndata: {}\n\n",
        json!({"run_id": run.id, "resumed_from": resume_from})
    );
    if !send(&tx, Bytes::from(hello)).await {
        return;
    }
    let mut cursor = resume_from.unwrap_or(0);
    let mut seq = run.watch_seq();
    loop {
        // Mark the current seq as seen *before* reading the log, so an event pushed
        // in between wakes us instead of being missed.
        seq.borrow_and_update();
        let (frames, last, finished) = run.frames_after(cursor);
        if !frames.is_empty() {
            cursor = last;
            if !send(&tx, join(frames)).await {
                return;
            }
        }
        if finished && cursor >= last {
            return;
        }
        tokio::select! {
            changed = seq.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(KEEP_ALIVE) => {
                if !send(&tx, Bytes::from_static(b": keep-alive\n\n")).await {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

/// Several pending events go out as one chunk: one write instead of many.
fn join(frames: Vec<Bytes>) -> Bytes {
    if frames.len() == 1 {
        return frames.into_iter().next().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for f in frames {
        out.extend_from_slice(&f);
    }
    out.freeze()
}
