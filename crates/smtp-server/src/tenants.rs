//! Tenants on SMTP: the hook through which SMTP AUTH credentials name a tenant of the
//! platform, and through which a tenant's message is checked (sending domains, rate, daily
//! quota) before it is signed and spooled. The server knows nothing of the control plane;
//! the binary plugs it in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use smtp_wire::Reply;

/// A boxed future borrowing the hook.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What SMTP AUTH credentials turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A tenant's credentials: its mail is checked, limited and signed as the tenant's.
    Tenant(String),
    /// They look like a tenant's but are wrong, revoked or may not send.
    Refused,
    /// Right credentials of a tenant the platform suspended (the reason given).
    Suspended(String),
    /// They could not be checked now (the control plane did not answer).
    Unavailable,
    /// Not a tenant's: the local SMTP users decide.
    NotTenant,
}

/// A tenant's message the platform takes.
pub struct Admitted {
    /// The key of the sending domain of its From address.
    pub signer: Arc<dkim::Signer>,
    /// The envelope sender it goes out with (the platform's return path, so bounces come
    /// back to it and name the message).
    pub return_path: String,
    /// The address for the message's List-Unsubscribe, added when it has none.
    pub unsubscribe: String,
    /// Indices of the recipients the tenant suppresses: they are not sent to.
    pub suppressed: Vec<usize>,
}

/// The platform's side of SMTP for tenants.
pub trait Tenants: Send + Sync + 'static {
    /// Whose credentials these are.
    fn login<'a>(&'a self, user: &'a str, password: &'a str) -> BoxFuture<'a, Login>;

    /// Takes one message of the tenant (envelope `sender` and `recipients`, received
    /// `content`) or refuses it with the reply to give. Taken means counted against its
    /// limits, unless every recipient is suppressed.
    fn admit<'a>(
        &'a self,
        tenant_id: &'a str,
        message_id: &'a str,
        sender: &'a str,
        recipients: &'a [String],
        content: &'a [u8],
    ) -> BoxFuture<'a, Result<Admitted, Reply>>;

    /// Reports what became of a taken message: spooled as `message_id` (with the return
    /// path it was given) for `queued` (empty when nothing was spooled), dropped for
    /// `suppressed`.
    fn admitted(
        &self,
        tenant_id: &str,
        message_id: &str,
        return_path: &str,
        queued: &[String],
        suppressed: &[String],
    );

    /// True for the platform's return-path addresses: mail to them (bounces, feedback
    /// reports) is taken from anyone, without relay rights.
    fn is_return_path(&self, address: &str) -> bool;

    /// Takes a bounce or feedback report sent to `recipients` (return paths) and answers
    /// with the end-of-data reply; 250 only once what it says is recorded durably.
    fn inbound<'a>(&'a self, recipients: &'a [String], content: &'a [u8]) -> BoxFuture<'a, Reply>;
}
