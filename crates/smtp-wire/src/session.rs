//! The server session: a state machine fed with bytes that produces replies and events.
//!
//! The driver owns the socket. It feeds what it reads with [`Session::feed`], calls
//! [`Session::advance`] until it returns [`Event::NeedInput`], writes [`Session::output`],
//! and answers the events that need the outside world (spooling a message, checking a
//! password, the TLS handshake). Time is also the driver's: it calls [`Session::timed_out`].

use std::sync::Arc;

use crate::auth::Credentials;
use crate::config::{PeerContext, SessionConfig};
use crate::data::{BdatReceiver, ContentFlaws, DataReceiver, Progress};
use crate::envelope::{Recipient, Sender, Transaction};
use crate::line::{Frame, frame};
use crate::reply::Reply;

/// What the driver must do next.
#[derive(Debug)]
pub enum Event {
    /// Write the pending output, then read more input.
    NeedInput,
    /// Spool this transaction durably, then call [`Session::complete_submission`].
    Submit(Transaction),
    /// Verify these credentials, then call [`Session::complete_auth`].
    Authenticate(Credentials),
    /// Decide on this recipient (only with [`SessionConfig::recipient_checks`]), then call
    /// [`Session::complete_recipient`].
    CheckRecipient(String),
    /// Is this recipient, named by a client that may not relay, one this server receives
    /// mail for (only with [`SessionConfig::local_checks`])? Call [`Session::complete_local`].
    CheckLocal(String),
    /// Write the pending output (the 220 reply), then run the TLS handshake.
    StartTls,
    /// Write the pending output, then close the connection.
    Close,
}

/// A message the session itself refused at the end of its content, for the driver's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The envelope sender.
    pub sender: String,
    /// How many recipients had been accepted.
    pub recipients: usize,
    /// Content bytes received.
    pub size_bytes: usize,
    /// The reply sent.
    pub reply: Reply,
    /// A short, stable reason label for metrics.
    pub reason: &'static str,
}

/// Which kind of wait the driver should apply while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPhase {
    /// Waiting for a command line: the command timeout applies.
    Command,
    /// Receiving message content: the data timeout and minimum data rate apply.
    Content,
}

#[derive(Debug)]
pub(crate) enum Phase {
    Command,
    Data(DataReceiver),
    /// Reading the bytes of a BDAT chunk into [`Session::bdat`].
    Bdat,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword(String),
    /// Waiting for the driver to answer an event; advancing is a driver bug.
    Waiting,
}

#[derive(Debug)]
pub(crate) struct BdatState {
    pub(crate) rx: BdatReceiver,
    /// Bytes of the current chunk still to read.
    pub(crate) chunk_left: usize,
    pub(crate) chunk_size: usize,
    pub(crate) last: bool,
    /// Set when the transaction has failed; every further chunk gets this reply.
    pub(crate) failure: Option<Reply>,
}

/// Input capacity an empty session keeps between reads.
const INPUT_KEPT_BYTES: usize = 4096;

/// One SMTP server session.
#[derive(Debug)]
pub struct Session {
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    pub(crate) phase: Phase,
    pub(crate) helo: Option<String>,
    pub(crate) esmtp: bool,
    pub(crate) tls: bool,
    pub(crate) relay_trusted: bool,
    pub(crate) auth_user: Option<String>,
    pub(crate) sender: Option<Sender>,
    pub(crate) recipients: Vec<Recipient>,
    pub(crate) content: Vec<u8>,
    /// The BDAT transaction in progress, between its first chunk and LAST.
    pub(crate) bdat: Option<BdatState>,
    pub(crate) bad_commands: u32,
    pub(crate) closing: bool,
    /// The rest of an over-long command line is being skipped.
    pub(crate) skipping_line: bool,
    /// Bytes of plaintext discarded at STARTTLS (injection attempts), for the driver to log.
    pub(crate) discarded_at_starttls: usize,
    /// Content rejections not yet collected by the driver.
    pub(crate) rejected: Vec<Rejected>,
    /// The recipient handed out with [`Event::CheckRecipient`], until the driver answers.
    pub(crate) checking: Option<Recipient>,
}

impl Session {
    /// A new session; the greeting is already queued in the output.
    pub fn new(config: Arc<SessionConfig>, peer: PeerContext) -> Self {
        let mut session = Session {
            // Grown on demand: an idle session should hold as little as possible.
            input: Vec::new(),
            output: Vec::with_capacity(256),
            phase: Phase::Command,
            helo: None,
            esmtp: false,
            tls: peer.tls_active,
            relay_trusted: peer.relay_trusted,
            auth_user: None,
            sender: None,
            recipients: Vec::new(),
            content: Vec::new(),
            bdat: None,
            bad_commands: 0,
            closing: false,
            skipping_line: false,
            discarded_at_starttls: 0,
            rejected: Vec::new(),
            checking: None,
            config,
        };
        let greeting = format!("{} ESMTP tsubame", session.config.hostname);
        session.reply(Reply::bare(220, greeting));
        session
    }

    /// Appends bytes read from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Bytes to write to the peer.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Marks the output as written.
    pub fn clear_output(&mut self) {
        self.output.clear();
    }

    /// Which timeout the driver should apply to its next read.
    pub fn read_phase(&self) -> ReadPhase {
        match self.phase {
            Phase::Data(_) | Phase::Bdat => ReadPhase::Content,
            _ => ReadPhase::Command,
        }
    }

    /// True from the start of DATA or the first BDAT chunk until the transaction ends: the
    /// span over which the driver enforces the minimum data rate.
    pub fn content_started(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::Bdat) || self.bdat.is_some()
    }

    /// True while a mail transaction (MAIL given, not yet finished) is open.
    pub fn in_transaction(&self) -> bool {
        self.sender.is_some()
    }

    /// Messages refused at the end of their content since the last call.
    pub fn take_rejected(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejected)
    }

    /// Bytes received but not yet processed (a partial command line).
    pub fn input_pending(&self) -> usize {
        self.input.len()
    }

    /// The client sent content slower than the minimum data rate.
    pub fn too_slow(&mut self) {
        self.close_with(Reply::new(
            421,
            (4, 4, 2),
            "Minimum data rate not met, closing connection",
        ));
    }

    /// Bytes of pipelined plaintext thrown away at STARTTLS.
    pub fn discarded_at_starttls(&self) -> usize {
        self.discarded_at_starttls
    }

    /// True once the session is under TLS.
    pub fn tls_active(&self) -> bool {
        self.tls
    }

    pub(crate) fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.output);
    }

    /// Queues `reply` and ends the session.
    pub(crate) fn close_with(&mut self, reply: Reply) {
        self.reply(reply);
        self.closing = true;
    }

    /// The driver's read timed out or the client was too slow.
    pub fn timed_out(&mut self) {
        let text = format!("{} Error: timeout exceeded", self.config.hostname);
        self.close_with(Reply::new(421, (4, 4, 2), text));
    }

    /// The server is shutting down; tell the client and close.
    pub fn shutting_down(&mut self) {
        let text = format!(
            "{} Service shutting down, try again later",
            self.config.hostname
        );
        self.close_with(Reply::new(421, (4, 3, 2), text));
    }

    /// Counts a protocol error; closes the session once the limit is reached.
    pub(crate) fn bad_command(&mut self, reply: Reply) {
        self.reply(reply);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.bad_commands_max {
            self.close_with(Reply::new(
                421,
                (4, 7, 0),
                "Too many errors, closing connection",
            ));
        }
    }

    /// Forgets the current transaction (RSET, end of DATA, STARTTLS).
    pub(crate) fn reset_transaction(&mut self) {
        self.sender = None;
        self.recipients.clear();
        self.content = Vec::new();
        self.bdat = None;
    }

    /// Processes buffered input until an event needs the driver.
    pub fn advance(&mut self) -> Event {
        let mut consumed = 0;
        let event = loop {
            if self.closing {
                break Event::Close;
            }
            let rest = &self.input[consumed..];
            let step = match &mut self.phase {
                Phase::Waiting => {
                    debug_assert!(false, "advance() while an event is unanswered");
                    break Event::NeedInput;
                }
                Phase::Data(rx) => Step::Data(rx.feed(rest, &mut self.content)),
                Phase::Bdat => {
                    let Some(state) = self.bdat.as_mut() else {
                        debug_assert!(false, "BDAT phase without a BDAT transaction");
                        self.phase = Phase::Command;
                        continue;
                    };
                    let take = state.chunk_left.min(rest.len());
                    state.rx.feed(&rest[..take], &mut self.content);
                    state.chunk_left -= take;
                    Step::Bdat(take, state.chunk_left == 0)
                }
                _ => Step::Line(frame(rest, self.config.command_line_bytes_max)),
            };
            match step {
                Step::Data(Progress::NeedMore) => {
                    consumed = self.input.len();
                    break Event::NeedInput;
                }
                Step::Data(Progress::Done(n)) => {
                    consumed += n;
                    if let Some(event) = self.finish_data() {
                        break event;
                    }
                }
                Step::Bdat(n, chunk_done) => {
                    consumed += n;
                    if !chunk_done {
                        break Event::NeedInput;
                    }
                    if let Some(event) = self.finish_bdat_chunk() {
                        break event;
                    }
                }
                Step::Line(frame) => match self.handle_frame(frame, &mut consumed) {
                    Some(event) => break event,
                    None => continue,
                },
            }
        };
        self.input.drain(..consumed.min(self.input.len()));
        if self.input.is_empty() && self.input.capacity() > INPUT_KEPT_BYTES {
            // Content arrives in large reads; an idle session should not keep their size.
            self.input = Vec::new();
        }
        if let Event::StartTls = event {
            // Anything the client pipelined after STARTTLS was sent in clear text and could
            // have been injected by a man in the middle: it must never be executed.
            self.discarded_at_starttls = self.input.len();
            self.input.clear();
        }
        event
    }

    fn handle_frame(&mut self, frame: Frame, consumed: &mut usize) -> Option<Event> {
        match frame {
            Frame::Incomplete => {
                return Some(Event::NeedInput);
            }
            Frame::TooLong { skip, complete } => {
                *consumed += skip;
                let was_skipping = self.skipping_line;
                self.skipping_line = !complete;
                if !was_skipping {
                    self.bad_command(Reply::new(500, (5, 5, 2), "Line too long"));
                }
                if !complete {
                    return Some(Event::NeedInput);
                }
            }
            Frame::BareLineEnding(len) => {
                *consumed += len;
                if std::mem::take(&mut self.skipping_line) {
                    return None;
                }
                self.bad_command(Reply::new(500, (5, 5, 2), "Bare CR or LF in command line"));
            }
            Frame::Line(len) => {
                let start = *consumed;
                *consumed += len;
                if std::mem::take(&mut self.skipping_line) {
                    return None;
                }
                // Lend the input buffer out while the line is handled: handlers take `&mut self`
                // and the line lives in the buffer. Handlers never touch `input`.
                let input = std::mem::take(&mut self.input);
                let event = self.handle_line(&input[start..start + len]);
                self.input = input;
                return event;
            }
        }
        None
    }

    fn handle_line(&mut self, line: &[u8]) -> Option<Event> {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::AuthPlain => self.auth_plain_response(line),
            Phase::AuthLoginUser => self.auth_login_user(line),
            Phase::AuthLoginPassword(user) => self.auth_login_password(user, line),
            _ => self.command(line),
        }
    }

    fn finish_data(&mut self) -> Option<Event> {
        let Phase::Data(rx) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return None;
        };
        self.finish_content(rx.flaws(), rx.received_bytes())
    }

    fn finish_bdat_chunk(&mut self) -> Option<Event> {
        self.phase = Phase::Command;
        let mut state = self.bdat.take()?;
        if state.last {
            state.rx.finish();
        }
        if state.failure.is_none() && state.rx.flaws() != ContentFlaws::default() {
            state.failure = Some(content_rejection(state.rx.flaws(), &self.config));
        }
        if let Some(failure) = state.failure.clone() {
            self.reply(failure.clone());
            if state.last {
                let reason = flaw_reason(state.rx.flaws());
                self.record_rejection(failure, state.rx.received_bytes(), reason);
                self.reset_transaction();
            } else {
                self.bdat = Some(state);
            }
            return None;
        }
        if state.last {
            let size = state.rx.received_bytes();
            return self.finish_content(ContentFlaws::default(), size);
        }
        let text = format!("{} octets received", state.chunk_size);
        self.reply(Reply::new(250, (2, 0, 0), text));
        self.bdat = Some(state);
        None
    }

    fn record_rejection(&mut self, reply: Reply, size_bytes: usize, reason: &'static str) {
        if let Some(sender) = &self.sender {
            self.rejected.push(Rejected {
                sender: sender.address.clone(),
                recipients: self.recipients.len(),
                size_bytes,
                reply,
                reason,
            });
        }
    }

    fn finish_content(&mut self, flaws: ContentFlaws, size_bytes: usize) -> Option<Event> {
        if flaws != ContentFlaws::default() {
            let reply = content_rejection(flaws, &self.config);
            self.record_rejection(reply.clone(), size_bytes, flaw_reason(flaws));
            self.reset_transaction();
            self.reply(reply);
            return None;
        }
        let sender = self.sender.take()?;
        let transaction = Transaction {
            helo: self.helo.clone().unwrap_or_default(),
            sender,
            recipients: std::mem::take(&mut self.recipients),
            content: std::mem::take(&mut self.content),
            auth_user: self.auth_user.clone(),
            tls: self.tls,
            esmtp: self.esmtp,
        };
        self.phase = Phase::Waiting;
        Some(Event::Submit(transaction))
    }

    /// The driver's answer to [`Event::Submit`]: the reply for the end of data (250 with the
    /// queue id once durable, or a 4xx/5xx).
    pub fn complete_submission(&mut self, reply: Reply) {
        debug_assert!(matches!(self.phase, Phase::Waiting));
        self.phase = Phase::Command;
        self.reset_transaction();
        self.reply(reply);
    }

    /// The driver's answer to [`Event::CheckRecipient`]: `None` accepts the recipient
    /// (250 2.1.5), a reply refuses it (not counted as a protocol error).
    pub fn complete_recipient(&mut self, refusal: Option<Reply>) {
        debug_assert!(matches!(self.phase, Phase::Waiting));
        self.phase = Phase::Command;
        let Some(recipient) = self.checking.take() else {
            return;
        };
        match refusal {
            None => self.accept_recipient(recipient),
            Some(reply) => self.reply(reply),
        }
    }

    /// The driver's answer to [`Event::CheckLocal`]: true accepts the recipient as local;
    /// false refuses it as relaying (550 5.7.1, counted as a bad command).
    pub fn complete_local(&mut self, local: bool) {
        debug_assert!(matches!(self.phase, Phase::Waiting));
        self.phase = Phase::Command;
        let Some(recipient) = self.checking.take() else {
            return;
        };
        if local {
            self.accept_recipient(recipient);
        } else {
            self.relay_denied();
        }
    }

    /// The driver's answer to [`Event::Authenticate`] when it could not check the
    /// credentials (its user store did not answer): 454 4.7.0, so the client tries again
    /// later instead of taking its credentials for wrong. Not counted as a bad command.
    pub fn complete_auth_unavailable(&mut self) {
        debug_assert!(matches!(self.phase, Phase::Waiting));
        self.phase = Phase::Command;
        self.reply(Reply::new(
            454,
            (4, 7, 0),
            "Temporary authentication failure, try again later",
        ));
    }

    /// The driver's answer to [`Event::Authenticate`] when the credentials are right but
    /// may not be used (a suspended account): `reply` says why, and counts as an error.
    pub fn complete_auth_refused(&mut self, reply: Reply) {
        debug_assert!(matches!(self.phase, Phase::Waiting));
        self.phase = Phase::Command;
        self.bad_command(reply);
    }

    /// The driver's answer to [`Event::Authenticate`]: the verified user, or `None`.
    pub fn complete_auth(&mut self, user: Option<String>) {
        debug_assert!(matches!(self.phase, Phase::Waiting));
        self.phase = Phase::Command;
        match user {
            Some(user) => {
                self.auth_user = Some(user);
                self.reply(Reply::new(235, (2, 7, 0), "Authentication successful"));
            }
            None => {
                self.bad_command(Reply::new(
                    535,
                    (5, 7, 8),
                    "Authentication credentials invalid",
                ));
            }
        }
    }
}

enum Step {
    Data(Progress),
    Bdat(usize, bool),
    Line(Frame),
}

fn flaw_reason(flaws: ContentFlaws) -> &'static str {
    if flaws.bare_line_ending {
        "bare_line_ending"
    } else if flaws.nul {
        "nul"
    } else if flaws.too_big {
        "too_big"
    } else {
        "no_valid_transaction"
    }
}

fn content_rejection(flaws: ContentFlaws, config: &SessionConfig) -> Reply {
    if flaws.bare_line_ending {
        Reply::new(
            550,
            (5, 6, 0),
            "Message contains bare CR or LF; only CRLF line endings are accepted",
        )
    } else if flaws.nul {
        Reply::new(550, (5, 6, 0), "Message contains NUL characters")
    } else {
        let text = format!(
            "Message exceeds the size limit of {} bytes",
            config.message_bytes_max
        );
        Reply::new(552, (5, 3, 4), text)
    }
}
