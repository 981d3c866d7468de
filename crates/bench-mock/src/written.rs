//! When a token counts as written: when the write call that handed its bytes to the kernel
//! returned, not when the body gave it to hyper (hyper buffers it and writes it later in the
//! same poll, or, with a full socket buffer, much later).
//!
//! Every connection's socket is wrapped in [`Stamped`], which shares an [`Outbox`] with the
//! responses of that connection. A response body that yields a frame with tokens queues a
//! [`Pending`] entry; the first write call that returns having taken every byte it was offered
//! stamps the entries queued before it started. Over HTTP/1.1 (plain or TLS) a connection
//! carries one response at a time, so those are exactly the tokens whose bytes that write
//! took. Over HTTP/2 the connection's writes mix every stream's frames and flow control may
//! hold a stream's data back, so HTTP/2 responses stamp a token when it is handed to the
//! connection instead (they queue nothing).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::server::State;
use crate::truth::RequestRecord;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One response's ground-truth record while it is being written. The last holder (the body,
/// or a token still waiting for its write) hands the record to the ground truth.
pub(crate) struct Recording {
    state: Arc<State>,
    record: Mutex<RequestRecord>,
    /// Set when the body has ended: the record is complete but for its last writes.
    ended: AtomicBool,
    /// Tokens stamped so far, to tell when the first answer token (after the reasoning) went.
    stamped: AtomicU32,
}

impl Recording {
    pub(crate) fn new(state: Arc<State>, mut record: RequestRecord) -> Arc<Self> {
        if state.config.token_times && record.stream {
            let planned = record.output_tokens_planned as usize;
            record.token_times_unix_us = Some(Vec::with_capacity(planned));
        }
        Arc::new(Self {
            state,
            record: Mutex::new(record),
            ended: AtomicBool::new(false),
            stamped: AtomicU32::new(0),
        })
    }

    /// `tokens` content tokens, due at `deadline`, were written at `at`.
    pub(crate) fn written(&self, tokens: u32, deadline: Instant, at: Instant) {
        self.state
            .truth
            .tokens_written(u64::from(tokens), at.saturating_duration_since(deadline));
        let us = self.state.clock.unix_us(at);
        let before = self.stamped.fetch_add(tokens, Ordering::AcqRel);
        let mut record = lock(&self.record);
        record.first_token_unix_us.get_or_insert(us);
        record.last_token_unix_us = Some(us);
        if before + tokens > record.reasoning_tokens_planned {
            record.first_answer_token_unix_us.get_or_insert(us);
        }
        if let Some(times) = &mut record.token_times_unix_us {
            times.extend((0..tokens).map(|_| us));
        }
    }

    /// Updates the record (counts, outcome) from the body.
    pub(crate) fn update(&self, change: impl FnOnce(&mut RequestRecord)) {
        change(&mut lock(&self.record));
    }

    /// The body has ended; the record goes to the ground truth once its last writes are
    /// stamped (readers of the ground truth wait for it).
    pub(crate) fn end(&self) {
        if !self.ended.swap(true, Ordering::AcqRel) {
            self.state.truth.closing();
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let record = std::mem::replace(&mut *lock(&self.record), RequestRecord::empty());
        if *self.ended.get_mut() {
            self.state.truth.closed(record);
        } else {
            self.state.truth.push(record);
        }
    }
}

/// Tokens handed to hyper and not yet written.
struct Pending {
    recording: Arc<Recording>,
    tokens: u32,
    deadline: Instant,
}

/// The tokens of one connection's responses waiting for their write.
#[derive(Default)]
pub(crate) struct Outbox {
    pending: Mutex<VecDeque<Pending>>,
}

impl Outbox {
    /// `tokens` tokens due at `deadline` were handed to the connection; they are stamped by the
    /// next write that takes all it is offered.
    pub(crate) fn queue(&self, recording: &Arc<Recording>, tokens: u32, deadline: Instant) {
        lock(&self.pending).push_back(Pending {
            recording: recording.clone(),
            tokens,
            deadline,
        });
    }

    fn queued(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Stamps the first `count` entries, written at `at`.
    fn written(&self, count: usize, at: Instant) {
        for _ in 0..count {
            // One at a time, outside the lock: the last entry of a response hands its record
            // to the ground truth.
            let Some(entry) = lock(&self.pending).pop_front() else {
                return;
            };
            entry.recording.written(entry.tokens, entry.deadline, at);
        }
    }
}

/// A connection's socket (below TLS, so the write is the one to the kernel) that stamps the
/// tokens of [`Outbox`] when a write returns.
pub(crate) struct Stamped<T> {
    inner: T,
    outbox: Arc<Outbox>,
}

impl<T> Stamped<T> {
    pub(crate) fn new(inner: T, outbox: Arc<Outbox>) -> Self {
        Self { inner, outbox }
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Stamps what was queued before a write of `offered` bytes, if the write took them all.
    fn after_write(&self, queued: usize, offered: usize, result: &Poll<std::io::Result<usize>>) {
        if queued > 0 && matches!(result, Poll::Ready(Ok(n)) if *n == offered) {
            self.outbox.written(queued, Instant::now());
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stamped<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let queued = this.outbox.queued();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(queued, buf.len(), &result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let queued = this.outbox.queued();
        let offered = bufs.iter().map(|b| b.len()).sum();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(queued, offered, &result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockConfig;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_token_is_written_when_a_write_takes_all_the_bytes_before_it() {
        let state = Arc::new(State::new(MockConfig::default()).unwrap());
        // A pipe that takes at most 64 bytes: the first write of 100 is partial.
        let (pipe, mut reader) = tokio::io::duplex(64);
        let outbox = Arc::new(Outbox::default());
        let mut socket = Stamped::new(pipe, outbox.clone());
        let recording = Recording::new(
            state.clone(),
            RequestRecord {
                stream: true,
                ..RequestRecord::empty()
            },
        );
        outbox.queue(&recording, 1, Instant::now());
        recording.end();
        drop(recording);
        assert_eq!(socket.write(&[b'x'; 100]).await.unwrap(), 64);
        assert_eq!(outbox.queued(), 1, "a partial write stamps nothing");
        assert_eq!(state.truth.records().len(), 0);
        let mut sink = [0_u8; 64];
        reader.read_exact(&mut sink).await.unwrap();
        assert_eq!(socket.write(&[b'x'; 36]).await.unwrap(), 36);
        assert_eq!(outbox.queued(), 0);
        let records = state.truth.records();
        assert_eq!(records.len(), 1);
        assert!(records[0].first_token_unix_us.is_some());
        assert_eq!(
            records[0].first_token_unix_us,
            records[0].last_token_unix_us
        );
        // Tokens queued after a write began wait for the next one.
        let recording = Recording::new(state.clone(), RequestRecord::empty());
        let queued_before = outbox.queued();
        outbox.queue(&recording, 2, Instant::now());
        socket.after_write(queued_before, 10, &Poll::Ready(Ok(10)));
        assert_eq!(outbox.queued(), 1);
        drop(recording);
        socket.after_write(outbox.queued(), 10, &Poll::Ready(Ok(10)));
        assert_eq!(state.truth.records().len(), 2);
        assert_eq!(state.stats().token_lateness_us.count, 2);
        state.timer.stop();
    }
}
