//! The envelope as the spool stores it, with its own compact binary codec. The spool does
//! not depend on the SMTP crates: any ingress (SMTP today, HTTP later) fills this in.

use crate::error::SpoolError;

/// One recipient of a spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The forward-path address.
    pub address: String,
    /// DSN NOTIFY bits (SUCCESS=1, FAILURE=2, DELAY=4, NEVER=8); 0 when not given.
    pub notify: u8,
    /// DSN ORCPT, typed ("rfc822;addr").
    pub orcpt: Option<String>,
}

/// Everything about a message except its content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path; empty for the null sender.
    pub sender: String,
    /// Recipients in RCPT order; per-recipient state refers to these indices.
    pub recipients: Vec<Recipient>,
    /// DSN RET: 0 not given, 1 FULL, 2 HDRS.
    pub dsn_ret: u8,
    /// DSN ENVID.
    pub dsn_envid: Option<String>,
    /// Bit 0: BODY=8BITMIME; bit 1: SMTPUTF8.
    pub flags: u8,
    /// When the message was accepted, Unix milliseconds.
    pub received_ms: u64,
    /// Client address as text.
    pub client_ip: String,
    /// EHLO/HELO name.
    pub helo: String,
    /// The authenticated SMTP user, if any.
    pub auth_user: Option<String>,
    /// No delivery attempt before this time, Unix milliseconds (scheduled sending); 0: now.
    pub not_before_ms: u64,
    /// What the sender attached to the message for its own records (custom id, metadata,
    /// tags), as JSON; reported back with the message's events, never sent.
    pub attributes: Option<String>,
}

impl Envelope {
    /// Flag bit: the sender declared BODY=8BITMIME.
    pub const FLAG_8BITMIME: u8 = 1;
    /// Flag bit: the sender declared SMTPUTF8.
    pub const FLAG_SMTPUTF8: u8 = 2;
    /// Flag bit: the content is canonical, every CR and LF in a CRLF and ending with one
    /// (our SMTP ingress refuses bare line endings, so what it stores always is).
    pub const FLAG_CANONICAL: u8 = 4;
    /// Flag bit: the sender follows this message through events (a tenant's mail with our
    /// return path), so delivery sends it no DSN.
    pub const FLAG_NO_DSN: u8 = 8;

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.sender);
        out.push(self.dsn_ret);
        put_opt(out, self.dsn_envid.as_deref());
        out.push(self.flags);
        out.extend_from_slice(&self.received_ms.to_le_bytes());
        put_str(out, &self.client_ip);
        put_str(out, &self.helo);
        put_opt(out, self.auth_user.as_deref());
        out.extend_from_slice(&(self.recipients.len() as u32).to_le_bytes());
        for rcpt in &self.recipients {
            put_str(out, &rcpt.address);
            out.push(rcpt.notify);
            put_opt(out, rcpt.orcpt.as_deref());
        }
        // Optional tail, absent for plain SMTP mail: records written before it existed and
        // records without it read the same.
        if self.not_before_ms != 0 || self.attributes.is_some() {
            out.push(TAIL_V1);
            out.extend_from_slice(&self.not_before_ms.to_le_bytes());
            put_opt(out, self.attributes.as_deref());
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, SpoolError> {
        let mut r = Reader { bytes };
        let sender = r.string()?;
        let dsn_ret = r.u8()?;
        let dsn_envid = r.opt()?;
        let flags = r.u8()?;
        let received_ms = r.u64()?;
        let client_ip = r.string()?;
        let helo = r.string()?;
        let auth_user = r.opt()?;
        let count = r.u32()? as usize;
        // Each recipient takes at least 6 bytes, which bounds the allocation below.
        if count > r.bytes.len() / 6 {
            return Err(SpoolError::Corrupt("recipient count"));
        }
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            let address = r.string()?;
            let notify = r.u8()?;
            let orcpt = r.opt()?;
            recipients.push(Recipient {
                address,
                notify,
                orcpt,
            });
        }
        let (mut not_before_ms, mut attributes) = (0, None);
        if !r.bytes.is_empty() {
            if r.u8()? != TAIL_V1 {
                return Err(SpoolError::Corrupt("unknown envelope tail"));
            }
            not_before_ms = r.u64()?;
            attributes = r.opt()?;
        }
        if !r.bytes.is_empty() {
            return Err(SpoolError::Corrupt("trailing envelope bytes"));
        }
        Ok(Envelope {
            sender,
            recipients,
            dsn_ret,
            dsn_envid,
            flags,
            received_ms,
            client_ip,
            helo,
            auth_user,
            not_before_ms,
            attributes,
        })
    }
}

/// The `auth_user` of a tenant's message (HTTP API or SMTP AUTH with its key): per-tenant
/// views (message lookups, events) recognise their mail by it.
pub fn tenant_marker(tenant_id: &str) -> String {
    format!("tenant:{tenant_id}")
}

/// The tenant a stored `auth_user` names, if any.
pub fn tenant_of(auth_user: &str) -> Option<&str> {
    auth_user.strip_prefix("tenant:")
}

/// Marks the optional tail of an envelope (schedule and attributes).
const TAIL_V1: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SpoolError> {
        if self.bytes.len() < n {
            return Err(SpoolError::Corrupt("short envelope field"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, SpoolError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, SpoolError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, SpoolError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self) -> Result<String, SpoolError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| SpoolError::Corrupt("non-UTF-8 envelope field"))
    }
    fn opt(&mut self) -> Result<Option<String>, SpoolError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(SpoolError::Corrupt("bad option tag")),
        }
    }
}
