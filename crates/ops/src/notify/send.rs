//! Sending notifications: each one retried with back-off (1 s, 2 s, 4 s … six tries) on
//! network errors, 429 and 5xx; a 4xx other than 429 is final (the receiver refuses the
//! payload). Mail goes through tsubame itself (the binary hands in a [`MailOut`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Spools a message for delivery; the error says why it could not.
pub trait MailOut: Send + Sync {
    fn send<'a>(
        &'a self,
        from: &'a str,
        to: &'a [String],
        message: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// One thing to send to one channel.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Json {
        url: String,
        body: Value,
    },
    Signed {
        url: String,
        secret: String,
        body: Value,
    },
    Mail {
        from: String,
        to: Vec<String>,
        message: Vec<u8>,
    },
}

pub const TRIES: u32 = 6;

#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    mail: Option<Arc<dyn MailOut>>,
    first_backoff: Duration,
}

impl Notifier {
    pub fn new(mail: Option<Arc<dyn MailOut>>) -> Notifier {
        Notifier {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .user_agent("tsubame-ops")
                .build()
                .unwrap_or_default(),
            mail,
            first_backoff: Duration::from_secs(1),
        }
    }

    /// Sends with retries: `Ok(tries)` or the last error.
    pub async fn send(&self, out: &Outgoing) -> Result<u32, String> {
        let mut wait = self.first_backoff;
        let mut last = String::new();
        for attempt in 1..=TRIES {
            match self.once(out).await {
                Ok(()) => return Ok(attempt),
                Err((final_, why)) => {
                    last = why;
                    if final_ {
                        break;
                    }
                }
            }
            if attempt < TRIES {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(last)
    }

    /// One try: the error says whether trying again is pointless.
    async fn once(&self, out: &Outgoing) -> Result<(), (bool, String)> {
        let request = match out {
            Outgoing::Json { url, body } => self.http.post(url).json(body),
            Outgoing::Signed { url, secret, body } => {
                let bytes = serde_json::to_vec(body).unwrap_or_default();
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                self.http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-tsubame-timestamp", ts.to_string())
                    .header("x-tsubame-signature", sign(secret, ts, &bytes))
                    .body(bytes)
            }
            Outgoing::Mail { from, to, message } => {
                let Some(mail) = &self.mail else {
                    return Err((true, "mail is not available".into()));
                };
                return mail
                    .send(from, to, message.clone())
                    .await
                    .map_err(|e| (false, e));
            }
        };
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                let retry = status.as_u16() == 429 || status.is_server_error();
                Err((
                    !retry,
                    format!("{status}: {}", text.chars().take(200).collect::<String>()),
                ))
            }
            Err(e) => Err((false, e.to_string())),
        }
    }
}

/// `v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the event webhooks' scheme.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let hex: String = ctx
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}
