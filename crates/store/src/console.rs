//! The web console's records: logins (a tenant's people and the platform's operators),
//! server-side sessions, and the audit log. A trait of its own beside
//! [`ControlStore`](crate::ControlStore), so each stays small.

use std::future::Future;

use crate::StoreError;

/// What a login may do. Tenant roles see only their tenant; `Operator` is the platform's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything in the tenant, logins and the audit log included.
    Owner,
    /// Domains, keys, webhooks, suppressions, activity.
    Developer,
    /// Activity, suppressions, dashboards.
    Marketer,
    /// Reads only.
    Viewer,
    /// The platform's people: every tenant, queues, shaping.
    Operator,
}

impl Role {
    pub const TENANT_ROLES: [Role; 4] =
        [Role::Owner, Role::Developer, Role::Marketer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Developer => "developer",
            Role::Marketer => "marketer",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::Owner,
            Role::Developer,
            Role::Marketer,
            Role::Viewer,
            Role::Operator,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// A console login. The password hash never leaves the store except to be verified.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub id: String,
    pub email: String,
    /// How the person is shown; empty: by address.
    pub display_name: String,
    /// `None` for operators.
    pub tenant_id: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub totp_secret: Option<Vec<u8>>,
    pub locale: Option<String>,
    pub created_ms: i64,
    pub password_changed_ms: i64,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("tenant_id", &self.tenant_id)
            .field("role", &self.role)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// A signed-in browser, found by the SHA-256 of its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_sha256: Vec<u8>,
    pub login_id: String,
    /// The token every state-changing request must carry.
    pub csrf: String,
    pub created_ms: i64,
    pub seen_ms: i64,
    /// The password was right; the second factor is still to come.
    pub pending_second_factor: bool,
    pub address: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub time_ms: i64,
    /// The tenant acted on; `None` for platform-wide actions.
    pub tenant_id: Option<String>,
    /// Who: a login's address, `cli`, or `api-key:<id>`.
    pub actor: String,
    /// What, as a dotted name (`key.create`, `site.pause`, `login.failed`).
    pub action: String,
    /// On what (a key id, a domain, a site).
    pub target: String,
    /// From which network address.
    pub address: String,
}

pub trait ConsoleStore: Send + Sync {
    /// Adds a login (the address is lower-cased and must be new).
    fn add_login(
        &self,
        email: &str,
        tenant_id: Option<&str>,
        role: Role,
        password_hash: &str,
    ) -> impl Future<Output = Result<Login, StoreError>> + Send;
    /// A login by address (case-insensitive) or id.
    fn login(
        &self,
        email_or_id: &str,
    ) -> impl Future<Output = Result<Option<Login>, StoreError>> + Send;
    /// Every login, operators first, then by tenant and address; only one tenant's when
    /// `tenant_id` is given.
    fn logins(
        &self,
        tenant_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Login>, StoreError>> + Send;
    /// Removes a login and its sessions. False when there was none.
    fn remove_login(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Sets a new password and ends every session of the login except `keep` (the one
    /// that changed it).
    fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        keep: Option<&[u8]>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Turns the second factor on (a secret) or off.
    fn set_totp(
        &self,
        id: &str,
        secret: Option<&[u8]>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets the name a login is shown by (empty: its address; one line, 100 characters).
    fn set_display_name(
        &self,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Changes a tenant login's role (never to or from operator).
    fn set_role(&self, id: &str, role: Role)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    fn set_locale(
        &self,
        id: &str,
        locale: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn add_session(&self, session: &Session)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    fn session(
        &self,
        id_sha256: &[u8],
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;
    /// Marks a session used now (idle expiry counts from here).
    fn touch_session(
        &self,
        id_sha256: &[u8],
        seen_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn remove_session(
        &self,
        id_sha256: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets sessions created before `created_before_ms` or idle since `seen_before_ms`.
    fn purge_sessions(
        &self,
        created_before_ms: i64,
        seen_before_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Appends to the audit log.
    fn audit(
        &self,
        tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
        address: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The newest entries first, before `before_id`; one tenant's, or all (`None`).
    fn audit_log(
        &self,
        tenant_id: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}
