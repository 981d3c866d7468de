//! Response bodies: whole JSON bodies, and the token stream that writes each token at its
//! deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use rand::rngs::SmallRng;
use tokio::sync::OwnedSemaphorePermit;

use crate::config::FaultKind;
use crate::openai::{self, Envelope};
use crate::server::State;
use crate::truth::RequestRecord;
use crate::written::{Outbox, Recording};

/// The error that makes hyper drop the connection (HTTP/1.1) or reset the stream (HTTP/2)
/// before or during a response (a fault, by design).
#[derive(Debug)]
pub(crate) struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by fault injection")
    }
}

impl std::error::Error for Abort {}

/// Every response body the mock sends.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(Box<TokenStream>),
    /// A non-streamed completion: its tokens are written with it.
    Timed(Option<Box<TimedBody>>),
}

/// A whole body that carries tokens, and the record they are stamped in when it is written.
pub(crate) struct TimedBody {
    pub(crate) bytes: Bytes,
    pub(crate) recording: Arc<Recording>,
    pub(crate) outbox: Option<Arc<Outbox>>,
    pub(crate) tokens: u32,
    pub(crate) deadline: Instant,
}

impl MockBody {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        MockBody::Full(Some(Bytes::from(text.into())))
    }

    /// Whether the body hands its request's record to the ground truth itself.
    pub(crate) fn owns_record(&self) -> bool {
        !matches!(self, MockBody::Full(_))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Abort;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(stream) => stream.poll_next(cx),
            MockBody::Timed(body) => Poll::Ready(body.take().map(|body| {
                let TimedBody {
                    bytes,
                    recording,
                    outbox,
                    tokens,
                    deadline,
                } = *body;
                match outbox {
                    Some(outbox) => outbox.queue(&recording, tokens, deadline),
                    None => recording.written(tokens, deadline, Instant::now()),
                }
                recording.end();
                Ok(Frame::data(bytes))
            })),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None) | MockBody::Timed(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Timed(Some(b)) => SizeHint::with_exact(b.bytes.len() as u64),
            MockBody::Full(None) | MockBody::Timed(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// A fault that strikes after some tokens of a stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamFault {
    pub(crate) kind: FaultKind,
    pub(crate) after_tokens: u32,
    pub(crate) seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Role,
    Tokens,
    Usage,
    Done,
    End,
}

/// Streams `planned` tokens, token k at `first + sum of k gaps`, each gap drawn when the
/// previous token is handed to the connection and scaled by the batch occupancy at that moment.
pub(crate) struct TokenStream {
    state: Arc<State>,
    envelope: Envelope,
    step: Step,
    deadline: Instant,
    planned: u32,
    /// The first this many tokens are reasoning.
    reasoning: u32,
    finish_reason: &'static str,
    include_usage: bool,
    fault: Option<StreamFault>,
    rng: SmallRng,
    recording: Arc<Recording>,
    /// The connection's tokens waiting for their write (HTTP/1.1); None stamps a token when it
    /// is handed over (HTTP/2).
    outbox: Option<Arc<Outbox>>,
    prompt_tokens: u32,
    /// Content tokens handed to the connection.
    sent: u32,
    completed: bool,
    /// Held while decoding; dropping it frees the batch slot.
    slot: Option<OwnedSemaphorePermit>,
    /// The deadline and waker the timer already holds for this stream: hyper polls a body
    /// again after every write, and each early poll used to queue one more timer entry and
    /// wake-up for the same deadline.
    armed: Option<(Instant, Waker)>,
}

pub(crate) struct StreamPlan {
    pub(crate) envelope: Envelope,
    pub(crate) first_token: Instant,
    pub(crate) planned: u32,
    pub(crate) finish_reason: &'static str,
    pub(crate) include_usage: bool,
    pub(crate) fault: Option<StreamFault>,
    pub(crate) rng: SmallRng,
    pub(crate) record: RequestRecord,
    pub(crate) outbox: Option<Arc<Outbox>>,
    pub(crate) slot: OwnedSemaphorePermit,
}

impl TokenStream {
    pub(crate) fn new(state: Arc<State>, plan: StreamPlan) -> Self {
        let step = match plan.envelope.api {
            openai::Api::Chat => Step::Role,
            openai::Api::Completions => Step::Tokens,
        };
        Self {
            prompt_tokens: plan.record.prompt_tokens,
            reasoning: plan.record.reasoning_tokens_planned,
            recording: Recording::new(state.clone(), plan.record),
            outbox: plan.outbox,
            sent: 0,
            completed: false,
            state,
            step,
            deadline: plan.first_token,
            planned: plan.planned,
            finish_reason: plan.finish_reason,
            include_usage: plan.include_usage,
            fault: plan.fault,
            rng: plan.rng,
            envelope: plan.envelope,
            slot: Some(plan.slot),
            armed: None,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        let chunk = match self.step {
            Step::Role => {
                self.step = Step::Tokens;
                self.envelope.role_chunk()
            }
            Step::Tokens => {
                let now = Instant::now();
                if now < self.deadline {
                    self.arm(cx.waker());
                    return Poll::Pending;
                }
                if let Some(fault) = self.fault.filter(|f| f.after_tokens == self.sent) {
                    self.fault = None;
                    match fault.kind {
                        FaultKind::CloseMidStream => {
                            self.step = Step::End;
                            return Poll::Ready(Some(Err(Abort)));
                        }
                        FaultKind::MalformedChunk => {
                            return self.frame(openai::MALFORMED.to_owned())
                        }
                        FaultKind::ErrorInStream => {
                            self.step = Step::Done;
                            return self
                                .frame(openai::stream_error_chunk("injected error in stream"));
                        }
                        FaultKind::Stall => {
                            self.deadline += Duration::from_secs_f64(fault.seconds);
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        _ => self.fault = Some(fault),
                    }
                }
                return self.token(now);
            }
            Step::Usage => {
                self.step = Step::Done;
                self.envelope.usage_chunk(self.prompt_tokens, self.sent)
            }
            Step::Done => {
                self.step = Step::End;
                let missing_done = self.fault.is_some_and(|f| f.kind == FaultKind::MissingDone);
                if missing_done {
                    self.finish();
                    return Poll::Ready(None);
                }
                openai::DONE.to_owned()
            }
            Step::End => {
                self.finish();
                return Poll::Ready(None);
            }
        };
        self.frame(chunk)
    }

    /// Asks the timer to wake `waker` at the deadline, unless it already will.
    fn arm(&mut self, waker: &Waker) {
        let deadline = self.deadline;
        if self
            .armed
            .as_ref()
            .is_some_and(|(at, armed)| *at == deadline && armed.will_wake(waker))
        {
            return;
        }
        self.state.timer.wake_at(deadline, waker.clone());
        self.armed = Some((deadline, waker.clone()));
    }

    fn frame(&mut self, chunk: String) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    /// Hands token k to the connection and schedules token k + 1.
    fn token(&mut self, now: Instant) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        let k = self.sent;
        match &self.outbox {
            Some(outbox) => outbox.queue(&self.recording, 1, self.deadline),
            None => self.recording.written(1, self.deadline, now),
        }
        self.sent += 1;
        let last = self.sent == self.planned;
        let chunk = self.envelope.token_chunk(
            openai::token_text(k),
            k < self.reasoning,
            last.then_some(self.finish_reason),
        );
        if last {
            self.slot = None;
            self.step = if self.include_usage {
                Step::Usage
            } else {
                Step::Done
            };
        } else {
            let gap = self.state.next_gap_ms(&mut self.rng);
            self.deadline += Duration::from_secs_f64(gap / 1000.0);
        }
        self.frame(chunk)
    }

    fn finish(&mut self) {
        self.completed = true;
    }
}

impl Drop for TokenStream {
    fn drop(&mut self) {
        self.slot = None;
        let (sent, completed) = (self.sent, self.completed);
        self.recording.update(|record| {
            record.tokens_sent = sent;
            record.completed = completed;
        });
        // The record goes to the ground truth when its last token's write has returned.
        self.recording.end();
    }
}

impl RequestRecord {
    pub(crate) fn empty() -> Self {
        Self {
            id: String::new(),
            request_id: None,
            route: String::new(),
            stream: false,
            status: 0,
            fault: None,
            arrival_unix_us: 0,
            admitted_unix_us: None,
            first_token_unix_us: None,
            last_token_unix_us: None,
            prompt_tokens: 0,
            output_tokens_planned: 0,
            reasoning_tokens_planned: 0,
            first_answer_token_unix_us: None,
            token_times_unix_us: None,
            tokens_sent: 0,
            completed: false,
            messages: None,
        }
    }
}
