//! Command handlers: one method per SMTP verb, each turning a parsed request into a reply
//! and a state change.

use smtp_proto::{Error as ParseError, MailFrom, RcptTo, Request};

use crate::address::{AddressError, check_mailbox};
use crate::address_forms::{self, Rewritten};
use crate::auth;
use crate::data::{BdatReceiver, DataReceiver};
use crate::envelope::{DsnRet, Notify, Recipient, Sender};
use crate::reply::Reply;
use crate::session::{BdatState, Event, Phase, Session};

impl Session {
    pub(crate) fn command(&mut self, line: &[u8]) -> Option<Event> {
        let rewritten = address_forms::for_parser(line, &self.config.hostname);
        let (line, literal) = match &rewritten {
            Rewritten::Unchanged => (line, None),
            Rewritten::Postmaster { line } => (&line[..], None),
            Rewritten::Literal { line, address } => (&line[..], Some(address.clone())),
        };
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(err) => {
                self.bad_command(parse_error_reply(err));
                return None;
            }
        };
        match request {
            Request::Ehlo { host } => self.hello(host.into_owned(), true),
            Request::Helo { host } => self.hello(host.into_owned(), false),
            Request::Mail { mut from } => {
                if let Some(address) = literal {
                    from.address = address.into();
                }
                self.mail(from)
            }
            Request::Rcpt { mut to } => {
                if let Some(address) = literal {
                    to.address = address.into();
                }
                return self.rcpt(to);
            }
            Request::Data => return self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.reset_transaction();
                self.reply(Reply::new(250, (2, 0, 0), "OK"));
            }
            Request::Noop { .. } => self.reply(Reply::new(250, (2, 0, 0), "OK")),
            Request::Quit => {
                self.close_with(Reply::new(221, (2, 0, 0), "Bye"));
                return Some(Event::Close);
            }
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                (2, 5, 0),
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Help { .. } => self.reply(Reply::new(
                214,
                (2, 0, 0),
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            )),
            Request::StartTls => return self.starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                return self.auth(mechanism, initial_response.into_owned());
            }
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }
            | Request::Lhlo { .. } => {
                self.bad_command(Reply::new(502, (5, 5, 1), "Command not implemented"));
            }
        }
        None
    }

    fn hello(&mut self, host: String, esmtp: bool) {
        if host.is_empty() || host.len() > 255 || host.chars().any(|c| c.is_control()) {
            self.bad_command(Reply::new(501, (5, 5, 4), "Invalid domain name"));
            return;
        }
        self.reset_transaction();
        self.esmtp = esmtp;
        let greeting = format!("{} Hello {}", self.config.hostname, host);
        self.helo = Some(host);
        if !esmtp {
            self.reply(Reply::new(250, (2, 0, 0), greeting));
            return;
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.config.message_bytes_max),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "CHUNKING".to_string(),
            "DSN".to_string(),
        ];
        if self.config.starttls_available && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines.push("HELP".to_string());
        self.reply(Reply {
            code: 250,
            status: None,
            lines,
        });
    }

    fn auth_offered(&self) -> bool {
        self.auth_user.is_none() && (self.tls || self.config.auth_plaintext_allowed)
    }

    fn mail(&mut self, from: MailFrom<std::borrow::Cow<'_, str>>) {
        if self.helo.is_none() {
            self.bad_command(Reply::new(503, (5, 5, 1), "Send EHLO or HELO first"));
            return;
        }
        if self.sender.is_some() {
            self.bad_command(Reply::new(503, (5, 5, 1), "Nested MAIL command"));
            return;
        }
        if let Some(param) = unsupported_mail_parameter(&from) {
            let text = format!("Unsupported parameter {param}");
            self.bad_command(Reply::new(555, (5, 5, 4), text));
            return;
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        if smtputf8 && !self.esmtp {
            self.bad_command(Reply::new(555, (5, 5, 4), "SMTPUTF8 requires EHLO"));
            return;
        }
        if from.size > self.config.message_bytes_max {
            let text = format!(
                "Message size exceeds limit of {} bytes",
                self.config.message_bytes_max
            );
            self.reply(Reply::new(552, (5, 3, 4), text));
            return;
        }
        let address = from.address.into_owned();
        if !address.is_empty()
            && !self.address_ok(&address, smtputf8, (5, 1, 7), "Bad sender address syntax")
        {
            return;
        }
        let ret = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
            Some(DsnRet::Full)
        } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
            Some(DsnRet::Headers)
        } else {
            None
        };
        self.sender = Some(Sender {
            address,
            ret,
            envid: from.env_id.map(|e| e.into_owned()),
            body_8bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
            smtputf8,
        });
        self.reply(Reply::new(250, (2, 1, 0), "Sender OK"));
    }

    fn rcpt(&mut self, to: RcptTo<std::borrow::Cow<'_, str>>) -> Option<Event> {
        let Some(sender) = &self.sender else {
            self.bad_command(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
            return None;
        };
        let smtputf8 = sender.smtputf8;
        if self.bdat.is_some() {
            self.bad_command(Reply::new(503, (5, 5, 1), "RCPT not allowed after BDAT"));
            return None;
        }
        if self.recipients.len() >= self.config.recipients_max {
            self.reply(Reply::new(452, (4, 5, 3), "Too many recipients"));
            return None;
        }
        let address = to.address.into_owned();
        if !self.address_ok(
            &address,
            smtputf8,
            (5, 1, 3),
            "Bad recipient address syntax",
        ) {
            return None;
        }
        let recipient = Recipient {
            address,
            notify: notify_flags(to.flags),
            // smtp-proto accepts only the rfc822 address type and strips it; keep it typed.
            orcpt: to.orcpt.map(|o| format!("rfc822;{o}")),
        };
        if !self.relay_trusted && self.auth_user.is_none() {
            // Never an open relay: unauthenticated clients outside trusted networks may only
            // reach addresses this server receives for (bounce addresses), when the driver
            // says which those are.
            if self.config.local_checks {
                let address = recipient.address.clone();
                self.checking = Some(recipient);
                self.phase = Phase::Waiting;
                return Some(Event::CheckLocal(address));
            }
            self.relay_denied();
            return None;
        }
        if self.config.recipient_checks {
            let address = recipient.address.clone();
            self.checking = Some(recipient);
            self.phase = Phase::Waiting;
            return Some(Event::CheckRecipient(address));
        }
        self.accept_recipient(recipient);
        None
    }

    /// Counted as an error so that probing ends the session.
    pub(crate) fn relay_denied(&mut self) {
        self.bad_command(Reply::new(
            550,
            (5, 7, 1),
            "Relaying denied: authentication required",
        ));
    }

    pub(crate) fn accept_recipient(&mut self, recipient: Recipient) {
        self.recipients.push(recipient);
        self.reply(Reply::new(250, (2, 1, 5), "Recipient OK"));
    }

    /// Checks an envelope address; on failure queues the reply (553 5.6.7 for UTF-8 without
    /// SMTPUTF8, else a 501 with `syntax_status`, counted as an error) and returns false.
    fn address_ok(
        &mut self,
        address: &str,
        smtputf8: bool,
        syntax_status: (u8, u16, u16),
        syntax_text: &str,
    ) -> bool {
        match check_mailbox(address, smtputf8) {
            Ok(()) => true,
            Err(AddressError::NeedsSmtpUtf8) => {
                self.reply(Reply::new(
                    553,
                    (5, 6, 7),
                    "Non-ASCII address requires SMTPUTF8",
                ));
                false
            }
            Err(AddressError::Syntax) => {
                self.bad_command(Reply::new(501, syntax_status, syntax_text));
                false
            }
        }
    }

    fn data(&mut self) -> Option<Event> {
        if self.sender.is_none() {
            self.bad_command(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
            return None;
        }
        if self.bdat.is_some() {
            self.bad_command(Reply::new(503, (5, 5, 1), "DATA not allowed after BDAT"));
            return None;
        }
        if self.recipients.is_empty() {
            // RFC 2920 §3.1: with pipelining, DATA after all RCPTs failed gets 554.
            self.bad_command(Reply::new(554, (5, 5, 1), "No valid recipients"));
            return None;
        }
        self.content = Vec::with_capacity(8 * 1024);
        self.phase = Phase::Data(DataReceiver::new(self.config.message_bytes_max));
        self.reply(Reply::bare(354, "End data with <CR><LF>.<CR><LF>"));
        None
    }

    fn bdat(&mut self, chunk_size: usize, last: bool) -> Option<Event> {
        // The chunk follows the command whatever we reply, so it is always read (and
        // discarded when the transaction cannot take it).
        let mut state = self.bdat.take().unwrap_or_else(|| BdatState {
            rx: BdatReceiver::new(self.config.message_bytes_max),
            chunk_left: 0,
            chunk_size: 0,
            last: false,
            failure: None,
        });
        if state.failure.is_none() {
            if self.sender.is_none() {
                state.failure = Some(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
                self.bad_commands += 1;
            } else if self.recipients.is_empty() {
                state.failure = Some(Reply::new(554, (5, 5, 1), "No valid recipients"));
                self.bad_commands += 1;
            }
        }
        state.chunk_left = chunk_size;
        state.chunk_size = chunk_size;
        state.last = last;
        self.bdat = Some(state);
        self.phase = Phase::Bdat;
        None
    }

    fn starttls(&mut self) -> Option<Event> {
        if self.tls {
            self.bad_command(Reply::new(503, (5, 5, 1), "TLS already active"));
            return None;
        }
        if !self.config.starttls_available {
            self.bad_command(Reply::new(502, (5, 5, 1), "STARTTLS not available"));
            return None;
        }
        self.reply(Reply::new(220, (2, 0, 0), "Ready to start TLS"));
        // RFC 3207 §4.2: forget everything learnt before the handshake.
        self.reset_transaction();
        self.helo = None;
        self.esmtp = false;
        self.tls = true;
        Some(Event::StartTls)
    }
}

fn parse_error_reply(err: ParseError) -> Reply {
    match err {
        ParseError::UnknownCommand => {
            Reply::new(500, (5, 5, 2), "Syntax error, command unrecognized")
        }
        ParseError::InvalidSenderAddress => Reply::new(501, (5, 1, 7), "Bad sender address syntax"),
        ParseError::InvalidRecipientAddress => {
            Reply::new(501, (5, 1, 3), "Bad recipient address syntax")
        }
        ParseError::SyntaxError { syntax } => {
            Reply::new(501, (5, 5, 2), format!("Syntax: {syntax}"))
        }
        ParseError::InvalidParameter { param } => {
            Reply::new(501, (5, 5, 4), format!("Invalid parameter {param}"))
        }
        ParseError::UnsupportedParameter { param } => {
            let param: String = param.chars().filter(|c| !c.is_control()).take(64).collect();
            Reply::new(555, (5, 5, 4), format!("Unsupported parameter {param}"))
        }
        ParseError::NeedsMoreData { .. }
        | ParseError::ResponseTooLong
        | ParseError::InvalidResponse { .. } => Reply::new(500, (5, 5, 2), "Syntax error"),
    }
}

/// MAIL parameters the parser understands but we do not advertise.
fn unsupported_mail_parameter(from: &MailFrom<std::borrow::Cow<'_, str>>) -> Option<&'static str> {
    use smtp_proto::{MAIL_BODY_BINARYMIME, MAIL_CONPERM, MAIL_REQUIRETLS};
    if from.flags & MAIL_BODY_BINARYMIME != 0 {
        return Some("BODY=BINARYMIME");
    }
    if from.flags & MAIL_REQUIRETLS != 0 {
        return Some("REQUIRETLS");
    }
    if from.flags & MAIL_CONPERM != 0 {
        return Some("CONPERM");
    }
    if from.trans_id.is_some() || from.mtrk.is_some() || from.solicit.is_some() {
        return Some("(extension not offered)");
    }
    if from.by != 0 || from.hold_for != 0 || from.hold_until != 0 || from.auth.is_some() {
        return Some("(extension not offered)");
    }
    None
}

fn notify_flags(flags: u64) -> Notify {
    let mut notify = 0;
    if flags & smtp_proto::RCPT_NOTIFY_SUCCESS != 0 {
        notify |= Notify::SUCCESS;
    }
    if flags & smtp_proto::RCPT_NOTIFY_FAILURE != 0 {
        notify |= Notify::FAILURE;
    }
    if flags & smtp_proto::RCPT_NOTIFY_DELAY != 0 {
        notify |= Notify::DELAY;
    }
    if flags & smtp_proto::RCPT_NOTIFY_NEVER != 0 {
        notify |= Notify::NEVER;
    }
    Notify(notify)
}

// SASL steps live here too because they are commands in all but name.
impl Session {
    fn auth(&mut self, mechanism: u64, initial: String) -> Option<Event> {
        if self.auth_user.is_some() {
            self.bad_command(Reply::new(503, (5, 5, 1), "Already authenticated"));
            return None;
        }
        if self.sender.is_some() {
            self.bad_command(Reply::new(
                503,
                (5, 5, 1),
                "AUTH not allowed during a transaction",
            ));
            return None;
        }
        if !self.tls && !self.config.auth_plaintext_allowed {
            self.bad_command(Reply::new(
                538,
                (5, 7, 11),
                "Encryption required for authentication",
            ));
            return None;
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN if initial.is_empty() => {
                self.phase = Phase::AuthPlain;
                self.reply(Reply::bare(334, ""));
                None
            }
            smtp_proto::AUTH_PLAIN => self.auth_plain_response(initial.as_bytes()),
            smtp_proto::AUTH_LOGIN if initial.is_empty() => {
                self.phase = Phase::AuthLoginUser;
                self.reply(Reply::bare(334, auth::encode_prompt("Username:")));
                None
            }
            smtp_proto::AUTH_LOGIN => self.auth_login_user(initial.as_bytes()),
            _ => {
                self.bad_command(Reply::new(
                    504,
                    (5, 5, 4),
                    "Unrecognized authentication type",
                ));
                None
            }
        }
    }

    fn sasl_line(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text == "*" {
            self.bad_command(Reply::new(501, (5, 7, 0), "Authentication cancelled"));
            return None;
        }
        match auth::decode_response(text) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                self.bad_command(Reply::new(
                    501,
                    (5, 5, 2),
                    "Invalid base64 in SASL response",
                ));
                None
            }
        }
    }

    pub(crate) fn auth_plain_response(&mut self, line: &[u8]) -> Option<Event> {
        let decoded = self.sasl_line(line)?;
        match auth::parse_plain(&decoded) {
            Ok(credentials) => {
                self.phase = Phase::Waiting;
                Some(Event::Authenticate(credentials))
            }
            Err(_) => {
                self.bad_command(Reply::new(501, (5, 5, 2), "Malformed PLAIN response"));
                None
            }
        }
    }

    pub(crate) fn auth_login_user(&mut self, line: &[u8]) -> Option<Event> {
        let decoded = self.sasl_line(line)?;
        match auth::parse_login_field(decoded) {
            Ok(user) => {
                self.phase = Phase::AuthLoginPassword(user);
                self.reply(Reply::bare(334, auth::encode_prompt("Password:")));
                None
            }
            Err(_) => {
                self.bad_command(Reply::new(501, (5, 5, 2), "Malformed LOGIN response"));
                None
            }
        }
    }

    pub(crate) fn auth_login_password(&mut self, username: String, line: &[u8]) -> Option<Event> {
        let decoded = self.sasl_line(line)?;
        match auth::parse_login_field(decoded) {
            Ok(password) => {
                self.phase = Phase::Waiting;
                Some(Event::Authenticate(auth::Credentials {
                    username,
                    password,
                }))
            }
            Err(_) => {
                self.bad_command(Reply::new(501, (5, 5, 2), "Malformed LOGIN response"));
                None
            }
        }
    }
}
