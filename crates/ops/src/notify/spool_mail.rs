//! Alert and report mail sent through tsubame itself: the message is spooled (fsynced)
//! like any other and the delivery engine takes it from there.

use std::future::Future;
use std::pin::Pin;

use spool::{Envelope, Recipient, Spool};

use crate::notify::MailOut;

pub struct SpoolMail {
    pub spool: Spool,
    pub hostname: String,
}

impl MailOut for SpoolMail {
    fn send<'a>(
        &'a self,
        from: &'a str,
        to: &'a [String],
        message: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            if to.is_empty() {
                return Err("no recipients".into());
            }
            let envelope = Envelope {
                sender: from.to_string(),
                recipients: to
                    .iter()
                    .map(|address| Recipient {
                        address: address.clone(),
                        notify: 0,
                        orcpt: None,
                    })
                    .collect(),
                flags: if message.iter().any(|b| *b >= 0x80) {
                    Envelope::FLAG_8BITMIME
                } else {
                    0
                },
                received_ms: crate::clock::wall_ms() as u64,
                client_ip: "local".into(),
                helo: self.hostname.clone(),
                ..Default::default()
            };
            let id = self.spool.next_id();
            self.spool
                .insert(id, envelope, message)
                .await
                .map_err(|e| format!("spooling: {e}"))
        })
    }
}
