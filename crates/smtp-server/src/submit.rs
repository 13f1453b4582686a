//! From a finished transaction to a durable spool record and the reply that says so.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use smtp_wire::{DsnRet, Reply, Transaction};
use spool::{Envelope, Recipient, Spool, SpoolError, tenant_of};

use crate::headers;
use crate::tenants::Tenants;

/// Turns transactions into spooled messages.
#[derive(Clone)]
pub struct Ingress {
    spool: Spool,
    hostname: String,
    tenants: Option<Arc<dyn Tenants>>,
    /// Metric handles for every accepted message, looked up once rather than per message.
    accept_latency: metrics::Histogram,
    accepted: metrics::Counter,
    accepted_bytes: metrics::Counter,
}

impl Ingress {
    /// An ingress writing to `spool`, naming itself `hostname` in trace headers; tenants'
    /// messages (SMTP AUTH as a tenant) go through `tenants` first.
    pub fn new(spool: Spool, hostname: String, tenants: Option<Arc<dyn Tenants>>) -> Self {
        Ingress {
            spool,
            hostname,
            tenants,
            accept_latency: metrics::histogram!("tsubame_smtp_accept_latency_seconds"),
            accepted: metrics::counter!("tsubame_smtp_messages_accepted_total"),
            accepted_bytes: metrics::counter!("tsubame_smtp_accepted_bytes_total"),
        }
    }

    /// Spools the message and returns the end-of-data reply. The 250 is produced only after
    /// the spool reports the record fsynced.
    pub async fn submit(&self, mut txn: Transaction, client_ip: IpAddr) -> Reply {
        let started = Instant::now();
        if let Some(reply) = self.take_reports(&mut txn, client_ip).await {
            return reply;
        }
        if crate::long_lines::present(&txn.content) {
            // Before anything is signed or stored: what is stored is what goes out.
            let content = std::mem::take(&mut txn.content);
            match tokio::task::spawn_blocking(move || crate::long_lines::rewrite(&content)).await {
                Ok(rewritten) => txn.content = rewritten,
                Err(err) => {
                    tracing::error!(error = %err, "rewriting long lines failed");
                    return Reply::new(451, (4, 3, 0), "Temporary failure, try again later");
                }
            }
            metrics::counter!("tsubame_smtp_long_lines_rewritten_total").increment(1);
        }
        let id = self.spool.next_id();
        let queue_id = id.to_string();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let single = match txn.recipients.as_slice() {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        let trace = headers::received(&headers::TraceInfo {
            helo: &txn.helo,
            client_ip,
            hostname: &self.hostname,
            protocol: txn.protocol(),
            queue_id: &queue_id,
            single_recipient: single,
            unix_seconds: now.as_secs() as i64,
        });
        let mut added = String::new();
        if !headers::has_message_id(&txn.content) {
            added.push_str(&headers::message_id(&queue_id, &self.hostname));
        }
        let recipients = txn.recipients.len();
        let sender = txn.sender.address.clone();
        // A tenant's message, when the platform has tenants and the session logged in as one.
        let tenant = self.tenants.as_deref().zip(
            txn.auth_user
                .as_deref()
                .and_then(tenant_of)
                .map(str::to_string),
        );
        let (mut envelope, content) = envelope(txn, client_ip, now.as_millis() as u64);
        let mut suppressed = Vec::new();
        // The fields to put in front of the content: ours, or the tenant's signed set.
        let (content, fields) = match &tenant {
            Some((tenants, tenant)) => {
                let addresses: Vec<String> = envelope
                    .recipients
                    .iter()
                    .map(|r| r.address.clone())
                    .collect();
                match sign(
                    *tenants, tenant, &queue_id, &sender, &addresses, &added, content,
                )
                .await
                {
                    Ok(signed) => {
                        envelope.sender = signed.return_path;
                        envelope.flags |= Envelope::FLAG_NO_DSN;
                        // Suppressed recipients are not sent to; the rest of the message is.
                        suppressed = drop_recipients(&mut envelope, &signed.suppressed);
                        (signed.content, signed.fields)
                    }
                    Err(reply) => {
                        self.refused(&reply, "tenant_policy", client_ip, &sender, recipients);
                        return reply;
                    }
                }
            }
            None => (content, added),
        };
        if envelope.recipients.is_empty() {
            if let Some((tenants, tenant)) = &tenant {
                tenants.admitted(tenant, &queue_id, &envelope.sender, &[], &suppressed);
            }
            tracing::info!(id = %queue_id, client = %client_ip, sender = %sender, "message not queued: every recipient is suppressed");
            return Reply::new(
                250,
                (2, 0, 0),
                format!("Ok: {queue_id} not queued, every recipient is suppressed"),
            );
        }
        let queued: Vec<String> = match &tenant {
            Some(_) => envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
            None => Vec::new(),
        };
        let return_path = envelope.sender.clone();
        let mut prefix = trace;
        prefix.push_str(&fields);
        let size = prefix.len() + content.len();
        let result = self
            .spool
            .insert_with_prefix(id, envelope, prefix.as_bytes(), content)
            .await;
        if result.is_ok()
            && let Some((tenants, tenant)) = &tenant
        {
            tenants.admitted(tenant, &queue_id, &return_path, &queued, &suppressed);
        }
        let (reply, reason) = match result {
            Ok(()) => (
                Reply::new(250, (2, 0, 0), format!("Ok: queued as {queue_id}")),
                None,
            ),
            Err(SpoolError::NoSpace) => (
                Reply::new(
                    452,
                    (4, 3, 1),
                    "Insufficient system storage, try again later",
                ),
                Some("disk_full"),
            ),
            Err(err) => {
                tracing::error!(error = %err, "spool refused a message");
                (
                    Reply::new(451, (4, 3, 0), "Temporary local problem, try again later"),
                    Some("spool_error"),
                )
            }
        };
        let elapsed = started.elapsed();
        self.accept_latency.record(elapsed.as_secs_f64());
        match reason {
            None => {
                self.accepted.increment(1);
                self.accepted_bytes.increment(size as u64);
                tracing::info!(
                    id = %queue_id, client = %client_ip, sender = %sender, recipients, size,
                    reply = %reply.summary(), "message accepted"
                );
            }
            Some(reason) => self.refused(&reply, reason, client_ip, &sender, recipients),
        }
        reply
    }

    /// Takes what is addressed to the platform's return paths (bounces, feedback reports,
    /// unsubscribes): read, not queued. Returns the reply when nothing else is left to
    /// queue; the other recipients, if any, stay in `txn`.
    async fn take_reports(&self, txn: &mut Transaction, client_ip: IpAddr) -> Option<Reply> {
        let tenants = self.tenants.as_deref()?;
        if !txn
            .recipients
            .iter()
            .any(|r| tenants.is_return_path(&r.address))
        {
            return None;
        }
        let (inbound, outbound): (Vec<_>, Vec<_>) = std::mem::take(&mut txn.recipients)
            .into_iter()
            .partition(|r| tenants.is_return_path(&r.address));
        txn.recipients = outbound;
        let addresses: Vec<String> = inbound.into_iter().map(|r| r.address).collect();
        let reply = tenants.inbound(&addresses, &txn.content).await;
        tracing::info!(client = %client_ip, recipients = addresses.len(), size = txn.content.len(), reply = %reply.summary(), "report to a return path");
        (txn.recipients.is_empty() || reply.code >= 400).then_some(reply)
    }

    fn refused(
        &self,
        reply: &Reply,
        reason: &'static str,
        client_ip: IpAddr,
        sender: &str,
        recipients: usize,
    ) {
        metrics::counter!("tsubame_smtp_messages_rejected_total", "reason" => reason).increment(1);
        tracing::warn!(
            client = %client_ip, sender = %sender, recipients,
            reply = %reply.summary(), reason, "message rejected"
        );
    }
}

/// Removes the recipients at `indices` from the envelope and returns their addresses.
fn drop_recipients(envelope: &mut Envelope, indices: &[usize]) -> Vec<String> {
    let mut dropped = Vec::new();
    let mut index = 0;
    envelope.recipients.retain(|r| {
        let keep = !indices.contains(&index);
        if !keep {
            dropped.push(r.address.clone());
        }
        index += 1;
        keep
    });
    dropped
}

/// A tenant's message as the platform takes it.
struct Signed {
    content: Vec<u8>,
    /// The DKIM-Signature field, then the fields we add, to put in front of the content.
    fields: String,
    /// Indices of suppressed recipients.
    suppressed: Vec<usize>,
    return_path: String,
}

/// A tenant's message: admitted by the platform, given a List-Unsubscribe when it has none,
/// then DKIM-signed over the header fields we add and the content. Signing hashes the
/// whole message (and an RSA signature is ~0.2 ms): off the async workers, with the
/// content moved there and back rather than copied.
async fn sign(
    tenants: &dyn Tenants,
    tenant: &str,
    message_id: &str,
    sender: &str,
    recipients: &[String],
    added: &str,
    content: Vec<u8>,
) -> Result<Signed, Reply> {
    let admitted = tenants
        .admit(tenant, message_id, sender, recipients, &content)
        .await?;
    let mut added = added.to_string();
    if !headers::has_field(&content, b"list-unsubscribe:") {
        added.push_str("List-Unsubscribe: <mailto:");
        added.push_str(&admitted.unsubscribe);
        added.push_str(">\r\n");
    }
    let signer = admitted.signer;
    let signed = tokio::task::spawn_blocking(move || {
        let signature = signer.sign_parts(&[added.as_bytes(), &content]);
        (content, signature, added)
    })
    .await;
    let failed = || Reply::new(451, (4, 3, 0), "Temporary local problem, try again later");
    match signed {
        Ok((content, Ok(signature), added)) => Ok(Signed {
            content,
            fields: signature + &added,
            suppressed: admitted.suppressed,
            return_path: admitted.return_path,
        }),
        Ok((_, Err(err), _)) => {
            tracing::error!(tenant, error = %err, "DKIM signing failed");
            Err(failed())
        }
        Err(err) => {
            tracing::error!(tenant, error = %err, "DKIM signing task failed");
            Err(failed())
        }
    }
}

/// Splits a transaction into the stored envelope and its content.
fn envelope(txn: Transaction, client_ip: IpAddr, received_ms: u64) -> (Envelope, Vec<u8>) {
    let mut flags = 0;
    if txn.sender.body_8bit {
        flags |= Envelope::FLAG_8BITMIME;
    }
    if txn.sender.smtputf8 {
        flags |= Envelope::FLAG_SMTPUTF8;
    }
    // The session refused any bare CR or LF; only a BDAT body may lack its final CRLF.
    if txn.content.is_empty() || txn.content.ends_with(b"\r\n") {
        flags |= Envelope::FLAG_CANONICAL;
    }
    let envelope = Envelope {
        sender: txn.sender.address,
        recipients: txn
            .recipients
            .into_iter()
            .map(|r| Recipient {
                address: r.address,
                notify: r.notify.0,
                orcpt: r.orcpt,
            })
            .collect(),
        dsn_ret: match txn.sender.ret {
            None => 0,
            Some(DsnRet::Full) => 1,
            Some(DsnRet::Headers) => 2,
        },
        dsn_envid: txn.sender.envid,
        flags,
        received_ms,
        client_ip: client_ip.to_string(),
        helo: txn.helo,
        auth_user: txn.auth_user,
        not_before_ms: 0,
        attributes: None,
    };
    (envelope, txn.content)
}
