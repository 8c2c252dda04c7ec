//! A write deadline for a connection. hyper has none: once a client stops
//! reading, its answers fill the kernel's buffers, hyper's write waits for
//! room that never comes, and neither the header-read timeout (which runs
//! only while a request is awaited) nor anything else ends the connection.
//! Wrapped in [`WriteDeadline`], a write that backs up must finish within a
//! limit, or it fails and hyper closes the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wall;

/// `inner`, whose output, once it backs up, must all be handed to the
/// kernel within `limit` of wall time: the deadline starts at the first
/// write the socket cannot take and ends when a flush completes, that is,
/// when everything hyper had queued has been taken. Progress in between
/// does not restart it, so a client that reads a trickle is held to the
/// same deadline as one that reads nothing.
pub(crate) struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    backed_up: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            backed_up: None,
        }
    }

    /// Passes `polled` on, starting the deadline when it is pending and
    /// failing once the deadline has passed; `clears` ends the deadline on
    /// success.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        clears: bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => {
                let limit = self.limit;
                let deadline = self
                    .backed_up
                    .get_or_insert_with(|| Box::pin(wall::deadline(limit)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not take its answer in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(result) => {
                if clears && result.is_ok() {
                    self.backed_up = None;
                }
                Poll::Ready(result)
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled, false)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled, false)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled, true)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled, true)
    }
}
