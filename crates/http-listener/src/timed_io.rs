//! The connection's socket with deadlines. Which deadline applies depends on where the
//! connection is, which the socket alone cannot see, so the request path reports it
//! ([`Activity`]): while no request is being served, a connection that has sent nothing
//! since its last answer may stay `idle_timeout`, and once the first byte of a request
//! has come, its head must be complete within `header_timeout`; while a request is served
//! the body has its own deadline (`bodies::DeadlineBody`). Writing an answer may stall at
//! most `send_timeout` (a client that never reads). A missed deadline is a read or write
//! error, on which the HTTP engine closes the connection.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The time limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub header: Duration,
    pub idle: Duration,
    pub send: Duration,
}

#[derive(Debug)]
struct State {
    /// Requests being served (HTTP/2 serves several at once).
    in_flight: u32,
    /// When the connection last became idle (opened, or its last answer finished).
    idle_since: Instant,
    /// When the first byte after that came: a request head has started.
    head_started: Option<Instant>,
    /// The reader waiting without a deadline while a request was served: woken when the
    /// connection turns idle, so that the idle deadline starts to run.
    reader: Option<std::task::Waker>,
}

/// Where a connection is, shared by its socket and its requests.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Mutex<State>>);

/// Held while a request is served; the connection is idle again when the last is dropped.
#[derive(Debug)]
pub struct RequestGuard(Activity);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.head_started = None;
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
        }
    }
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new()
    }
}

impl Activity {
    pub fn new() -> Activity {
        Activity(Arc::new(Mutex::new(State {
            in_flight: 0,
            idle_since: Instant::now(),
            head_started: None,
            reader: None,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request's head has been read; it is served until the guard is dropped.
    pub fn request_started(&self) -> RequestGuard {
        let mut state = self.lock();
        state.in_flight += 1;
        state.head_started = None;
        RequestGuard(self.clone())
    }

    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
        }
    }

    /// The read deadline now and the stage it belongs to; none while a request is served
    /// (then `waker` is called when the connection turns idle).
    fn read_deadline(
        &self,
        deadlines: &Deadlines,
        waker: &std::task::Waker,
    ) -> Option<(Instant, &'static str)> {
        let mut state = self.lock();
        if state.in_flight > 0 {
            state.reader = Some(waker.clone());
            return None;
        }
        Some(match state.head_started {
            Some(started) => (started + deadlines.header, "header"),
            None => (state.idle_since + deadlines.idle, "idle"),
        })
    }
}

/// A socket with the deadlines above.
pub struct TimedIo<S> {
    inner: S,
    activity: Activity,
    deadlines: Deadlines,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    write_stalled: bool,
}

impl<S> TimedIo<S> {
    pub fn new(inner: S, activity: Activity, deadlines: Deadlines) -> TimedIo<S> {
        let far = Instant::now() + Duration::from_secs(86_400);
        TimedIo {
            inner,
            activity,
            deadlines,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_stalled: false,
        }
    }
}

fn timed_out(stage: &'static str) -> io::Error {
    metrics::counter!("tsubame_http_timeouts_total", "stage" => stage).increment(1);
    io::Error::new(io::ErrorKind::TimedOut, format!("HTTP {stage} timeout"))
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.activity.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, stage)) =
                    self.activity.read_deadline(&self.deadlines, cx.waker())
                else {
                    return Poll::Pending;
                };
                if self.read_timer.deadline() != deadline {
                    self.read_timer.as_mut().reset(deadline);
                }
                match self.read_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out(stage))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> TimedIo<S> {
    /// Runs a write-side poll under the send deadline: the clock starts when a write first
    /// cannot proceed and stops when one does.
    fn send_deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.write_stalled = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !self.write_stalled {
                    self.write_stalled = true;
                    let deadline = Instant::now() + self.deadlines.send;
                    self.write_timer.as_mut().reset(deadline);
                }
                match self.write_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out("send"))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.send_deadline(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.send_deadline(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.send_deadline(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.send_deadline(cx, polled)
    }
}
