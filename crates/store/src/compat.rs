//! What the compatible APIs need beyond the native records ([`CompatStore`]): integer ids for
//! clients that expect them (Mailjet's v3 REST names lists, templates and jobs by number),
//! and the results of batch jobs done while the client waited, for its status poll.

use std::future::Future;

use crate::StoreError;

/// What a number names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatKind {
    List,
    Template,
    Property,
    Segment,
    Import,
    /// A file uploaded for a later import.
    Upload,
    /// A contact's membership of a list (`<list id>/<contact id>`).
    Membership,
    /// A campaign (Mailjet's campaign draft, and the campaign it becomes once sent).
    Campaign,
}

impl CompatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CompatKind::List => "list",
            CompatKind::Template => "template",
            CompatKind::Property => "property",
            CompatKind::Segment => "segment",
            CompatKind::Import => "import",
            CompatKind::Upload => "upload",
            CompatKind::Membership => "membership",
            CompatKind::Campaign => "campaign",
        }
    }
}

/// SendGrid's id of a template: `d-` and the hex of ours.
pub fn sendgrid_id(template_id: &str) -> String {
    format!(
        "d-{}",
        template_id.strip_prefix("tp_").unwrap_or(template_id)
    )
}

/// Our id of a SendGrid template id, if it has the shape.
pub fn from_sendgrid_id(id: &str) -> Option<String> {
    let hex = id.strip_prefix("d-")?;
    (!hex.is_empty() && hex.len() <= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("tp_{}", hex.to_ascii_lowercase()))
}

pub trait CompatStore: Send + Sync {
    /// The numbers of a tenant's objects of one kind, in input order; an object gets its
    /// number on first use and keeps it.
    fn numbers(
        &self,
        tenant_id: &str,
        kind: CompatKind,
        object_ids: &[String],
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;
    /// The object a number names, when it is the tenant's and of that kind.
    fn object(
        &self,
        tenant_id: &str,
        kind: CompatKind,
        number: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Keeps a finished job's result (JSON text); returns its number.
    fn add_job(
        &self,
        tenant_id: &str,
        kind: &str,
        result: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// A kept job's result, when it is the tenant's and of that kind.
    fn job(
        &self,
        tenant_id: &str,
        kind: &str,
        number: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}
