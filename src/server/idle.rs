//! Whether a connection is doing anything: requests in flight (until their response
//! body is dropped), and since when none has been. A connection idle for the timeout
//! is closed — an HTTP/2 client that sent its preface and SETTINGS and then nothing,
//! or kept a connection open without a stream, holds no slot forever.

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
pub struct Activity {
    state: Mutex<State>,
}

struct State {
    in_flight: usize,
    idle_since: Instant,
}

impl Default for State {
    fn default() -> Self {
        State {
            in_flight: 0,
            idle_since: Instant::now(),
        }
    }
}

impl Activity {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Two counters that every writer leaves consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.lock().in_flight += 1;
        InFlight {
            activity: self.clone(),
        }
    }

    /// Resolves once no request has been in flight for `limit`. Wakes at most once
    /// per `limit`, not per request.
    pub async fn idle_for(&self, limit: Duration) {
        let mut deadline = Instant::now() + limit;
        loop {
            tokio::time::sleep_until(deadline).await;
            let now = Instant::now();
            let state = self.lock();
            if state.in_flight > 0 {
                deadline = now + limit;
            } else if state.idle_since + limit <= now {
                return;
            } else {
                deadline = state.idle_since + limit;
            }
        }
    }
}

/// One request in flight; dropped with its response body.
pub struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// A response body that keeps its request counted as in flight while it lives.
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Tracked<B> {
        Tracked {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_means_no_request_for_the_whole_limit() {
        let activity = Arc::new(Activity::default());
        let limit = Duration::from_secs(10);
        let started = Instant::now();
        // A request from 5 s to 25 s: idle only from 25 s, so closed at 35 s.
        let a = activity.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let guard = a.begin();
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(guard);
        });
        activity.idle_for(limit).await;
        assert_eq!(started.elapsed(), Duration::from_secs(35));
    }
}
