//! A checked message → RFC 5322 bytes (mail-builder: MIME structure, encoded words, CRLF
//! line endings) and its spool envelope. Bcc recipients are in the envelope only.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use spool::{Envelope, MessageId, Recipient};

use crate::native::{Mailbox, Message};

fn address(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.name.as_deref(), m.email.as_str())
}

fn list(mailboxes: &[Mailbox]) -> Address<'_> {
    Address::new_list(mailboxes.iter().map(address).collect())
}

/// Who sent it: the tenant, for the queue view and later the per-tenant policies.
pub struct Submitter {
    pub tenant_id: String,
    pub client_ip: String,
}

/// The message's bytes, DKIM-signed with its sending domain's key, and its envelope.
/// `hostname` names this node in the Message-ID.
pub fn compose(
    message: &Message,
    id: MessageId,
    hostname: &str,
    submitter: &Submitter,
    signer: &dkim::Signer,
) -> std::io::Result<(Envelope, Vec<u8>)> {
    let mut builder = MessageBuilder::new()
        .from(address(&message.from))
        .subject(message.subject.as_str())
        .message_id(format!("{id}@{hostname}"));
    if !message.to.is_empty() {
        builder = builder.to(list(&message.to));
    }
    if !message.cc.is_empty() {
        builder = builder.cc(list(&message.cc));
    }
    if let Some(reply_to) = &message.reply_to {
        builder = builder.reply_to(address(reply_to));
    }
    for (name, value) in &message.headers {
        builder = builder.header(name.as_str(), Raw::new(value.as_str()));
    }
    // An HTML-only message gets a text part made from its HTML.
    let generated;
    if let Some(text) = &message.text {
        builder = builder.text_body(text.as_str());
    } else if let Some(html) = &message.html {
        generated = crate::text::from_html(html);
        builder = builder.text_body(generated.as_str());
    }
    if let Some(html) = &message.html {
        builder = builder.html_body(html.as_str());
    }
    let unsigned = builder.write_to_vec()?;
    let signature = signer.sign(&unsigned).map_err(std::io::Error::other)?;
    let mut content = Vec::with_capacity(signature.len() + unsigned.len());
    content.extend_from_slice(signature.as_bytes());
    content.extend_from_slice(&unsigned);
    let smtputf8 =
        !message.from.email.is_ascii() || message.recipients().iter().any(|r| !r.is_ascii());
    let mut flags = 0;
    if smtputf8 {
        flags |= Envelope::FLAG_SMTPUTF8;
    }
    if canonical(&content) {
        flags |= Envelope::FLAG_CANONICAL;
    }
    let envelope = Envelope {
        sender: message.from.email.clone(),
        recipients: message
            .recipients()
            .into_iter()
            .map(|address| Recipient {
                address,
                notify: 0,
                orcpt: None,
            })
            .collect(),
        dsn_ret: 0,
        dsn_envid: None,
        flags,
        received_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        client_ip: submitter.client_ip.clone(),
        helo: "http-api".into(),
        auth_user: Some(format!("tenant:{}", submitter.tenant_id)),
    };
    Ok((envelope, content))
}

/// Every CR and LF in a CRLF pair, ending with one: delivery may send it as is.
fn canonical(content: &[u8]) -> bool {
    if !content.ends_with(b"\r\n") {
        return false;
    }
    let mut prev = 0u8;
    for (i, &b) in content.iter().enumerate() {
        match b {
            b'\n' if prev != b'\r' => return false,
            b'\r' if content.get(i + 1) != Some(&b'\n') => return false,
            _ => {}
        }
        prev = b;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::parse;

    fn composed(body: &str) -> (Envelope, String) {
        let message = parse(body.as_bytes()).expect("valid").remove(0);
        let id = spool::IdGenerator::new(None).next();
        let submitter = Submitter {
            tenant_id: "t_1".into(),
            client_ip: "192.0.2.1".into(),
        };
        let pair = dkim::generate(dkim::Algorithm::Ed25519).expect("key");
        let domain = store::SendingDomain {
            domain: "acme.test".into(),
            tenant_id: "t_1".into(),
            selector: "s1".into(),
            algorithm: "ed25519".into(),
            private_key: pair.private_pkcs8,
            public_key: pair.public_b64,
            created_ms: 0,
        };
        let signer = tenancy::Signers::default().get(&domain).expect("signer");
        let (envelope, bytes) =
            compose(&message, id, "mx.test", &submitter, &signer).expect("compose");
        assert!(bytes.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));
        (envelope, String::from_utf8(bytes).expect("utf8"))
    }

    #[test]
    fn an_html_only_message_gets_a_text_part() {
        let (envelope, text) = composed(
            r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],"subject":"S","html":"<p>Hello <b>you</b></p>"}]}"#,
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/plain"), "{text}");
        assert!(text.contains("Hello you"), "{text}");
        assert_ne!(
            envelope.flags & Envelope::FLAG_CANONICAL,
            0,
            "CRLF throughout"
        );
        assert_eq!(envelope.auth_user.as_deref(), Some("tenant:t_1"));
    }

    #[test]
    fn non_ascii_names_and_subjects_are_encoded_and_addresses_flag_smtputf8() {
        let (envelope, text) = composed(
            r#"{"messages":[{"from":{"email":"a@acme.test","name":"山田"},"to":["ユーザー@x.test"],"subject":"こんにちは","text":"本文"}]}"#,
        );
        assert!(text.contains("=?utf-8?"), "{text}");
        assert!(text.is_ascii() || envelope.flags & Envelope::FLAG_SMTPUTF8 != 0);
        assert_ne!(envelope.flags & Envelope::FLAG_SMTPUTF8, 0);
    }
}
