//! A checked message → RFC 5322 bytes (mail-builder: MIME structure, encoded words, CRLF
//! line endings) and its spool envelope. Bcc recipients are in the envelope only.

use base64::Engine as _;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use spool::{Envelope, MessageId, Recipient};

use crate::attachments::Attachment;
use crate::native::{Mailbox, Message};

fn address(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.name.as_deref(), m.email.as_str())
}

fn list(mailboxes: &[Mailbox]) -> Address<'_> {
    Address::new_list(mailboxes.iter().map(address).collect())
}

/// The MIME tree: text and HTML as alternatives; inline images related to the HTML they
/// illustrate; files mixed in after the readable part.
///
/// ```text
/// multipart/mixed                 (only with files)
/// ├── multipart/alternative       (only with both text and HTML)
/// │   ├── text/plain
/// │   └── multipart/related       (only with inline images)
/// │       ├── text/html
/// │       └── image/png  Content-ID: <logo>
/// └── application/pdf  Content-Disposition: attachment
/// ```
fn body<'a>(
    text: Option<&'a str>,
    html: Option<&'a str>,
    attachments: &'a [Attachment],
) -> MimePart<'a> {
    // Inline parts without HTML to show them go along as plain attachments.
    let (inline, files): (Vec<&Attachment>, Vec<&Attachment>) = attachments
        .iter()
        .partition(|a| a.content_id.is_some() && html.is_some());
    let html = html.map(|html| {
        let part = MimePart::new("text/html", html);
        if inline.is_empty() {
            return part;
        }
        let mut related = vec![part];
        related.extend(inline.iter().map(|a| {
            let disposition = ContentType::new("inline").attribute("filename", a.filename.as_str());
            file_part(a)
                .header("Content-Disposition", disposition)
                .cid(a.content_id.as_deref().unwrap_or_default())
        }));
        MimePart::new("multipart/related", related)
    });
    let readable = match (text.map(|t| MimePart::new("text/plain", t)), html) {
        (Some(text), Some(html)) => MimePart::new("multipart/alternative", vec![text, html]),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => MimePart::new("text/plain", ""),
    };
    if files.is_empty() {
        return readable;
    }
    let mut mixed = vec![readable];
    mixed.extend(
        files
            .into_iter()
            .map(|a| file_part(a).attachment(a.filename.as_str())),
    );
    MimePart::new("multipart/mixed", mixed)
}

/// An attachment's part. The builder sends text media types as they are when it finds no
/// reason to encode, but it looks only for 8-bit bytes and long lines: a text file with a
/// NUL, a bare CR or a bare LF would go out as `7bit` that is not 7bit (NUL and bare line
/// endings are refused or mangled by receivers, and the file would change). Those are
/// base64-encoded here, byte for byte.
fn file_part(a: &Attachment) -> MimePart<'_> {
    if !needs_base64(&a.content) {
        return MimePart::new(a.content_type.as_str(), a.content.as_slice());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&a.content);
    let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        wrapped.push_str(std::str::from_utf8(line).unwrap_or_default());
        wrapped.push_str("\r\n");
    }
    MimePart::new(a.content_type.as_str(), wrapped).transfer_encoding("base64")
}

/// True when `content` holds a NUL, a CR not followed by LF, or an LF not preceded by CR.
fn needs_base64(content: &[u8]) -> bool {
    content.contains(&0)
        || content.first() == Some(&b'\n')
        || content.last() == Some(&b'\r')
        || content
            .windows(2)
            .any(|w| (w[0] == b'\r') != (w[1] == b'\n'))
}

/// Who sent it: the tenant, for the queue view and later the per-tenant policies.
#[derive(Clone)]
pub struct Submitter {
    pub tenant_id: String,
    pub client_ip: String,
}

/// The message's bytes, DKIM-signed with its sending domain's key, and its envelope for
/// `recipients` (the message's, less the suppressed).
/// `hostname` names this node in the Message-ID.
/// Where replies about a message go: its return path (bounces) and its List-Unsubscribe
/// address.
pub struct Addresses {
    pub return_path: String,
    pub unsubscribe: String,
    /// A one-click unsubscribe URL (RFC 8058), for a message to a single recipient when
    /// this server has a public URL.
    pub one_click: Option<String>,
}

/// A composed message: its envelope, and its bytes as the DKIM-Signature field and the
/// signed message, which the spool stores one after the other (no joined copy).
pub struct Composed {
    pub envelope: Envelope,
    pub signature: String,
    pub content: Vec<u8>,
}

pub fn compose(
    message: &Message,
    recipients: &[String],
    addresses: &Addresses,
    id: MessageId,
    hostname: &str,
    submitter: &Submitter,
    signer: &dkim::Signer,
) -> std::io::Result<Composed> {
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
    // Mailbox providers want bulk mail to say how to unsubscribe; a sender's own header
    // wins. Mail to the address suppresses the recipient who writes.
    let unsubscribe;
    if !message
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("list-unsubscribe"))
    {
        unsubscribe = match &addresses.one_click {
            Some(url) => format!("<{url}>, <mailto:{}>", addresses.unsubscribe),
            None => format!("<mailto:{}>", addresses.unsubscribe),
        };
        builder = builder.header("List-Unsubscribe", Raw::new(unsubscribe.as_str()));
        if addresses.one_click.is_some() {
            builder = builder.header(
                "List-Unsubscribe-Post",
                Raw::new("List-Unsubscribe=One-Click"),
            );
        }
    }
    // An HTML-only message gets a text part made from its HTML.
    let generated;
    let text = match (&message.text, &message.html) {
        (Some(text), _) => Some(text.as_str()),
        (None, Some(html)) => {
            generated = crate::text::from_html(html);
            Some(generated.as_str())
        }
        (None, None) => None,
    };
    builder = builder.body(body(text, message.html.as_deref(), &message.attachments));
    let content = builder.write_to_vec()?;
    let signature = signer.sign(&content).map_err(std::io::Error::other)?;
    let smtputf8 =
        !message.from.email.is_ascii() || message.recipients().iter().any(|r| !r.is_ascii());
    // The tenant learns what happens from events, not DSNs.
    let mut flags = Envelope::FLAG_NO_DSN;
    if smtputf8 {
        flags |= Envelope::FLAG_SMTPUTF8;
    }
    // The signature field is CRLF-terminated: the content decides.
    if canonical(&content) {
        flags |= Envelope::FLAG_CANONICAL;
    }
    let envelope = Envelope {
        sender: addresses.return_path.clone(),
        recipients: recipients
            .iter()
            .map(|address| Recipient {
                address: address.clone(),
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
        auth_user: Some(spool::tenant_marker(&submitter.tenant_id)),
        not_before_ms: message.send_at_ms.unwrap_or(0),
        attributes: crate::attributes::stored(message),
    };
    Ok(Composed {
        envelope,
        signature,
        content,
    })
}

/// Every CR and LF in a CRLF pair, ending with one: delivery may send it as is.
fn canonical(content: &[u8]) -> bool {
    if !content.ends_with(b"\r\n") {
        return false;
    }
    // Only line endings matter: jump from one CR or LF to the next (a campaign composes
    // millions of messages; a byte-by-byte loop was a visible share of the work).
    let mut ends = memchr::memchr2_iter(b'\r', b'\n', content);
    while let Some(i) = ends.next() {
        if content[i] == b'\n' || content.get(i + 1) != Some(&b'\n') {
            return false;
        }
        // The LF of this CRLF.
        ends.next();
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
        let composed = compose(
            &message,
            &message.recipients(),
            &Addresses {
                return_path: "bounces+x@bounce.acme.test".into(),
                unsubscribe: "unsubscribe+x@bounce.acme.test".into(),
                one_click: None,
            },
            id,
            "mx.test",
            &submitter,
            &signer,
        )
        .expect("compose");
        let envelope = composed.envelope;
        let bytes = [composed.signature.as_bytes(), &composed.content].concat();
        assert!(bytes.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));
        (envelope, String::from_utf8(bytes).expect("utf8"))
    }

    /// A text attachment holding a NUL, a bare CR or a bare LF goes out base64-encoded and
    /// arrives byte for byte; a clean one stays readable text.
    #[test]
    fn text_attachments_with_nul_or_bare_line_endings_are_base64() {
        use base64::Engine as _;
        use mail_parser::MimeHeaders as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let awkward: [&[u8]; 4] = [b"a\0b\r\n", b"one\ntwo\n", b"cr\ronly", b"ends in cr\r"];
        for content in awkward {
            let body = format!(
                r#"{{"messages":[{{"from":"a@acme.test","to":["b@x.test"],"subject":"S","text":"Hi",
                "attachments":[{{"filename":"a.txt","content_type":"text/plain","content":"{}"}},
                               {{"filename":"clean.txt","content_type":"text/plain","content":"{}"}}]}}]}}"#,
                b64(content),
                b64(b"plain text\r\n")
            );
            let (envelope, text) = composed(&body);
            assert_ne!(envelope.flags & Envelope::FLAG_CANONICAL, 0);
            let parsed = mail_parser::MessageParser::new()
                .parse(text.as_bytes())
                .expect("parses");
            let part = |name: &str| {
                parsed
                    .attachments()
                    .find(|p| p.attachment_name() == Some(name))
                    .expect("attachment")
            };
            let awkward = part("a.txt");
            assert_eq!(
                awkward.content_transfer_encoding(),
                Some("base64"),
                "{content:?}: {text}"
            );
            assert_eq!(awkward.contents(), content);
            let clean = part("clean.txt");
            assert_ne!(clean.content_transfer_encoding(), Some("base64"), "{text}");
            assert_eq!(clean.contents(), b"plain text\r\n");
            assert!(!text.as_bytes().contains(&0), "{text}");
        }
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

    #[test]
    fn files_and_inline_images_make_a_mime_tree_and_attributes_stay_in_the_envelope() {
        use mail_parser::MimeHeaders as _;
        let (envelope, text) = composed(
            r#"{"messages":[{"from":"a@acme.test","to":["b@x.test"],"subject":"S",
            "text":"Hi","html":"<p>Hi <img src=\"cid:logo\"></p>",
            "attachments":[{"filename":"a.pdf","content_type":"application/pdf","content":"JVBERi0xLjQ="},
                           {"filename":"logo.png","content_type":"image/png","content":"iVBORw==","content_id":"logo"}],
            "custom_id":"c-1","metadata":{"order":"42"},"tags":["receipt"]}]}"#,
        );
        let parsed = mail_parser::MessageParser::new()
            .parse(text.as_bytes())
            .expect("parses");
        let types: Vec<String> = parsed
            .parts
            .iter()
            .map(|p| {
                let ct = p.content_type().expect("content type");
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
            })
            .collect();
        assert_eq!(
            types,
            [
                "multipart/mixed",
                "multipart/alternative",
                "text/plain",
                "multipart/related",
                "text/html",
                "image/png",
                "application/pdf",
            ]
        );
        let logo = &parsed.parts[5];
        assert_eq!(logo.content_id(), Some("logo"));
        assert_eq!(logo.contents(), b"\x89PNG");
        let pdf = &parsed.parts[6];
        assert_eq!(pdf.attachment_name(), Some("a.pdf"));
        assert_eq!(pdf.contents(), b"%PDF-1.4");
        assert!(
            !text.contains("receipt") && !text.contains("order"),
            "{text}"
        );
        let attributes: serde_json::Value =
            serde_json::from_str(envelope.attributes.as_deref().expect("attributes"))
                .expect("json");
        assert_eq!(
            attributes,
            serde_json::json!({"custom_id":"c-1","metadata":{"order":"42"},"tags":["receipt"]})
        );
        assert_eq!(envelope.not_before_ms, 0);
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::canonical;

    #[test]
    fn only_crlf_line_endings_and_a_final_one_are_canonical() {
        for ok in [&b"a\r\n"[..], b"\r\n", b"a\r\nb\r\n\r\n"] {
            assert!(canonical(ok), "{ok:?}");
        }
        for bad in [
            &b"a"[..],
            b"a\n",
            b"a\r\nb\nc\r\n",
            b"a\rb\r\n",
            b"a\r\r\n",
            b"\n\r\n",
            b"a\r\n\r",
        ] {
            assert!(!canonical(bad), "{bad:?}");
        }
    }
}
