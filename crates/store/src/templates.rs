//! Stored message templates ([`TemplateStore`]): a template per name with numbered
//! versions, one of them active; a version a message used is immutable.

use std::future::Future;

use crate::StoreError;

pub use templates::Dialect;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub id: String,
    pub name: String,
    pub dialect: Dialect,
    pub active_version: Option<i64>,
    pub created_ms: i64,
}

/// What a version says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionContent {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    /// JSON object text.
    pub test_data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub version: i64,
    pub content: VersionContent,
    pub created_ms: i64,
    pub used_ms: Option<i64>,
}

pub trait TemplateStore: Send + Sync {
    /// Makes a template; names are unique per tenant.
    fn add_template(
        &self,
        tenant_id: &str,
        name: &str,
        dialect: Dialect,
    ) -> impl Future<Output = Result<StoredTemplate, StoreError>> + Send;
    fn templates(
        &self,
        tenant_id: &str,
    ) -> impl Future<Output = Result<Vec<StoredTemplate>, StoreError>> + Send;
    /// A tenant's template by id or name.
    fn template(
        &self,
        tenant_id: &str,
        id_or_name: &str,
    ) -> impl Future<Output = Result<Option<StoredTemplate>, StoreError>> + Send;
    fn remove_template(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Adds the next version (and makes it active when `activate`, or when it is the first).
    fn add_version(
        &self,
        tenant_id: &str,
        template_id: &str,
        content: &VersionContent,
        activate: bool,
    ) -> impl Future<Output = Result<TemplateVersion, StoreError>> + Send;
    /// Changes a version nobody used yet; `Invalid` (field `version`) once one did.
    fn update_version(
        &self,
        tenant_id: &str,
        template_id: &str,
        version: i64,
        content: &VersionContent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn versions(
        &self,
        tenant_id: &str,
        template_id: &str,
    ) -> impl Future<Output = Result<Vec<TemplateVersion>, StoreError>> + Send;
    fn version(
        &self,
        tenant_id: &str,
        template_id: &str,
        version: i64,
    ) -> impl Future<Output = Result<Option<TemplateVersion>, StoreError>> + Send;
    /// Makes a version the active one. False when there is no such version.
    fn activate_version(
        &self,
        tenant_id: &str,
        template_id: &str,
        version: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Marks a version used by a message (from then on it cannot change).
    fn mark_version_used(
        &self,
        template_id: &str,
        version: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
