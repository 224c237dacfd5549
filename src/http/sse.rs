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
use tokio::sync::mpsc;

/// A `: keep-alive` comment goes out after this much silence, so proxies and
/// browsers do not close an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Live stream subscribers in this process (for metrics and shutdown).
pub static ACTIVE_STREAMS: AtomicUsize = AtomicUsize::new(0);

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
    }
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
    if tx.send(Bytes::from(hello)).await.is_err() {
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
            if tx.send(join(frames)).await.is_err() {
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
                if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
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
