//! Body wrappers that bound a request in time: the request body must arrive within the
//! body timeout (in total, so a client sending a byte now and then gains nothing), and
//! the response body's end tells the connection that it is idle again.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::timed_io::RequestGuard;

/// The error a request body gives when its time is up. The API's error layer recognises
/// its text ([`BODY_TIMEOUT_TEXT`]) and answers 408 naming the body.
#[derive(Debug, thiserror::Error)]
#[error("{BODY_TIMEOUT_TEXT}")]
pub struct BodyTimedOut;

/// The text of [`BodyTimedOut`].
pub const BODY_TIMEOUT_TEXT: &str = "request body timed out";

/// A request body with a deadline.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    timed_out: bool,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, timeout: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            timed_out: false,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.timed_out = true;
                    metrics::counter!("tsubame_http_timeouts_total", "stage" => "body")
                        .increment(1);
                    return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that marks its request finished when it ends or is dropped.
pub struct FinishingBody<B> {
    inner: B,
    guard: Option<RequestGuard>,
}

impl<B> FinishingBody<B> {
    pub fn new(inner: B, guard: RequestGuard) -> FinishingBody<B> {
        FinishingBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B> Body for FinishingBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
