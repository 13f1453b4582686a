//! Replies inside a transaction and the per-recipient outcome.

use crate::client::session::{Awaiting, ClientEvent, ClientSession, TransactionOutcome};
use crate::reply::Reply;

fn positive(reply: Option<&Reply>) -> bool {
    reply.is_some_and(|r| (200..300).contains(&r.code))
}

impl ClientSession {
    pub(crate) fn on_transaction_reply(&mut self, awaiting: Awaiting, reply: Reply) {
        let Some(txn) = self.txn.as_mut() else { return };
        match awaiting {
            Awaiting::Mail => {
                let refused = !positive(Some(&reply));
                txn.mail = Some(reply);
                if !txn.pipelined {
                    if refused {
                        txn.unsent.clear();
                        self.finish_transaction();
                    } else {
                        self.send_next_commands();
                    }
                }
            }
            Awaiting::Rcpt(i) => {
                txn.rcpt[i] = Some(reply);
                if !txn.pipelined {
                    let next_is_data = matches!(txn.unsent.front(), Some((Awaiting::Data, _)));
                    if next_is_data && !txn.rcpt.iter().any(|r| positive(r.as_ref())) {
                        // Without pipelining there is no point in DATA when nobody was accepted.
                        txn.unsent.clear();
                        self.finish_transaction();
                    } else {
                        self.send_next_commands();
                    }
                }
            }
            Awaiting::Data if reply.code == 354 => {
                let accepted =
                    positive(txn.mail.as_ref()) && txn.rcpt.iter().any(|r| positive(r.as_ref()));
                if accepted {
                    let content = std::mem::take(&mut txn.data_content);
                    self.output.extend_from_slice(&content);
                    txn.dot_sent = true;
                    self.awaiting.push_back(Awaiting::DataDot);
                } else {
                    // RFC 2920 §3.1: DATA accepted although every RCPT failed; end it empty.
                    self.output.extend_from_slice(b".\r\n");
                    self.awaiting.push_back(Awaiting::EmptyDot);
                }
            }
            Awaiting::Data | Awaiting::DataDot => {
                txn.data = Some(reply);
                self.finish_transaction();
            }
            Awaiting::Bdat => {
                // A refused LAST chunk (e.g. no valid recipients) leaves the server expecting
                // RSET; an accepted one completes the transaction.
                txn.dot_sent = positive(Some(&reply));
                txn.data = Some(reply);
                self.finish_transaction();
            }
            _ => {}
        }
    }

    /// Computes every recipient's final reply; resets the server first when the transaction
    /// did not end with an end-of-data reply.
    pub(crate) fn finish_transaction(&mut self) {
        let Some(txn) = self.txn.take() else { return };
        let recipients: Vec<Reply> = txn
            .rcpt
            .iter()
            .map(|rcpt| {
                if !positive(txn.mail.as_ref()) {
                    return txn.mail.clone().unwrap_or_else(no_reply);
                }
                match rcpt {
                    Some(r) if positive(Some(r)) => txn.data.clone().unwrap_or_else(no_reply),
                    Some(r) => r.clone(),
                    None => no_reply(),
                }
            })
            .collect();
        let any_delivered = recipients.iter().any(|r| positive(Some(r)));
        let outcome = TransactionOutcome {
            recipients,
            any_delivered,
        };
        // After an end-of-data reply (good or bad) the server has closed the transaction
        // itself; anything shorter needs an explicit RSET.
        if txn.dot_sent && txn.data.is_some() {
            self.ready.push_back(ClientEvent::Transaction(outcome));
        } else {
            self.pending_outcome = Some(outcome);
            self.command(Awaiting::Reset, "RSET");
        }
    }
}

/// Stands in for a reply that never came (the transaction was cut short).
fn no_reply() -> Reply {
    Reply::new(451, (4, 4, 2), "No reply received for this command")
}
