//! An HTTP/2 stream whose response the client does not take is reset after the write
//! timeout (`MESH_WRITE_TIMEOUT_SECS`), like an HTTP/1 connection whose writes stall.
//!
//! Over HTTP/1 a client that stops reading fills the socket, and `ConnIo` ends the
//! connection. Over HTTP/2 one stream's flow-control window can stay closed while the
//! connection carries other streams and answers pings: hyper then just stops polling
//! that stream's body, so nothing inside the body runs to notice. So every HTTP/2
//! stream runs inside a [`StallGuard`] (hyper spawns streams through [`GuardedStreams`]),
//! which watches the stream's response body through a shared [`StallWatch`]: a body is
//! *waiting* from the moment it has something to hand over (its first poll is due, it
//! just handed out a frame, or what it waits on woke it) until hyper polls it again.
//! A body waiting for the write timeout is a stream the client takes nothing from: the
//! guard drops it, h2 resets the stream (`RST_STREAM` `CANCEL`), and the body, with
//! the run subscription and log slices it holds, is freed. A body with nothing to send
//! (a quiet run) is not waiting, however long the quiet lasts.

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

tokio::task_local! {
    /// The watch of the HTTP/2 stream whose task is running (unset on HTTP/1).
    static STREAM_WATCH: Arc<StallWatch>;
}

/// What the guard of one HTTP/2 stream knows of its response body.
#[derive(Default)]
pub struct StallWatch {
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    /// Since when the body has had something to hand over that hyper has not asked for.
    waiting_since: Option<Instant>,
    /// The stream task, woken on the body's behalf.
    task: Option<Waker>,
}

impl StallWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        crate::util::lock(&self.state)
    }

    fn waiting_since(&self) -> Option<Instant> {
        self.lock().waiting_since
    }
}

/// The body's waker: whatever the body waits on (the run's next event, its keep-alive
/// timer) wakes this, which marks the body waiting and wakes the stream task.
impl Wake for StallWatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = {
            let mut st = self.lock();
            st.waiting_since.get_or_insert_with(Instant::now);
            st.task.clone()
        };
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// A response body under its stream's watch (over HTTP/1 it only passes through).
pub struct Watched<B> {
    body: B,
    /// The stream's watch and the waker made of it.
    watch: Option<(Arc<StallWatch>, Waker)>,
}

impl<B> Watched<B> {
    /// Call on the stream's task (in the service): that is where the watch is found.
    pub fn new(body: B) -> Watched<B> {
        let watch = STREAM_WATCH.try_with(Arc::clone).ok().map(|watch| {
            // Its first poll is due now.
            watch.lock().waiting_since = Some(Instant::now());
            let waker = Waker::from(watch.clone());
            (watch, waker)
        });
        Watched { body, watch }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for Watched<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let Some((watch, waker)) = &this.watch else {
            return Pin::new(&mut this.body).poll_frame(cx);
        };
        {
            let mut st = watch.lock();
            if !st.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                st.task = Some(cx.waker().clone());
            }
        }
        let result = Pin::new(&mut this.body).poll_frame(&mut Context::from_waker(waker));
        // After a frame more may follow: the clock starts again. Otherwise the body has
        // nothing to hand over (it waits, woken through `waker`) or has ended.
        let waiting = matches!(result, Poll::Ready(Some(Ok(_)))).then(Instant::now);
        watch.lock().waiting_since = waiting;
        result
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The executor hyper spawns each HTTP/2 stream with: every stream under a guard.
#[derive(Clone, Copy)]
pub struct GuardedStreams {
    pub write_timeout: Duration,
}

impl<F> hyper::rt::Executor<F> for GuardedStreams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        tokio::spawn(StallGuard {
            stream: Box::pin(stream),
            watch: Arc::default(),
            limit: self.write_timeout,
            timer: None,
        });
    }
}

/// One HTTP/2 stream (hyper's future for it), dropped when its body waited too long.
pub struct StallGuard<F> {
    stream: Pin<Box<F>>,
    watch: Arc<StallWatch>,
    limit: Duration,
    /// Armed at a deadline no later than the real one; re-armed when it fires early,
    /// so a busy stream does not touch the timer wheel per frame.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<F: Future<Output = ()>> Future for StallGuard<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let stream = &mut this.stream;
        if STREAM_WATCH
            .sync_scope(this.watch.clone(), || stream.as_mut().poll(cx))
            .is_ready()
        {
            return Poll::Ready(());
        }
        loop {
            let Some(since) = this.watch.waiting_since() else {
                // Nothing to hand over; the body's waker brings us back when there is.
                return Poll::Pending;
            };
            let deadline = since + this.limit;
            if Instant::now() >= deadline {
                crate::log_debug!(
                    "resetting an HTTP/2 stream: the client took nothing for {} s",
                    this.limit.as_secs()
                );
                // Dropping the stream makes h2 reset it and frees its body.
                return Poll::Ready(());
            }
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.is_elapsed() {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn guard<F: Future<Output = ()>>(stream: F) -> StallGuard<F> {
        StallGuard {
            stream: Box::pin(stream),
            watch: Arc::default(),
            limit: Duration::from_secs(30),
            timer: None,
        }
    }

    /// A stream task whose body hyper never polls (a closed window): only the
    /// service part runs, creating the body.
    #[tokio::test(start_paused = true)]
    async fn a_body_nobody_polls_is_dropped_after_the_limit() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        let started = Instant::now();
        guard(async move {
            let _body = Watched::new(http_body_util::Full::new(Bytes::from("x")));
            let _flag = flag;
            std::future::pending::<()>().await;
        })
        .await;
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    /// Frames from a channel, as a body.
    struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

    impl HttpBody for Channel {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.get_mut()
                .0
                .poll_recv(cx)
                .map(|d| d.map(|d| Ok(Frame::data(d))))
        }
    }

    /// A body read whenever it has something, quiet for far longer than the limit in
    /// between, is never dropped; one that stops being read after a frame is.
    #[tokio::test(start_paused = true)]
    async fn a_quiet_body_that_is_read_stays_and_an_unread_one_goes() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let task = tokio::spawn(guard(async move {
            let mut body = Watched::new(Channel(rx));
            while let Some(frame) = body.frame().await {
                let data = frame.unwrap().into_data().unwrap();
                crate::util::lock(&seen).push(data);
            }
        }));
        for i in 0..3u8 {
            tokio::time::sleep(Duration::from_secs(100)).await;
            tx.send(Bytes::from(vec![i])).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();
        assert_eq!(crate::util::lock(&got).len(), 3);

        // Read once, then never again although a frame is ready.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        tx.send(Bytes::from_static(b"b")).await.unwrap();
        let started = Instant::now();
        guard(async move {
            let mut body = Watched::new(Channel(rx));
            tokio::time::sleep(Duration::from_secs(10)).await;
            let _ = body.frame().await;
            std::future::pending::<()>().await;
        })
        .await;
        // 30 s after the frame was taken, not after the body was made.
        assert_eq!(started.elapsed(), Duration::from_secs(40));
    }
}
