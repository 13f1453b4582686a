//! The envelope of a message as received: what the spool stores next to the content.

/// DSN RET parameter (RFC 3461 §4.3): how much of the message a bounce should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnRet {
    /// Return the full message.
    Full,
    /// Return headers only.
    Headers,
}

/// DSN NOTIFY flags (RFC 3461 §4.1) as a bit set; empty means "not given" (sender default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify(pub u8);

impl Notify {
    /// NOTIFY=SUCCESS.
    pub const SUCCESS: u8 = 1;
    /// NOTIFY=FAILURE.
    pub const FAILURE: u8 = 2;
    /// NOTIFY=DELAY.
    pub const DELAY: u8 = 4;
    /// NOTIFY=NEVER.
    pub const NEVER: u8 = 8;
}

/// One accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The forward-path address as given (local@domain).
    pub address: String,
    /// DSN NOTIFY flags.
    pub notify: Notify,
    /// DSN ORCPT, kept verbatim ("rfc822;user@example.com").
    pub orcpt: Option<String>,
}

/// The sender side of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The reverse-path; empty for the null sender `<>`.
    pub address: String,
    /// DSN RET, if given.
    pub ret: Option<DsnRet>,
    /// DSN ENVID, if given (xtext-decoded).
    pub envid: Option<String>,
    /// BODY=8BITMIME was declared.
    pub body_8bit: bool,
    /// SMTPUTF8 was declared.
    pub smtputf8: bool,
}

/// A complete transaction handed from the session to the driver for spooling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The EHLO/HELO name the client gave.
    pub helo: String,
    /// The sender and its parameters.
    pub sender: Sender,
    /// Accepted recipients, in RCPT order; never empty.
    pub recipients: Vec<Recipient>,
    /// The message content, CRLF line endings, dot-stuffing removed.
    pub content: Vec<u8>,
    /// The authenticated user, if any.
    pub auth_user: Option<String>,
    /// True when the session was under TLS.
    pub tls: bool,
    /// True when the client used EHLO (ESMTP) rather than HELO.
    pub esmtp: bool,
}

impl Transaction {
    /// The `with` protocol keyword for the Received header (RFC 3848).
    pub fn protocol(&self) -> &'static str {
        match (self.esmtp, self.tls, self.auth_user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, false, true) => "ESMTPA",
            (true, true, false) => "ESMTPS",
            (true, true, true) => "ESMTPSA",
        }
    }
}
