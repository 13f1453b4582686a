//! The client session: a state machine that turns "deliver this message" into SMTP commands
//! and the server's replies into one outcome per recipient.
//!
//! The driver owns the socket, the clock and the TLS handshake. It feeds what it reads with
//! [`ClientSession::feed`], writes [`ClientSession::output`], and calls
//! [`ClientSession::poll`] for the next [`ClientEvent`]. With PIPELINING, MAIL, every RCPT and
//! DATA go out in one write and every reply is read in order (RFC 2920 §3.1): one refused
//! recipient never fails the others.

use crate::client::capabilities::Capabilities;
use crate::client::reply::{self, ReplyError};
use crate::decimal::Decimal;
use crate::reply::Reply;

/// A message to deliver on this connection.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Reverse-path; empty for the null sender (bounces).
    pub sender: String,
    /// Forward-paths with their DSN parameters.
    pub recipients: Vec<OutboundRecipient>,
    /// DSN RET (`FULL`/`HDRS`), sent only to servers offering DSN.
    pub dsn_ret: Option<&'static str>,
    /// DSN ENVID in xtext form, sent only to servers offering DSN.
    pub dsn_envid: Option<String>,
    /// The content has 8-bit bytes (BODY=8BITMIME is sent when offered).
    pub body_8bit: bool,
    /// Addresses or headers need SMTPUTF8: a server without it gets no attempt.
    pub smtputf8: bool,
    /// The producer guarantees the content is canonical (every CR and LF in a CRLF, ending
    /// with one): BDAT sends it without checking again.
    pub content_canonical: bool,
}

/// One recipient of an [`Outbound`].
#[derive(Debug, Clone)]
pub struct OutboundRecipient {
    /// The address.
    pub address: String,
    /// DSN NOTIFY value ("FAILURE,DELAY"), sent only to servers offering DSN.
    pub notify: Option<String>,
    /// DSN ORCPT ("rfc822;addr"), sent only to servers offering DSN.
    pub orcpt: Option<String>,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionOutcome {
    /// The final reply for each recipient, in the order given: the end-of-data reply for
    /// recipients the server accepted, else the reply that refused them.
    pub recipients: Vec<Reply>,
    /// True when the server accepted the message for at least one recipient.
    pub any_delivered: bool,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Write the output, then read more.
    NeedInput,
    /// EHLO (or HELO) is done: call [`ClientSession::start_tls`], [`ClientSession::send`] or
    /// [`ClientSession::quit`].
    Ready,
    /// The server said 220 to STARTTLS: run the handshake, then call
    /// [`ClientSession::tls_established`].
    TlsReady,
    /// STARTTLS was refused; the session is usable in clear text (policy is the driver's).
    StartTlsRefused(Reply),
    /// A message finished.
    Transaction(TransactionOutcome),
    /// The session is over (after QUIT, or a failure below): close the connection.
    Closed,
    /// The server refused us (banner, EHLO and HELO, or a reply we cannot read). Close.
    Failed(ClientFailure),
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFailure {
    /// The greeting was not 220 (e.g. 421 or 554 at connect).
    Greeting(Reply),
    /// Neither EHLO nor HELO was accepted.
    Hello(Reply),
    /// RSET after a failed transaction was refused.
    Reset(Reply),
    /// The server sent something that is not an SMTP reply.
    Protocol(ReplyError),
    /// The connection closed while a reply was awaited, in this stage.
    ConnectionLost(Stage),
    /// AUTH was refused (e.g. 535 5.7.8).
    Auth(Reply),
}

/// Where the session is waiting; the driver picks its timeout from this (RFC 5321 §4.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for the greeting.
    Banner,
    /// EHLO or HELO sent.
    Hello,
    /// STARTTLS sent.
    StartTls,
    /// AUTH in progress.
    Auth,
    /// MAIL FROM sent.
    MailFrom,
    /// RCPT TO sent.
    RcptTo,
    /// DATA sent.
    Data,
    /// Content and final dot sent.
    DataDot,
    /// RSET sent.
    Reset,
    /// QUIT sent.
    Quit,
    /// Nothing awaited: the driver's turn.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Awaiting {
    Banner,
    Ehlo,
    Helo,
    StartTls,
    Mail,
    Rcpt(usize),
    Data,
    DataDot,
    /// The dot sent after a DATA that should have been refused; its reply is ignored.
    EmptyDot,
    /// `BDAT n LAST` with the whole content (RFC 3030): its reply ends the transaction.
    Bdat,
    /// AUTH LOGIN sent; the 334 asks for the user name.
    AuthLoginUser,
    /// User name sent; the 334 asks for the password.
    AuthLoginPassword,
    /// The last AUTH step sent; 235 means authenticated.
    AuthDone,
    Reset,
    Quit,
}

/// One SMTP client session.
#[derive(Debug)]
pub struct ClientSession {
    helo_name: String,
    input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    /// Replies expected, in order.
    pub(crate) awaiting: std::collections::VecDeque<Awaiting>,
    capabilities: Capabilities,
    tls: bool,
    /// The transaction in progress.
    pub(crate) txn: Option<Txn>,
    /// An outcome held back until the RSET that follows a failed transaction is answered,
    /// so the driver never sends the next MAIL before the server is reset.
    pub(crate) pending_outcome: Option<TransactionOutcome>,
    /// Events ready to hand out before processing more input.
    pub(crate) ready: std::collections::VecDeque<ClientEvent>,
    closed: bool,
    /// AUTH LOGIN's encoded user and password while the exchange runs.
    pub(crate) auth_login: Option<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Txn {
    /// The content encoded for DATA (dot-stuffed, with its final dot), sent after the 354;
    /// empty with BDAT, whose chunk goes out with the commands.
    pub(crate) data_content: Vec<u8>,
    pub(crate) mail: Option<Reply>,
    pub(crate) rcpt: Vec<Option<Reply>>,
    pub(crate) data: Option<Reply>,
    pub(crate) pipelined: bool,
    /// Commands not yet sent (without pipelining, one goes out per reply).
    pub(crate) unsent: std::collections::VecDeque<(Awaiting, String)>,
    /// The content and its final dot went out, so the next reply ends the transaction.
    pub(crate) dot_sent: bool,
}

impl ClientSession {
    /// A session that will greet with `helo_name`, waiting for the server's banner.
    pub fn new(helo_name: impl Into<String>) -> Self {
        ClientSession {
            helo_name: helo_name.into(),
            input: Vec::new(),
            output: Vec::new(),
            awaiting: [Awaiting::Banner].into(),
            capabilities: Capabilities::default(),
            tls: false,
            txn: None,
            pending_outcome: None,
            ready: Default::default(),
            closed: false,
            auth_login: None,
        }
    }

    /// What the server offered in its last EHLO reply.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// True once TLS is established on this session.
    pub fn tls_active(&self) -> bool {
        self.tls
    }

    /// Bytes read from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Bytes to write to the server.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Marks the output as written.
    pub fn clear_output(&mut self) {
        self.output.clear();
    }

    /// The stage for the driver's read timeout.
    pub fn stage(&self) -> Stage {
        match self.awaiting.front() {
            None => Stage::Idle,
            Some(Awaiting::Banner) => Stage::Banner,
            Some(Awaiting::Ehlo | Awaiting::Helo) => Stage::Hello,
            Some(Awaiting::StartTls) => Stage::StartTls,
            Some(Awaiting::AuthLoginUser | Awaiting::AuthLoginPassword | Awaiting::AuthDone) => {
                Stage::Auth
            }
            Some(Awaiting::Mail) => Stage::MailFrom,
            Some(Awaiting::Rcpt(_)) => Stage::RcptTo,
            Some(Awaiting::Data) => Stage::Data,
            Some(Awaiting::DataDot | Awaiting::EmptyDot | Awaiting::Bdat) => Stage::DataDot,
            Some(Awaiting::Reset) => Stage::Reset,
            Some(Awaiting::Quit) => Stage::Quit,
        }
    }

    pub(crate) fn command(&mut self, awaiting: Awaiting, line: &str) {
        debug_assert!(
            !line.contains(['\r', '\n']),
            "command lines never carry CR or LF"
        );
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.awaiting.push_back(awaiting);
    }

    /// Asks for STARTTLS; valid after [`ClientEvent::Ready`] when the server offers it.
    pub fn start_tls(&mut self) {
        debug_assert!(self.awaiting.is_empty() && self.txn.is_none());
        self.command(Awaiting::StartTls, "STARTTLS");
    }

    /// The driver finished the TLS handshake: greet again (RFC 3207 §4.2).
    pub fn tls_established(&mut self) {
        self.tls = true;
        self.capabilities = Capabilities::default();
        let ehlo = format!("EHLO {}", self.helo_name);
        self.command(Awaiting::Ehlo, &ehlo);
    }

    /// Ends the session politely.
    pub fn quit(&mut self) {
        self.command(Awaiting::Quit, "QUIT");
    }

    /// The server closed the connection.
    pub fn eof(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let event = match (self.awaiting.front(), self.stage()) {
            (None | Some(Awaiting::Quit), _) => ClientEvent::Closed,
            (_, stage) => ClientEvent::Failed(ClientFailure::ConnectionLost(stage)),
        };
        self.awaiting.clear();
        self.ready.push_back(event);
    }
}

// Transactions and reply handling.
impl ClientSession {
    /// Starts delivering `message` with `content` (stored form; line endings are made CRLF,
    /// and for DATA it is dot-stuffed). Valid after [`ClientEvent::Ready`] or a previous
    /// [`ClientEvent::Transaction`].
    pub fn send(&mut self, message: &Outbound, content: &[u8]) {
        debug_assert!(self.awaiting.is_empty() && self.txn.is_none());
        let caps = &self.capabilities;
        if let Some(refusal) = precheck(message, content.len(), caps) {
            let outcome = TransactionOutcome {
                recipients: vec![refusal; message.recipients.len()],
                any_delivered: false,
            };
            self.ready.push_back(ClientEvent::Transaction(outcome));
            return;
        }
        let mut unsent = std::collections::VecDeque::new();
        unsent.push_back((Awaiting::Mail, mail_command(message, content.len(), caps)));
        for (i, rcpt) in message.recipients.iter().enumerate() {
            unsent.push_back((Awaiting::Rcpt(i), rcpt_command(rcpt, caps)));
        }
        // With PIPELINING and CHUNKING the whole message is one write and one round trip:
        // MAIL, RCPTs and `BDAT n LAST` with the content (RFC 3030 §4.2).
        let chunked = caps.pipelining && caps.chunking;
        if !chunked {
            unsent.push_back((Awaiting::Data, "DATA".to_string()));
        }
        let pipelined = caps.pipelining;
        let mut data_content = Vec::new();
        if !chunked {
            crate::client::content::encode_data(content, &mut data_content);
        }
        self.txn = Some(Txn {
            data_content,
            mail: None,
            rcpt: vec![None; message.recipients.len()],
            data: None,
            pipelined,
            unsent,
            dot_sent: false,
        });
        self.send_next_commands();
        if chunked {
            let chunk = if message.content_canonical {
                debug_assert!(matches!(
                    crate::client::content::bdat_chunk(content),
                    std::borrow::Cow::Borrowed(_)
                ));
                std::borrow::Cow::Borrowed(content)
            } else {
                crate::client::content::bdat_chunk(content)
            };
            let mut bdat = String::with_capacity(24);
            bdat.push_str("BDAT ");
            bdat.push_str(Decimal::new(chunk.len() as u64).as_str());
            bdat.push_str(" LAST");
            self.command(Awaiting::Bdat, &bdat);
            self.output.extend_from_slice(&chunk);
        }
    }

    pub(crate) fn send_next_commands(&mut self) {
        let Some(txn) = self.txn.as_mut() else { return };
        let batch: Vec<(Awaiting, String)> = if txn.pipelined {
            txn.unsent.drain(..).collect()
        } else {
            txn.unsent.pop_front().into_iter().collect()
        };
        for (awaiting, line) in batch {
            self.command(awaiting, &line);
        }
    }

    /// Processes replies until the driver has something to do.
    pub fn poll(&mut self) -> ClientEvent {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return event;
            }
            if self.closed {
                return ClientEvent::Closed;
            }
            let Some(&awaiting) = self.awaiting.front() else {
                return ClientEvent::NeedInput;
            };
            let (reply, used) = match reply::parse(&self.input) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return ClientEvent::NeedInput,
                Err(err) => {
                    self.closed = true;
                    return ClientEvent::Failed(ClientFailure::Protocol(err));
                }
            };
            self.input.drain(..used);
            self.awaiting.pop_front();
            self.on_reply(awaiting, reply);
        }
    }

    pub(crate) fn fail_with(&mut self, failure: ClientFailure) {
        self.fail(failure);
    }

    fn fail(&mut self, failure: ClientFailure) {
        self.closed = true;
        self.awaiting.clear();
        self.ready.push_back(ClientEvent::Failed(failure));
    }

    fn on_reply(&mut self, awaiting: Awaiting, reply: Reply) {
        match awaiting {
            Awaiting::Banner if reply.code == 220 => {
                let ehlo = format!("EHLO {}", self.helo_name);
                self.command(Awaiting::Ehlo, &ehlo);
            }
            Awaiting::Banner => self.fail(ClientFailure::Greeting(reply)),
            Awaiting::Ehlo if reply.code == 250 => {
                self.capabilities = Capabilities::from_ehlo(&reply);
                self.ready.push_back(ClientEvent::Ready);
            }
            // Some servers only speak RFC 821: a 5xx to EHLO means "try HELO" (§4.1.4).
            Awaiting::Ehlo if reply.is_permanent() && !self.tls => {
                let helo = format!("HELO {}", self.helo_name);
                self.command(Awaiting::Helo, &helo);
            }
            Awaiting::Ehlo | Awaiting::Helo if reply.code != 250 => {
                self.fail(ClientFailure::Hello(reply))
            }
            Awaiting::Helo => {
                self.capabilities = Capabilities::default();
                self.ready.push_back(ClientEvent::Ready);
            }
            Awaiting::StartTls if reply.code == 220 => self.ready.push_back(ClientEvent::TlsReady),
            Awaiting::StartTls => self.ready.push_back(ClientEvent::StartTlsRefused(reply)),
            Awaiting::Mail
            | Awaiting::Rcpt(_)
            | Awaiting::Data
            | Awaiting::DataDot
            | Awaiting::Bdat => self.on_transaction_reply(awaiting, reply),
            Awaiting::EmptyDot => self.finish_transaction(),
            Awaiting::AuthLoginUser | Awaiting::AuthLoginPassword | Awaiting::AuthDone => {
                self.on_auth_reply(awaiting, reply)
            }
            Awaiting::Reset if reply.code == 250 => {
                if let Some(outcome) = self.pending_outcome.take() {
                    self.ready.push_back(ClientEvent::Transaction(outcome));
                }
            }
            Awaiting::Reset => self.fail(ClientFailure::Reset(reply)),
            Awaiting::Quit => {
                self.closed = true;
                self.ready.push_back(ClientEvent::Closed);
            }
            Awaiting::Ehlo => {}
        }
    }
}

fn precheck(message: &Outbound, size: usize, caps: &Capabilities) -> Option<Reply> {
    if message.smtputf8 && !caps.smtputf8 {
        return Some(Reply::new(
            550,
            (5, 6, 7),
            "Remote server does not support SMTPUTF8",
        ));
    }
    if let Some(limit) = caps.size.filter(|&l| l > 0 && size as u64 > l) {
        return Some(Reply::new(
            552,
            (5, 3, 4),
            format!("Message size {size} exceeds remote limit {limit}"),
        ));
    }
    None
}

// The command builders push strings rather than format!: they run for every message.
fn mail_command(message: &Outbound, size: usize, caps: &Capabilities) -> String {
    let mut line = String::with_capacity(64 + message.sender.len());
    line.push_str("MAIL FROM:<");
    line.push_str(&message.sender);
    line.push('>');
    if caps.size.is_some() {
        line.push_str(" SIZE=");
        line.push_str(Decimal::new(size as u64).as_str());
    }
    if message.body_8bit && caps.eight_bit_mime {
        line.push_str(" BODY=8BITMIME");
    }
    if message.smtputf8 {
        line.push_str(" SMTPUTF8");
    }
    if caps.dsn {
        if let Some(ret) = message.dsn_ret {
            line.push_str(" RET=");
            line.push_str(ret);
        }
        if let Some(envid) = &message.dsn_envid {
            line.push_str(" ENVID=");
            line.push_str(envid);
        }
    }
    line
}

fn rcpt_command(rcpt: &OutboundRecipient, caps: &Capabilities) -> String {
    let mut line = String::with_capacity(16 + rcpt.address.len());
    line.push_str("RCPT TO:<");
    line.push_str(&rcpt.address);
    line.push('>');
    if caps.dsn {
        if let Some(notify) = &rcpt.notify {
            line.push_str(" NOTIFY=");
            line.push_str(notify);
        }
        if let Some(orcpt) = &rcpt.orcpt {
            line.push_str(" ORCPT=");
            line.push_str(orcpt);
        }
    }
    line
}
