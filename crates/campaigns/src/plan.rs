//! A campaign's audience document resolved against the tenant's records: lists and saved
//! segments named by id or name, each segment parsed and checked against the tenant's
//! declarations as it stands when the send starts.

use store::{AudiencePlan, AudienceStore, Condition};

use crate::documents::{Audience, DocumentError};
use crate::expand::SendError;

fn missing(field: String, what: &str, name: &str) -> SendError {
    SendError::Document(DocumentError {
        field,
        message: format!("the tenant has no {what} {name:?}"),
    })
}

/// The plan for `audience`, or an error naming the entry at fault
/// (`audience.exclude_segments[1]`).
pub async fn resolve<S: AudienceStore>(
    store: &S,
    tenant_id: &str,
    audience: &Audience,
) -> Result<AudiencePlan, SendError> {
    let (lists, segments, properties) = tokio::try_join!(
        store.lists(tenant_id),
        store.segments(tenant_id),
        store.properties(tenant_id)
    )?;
    let list_ids = |names: &[String], field: &str| -> Result<Vec<String>, SendError> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                lists
                    .iter()
                    .find(|l| &l.id == name || &l.name == name)
                    .map(|l| l.id.clone())
                    .ok_or_else(|| missing(format!("audience.{field}[{i}]"), "list", name))
            })
            .collect()
    };
    let conditions = |names: &[String], field: &str| -> Result<Vec<Condition>, SendError> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let at = format!("audience.{field}[{i}]");
                let saved = segments
                    .iter()
                    .find(|s| &s.id == name || &s.name == name)
                    .ok_or_else(|| missing(at.clone(), "segment", name))?;
                audience::parse_segment(&saved.query, &properties, &lists).map_err(|err| {
                    SendError::Document(DocumentError {
                        field: at,
                        message: format!("segment {:?} no longer checks: {err}", saved.name),
                    })
                })
            })
            .collect()
    };
    let plan = AudiencePlan {
        lists: list_ids(&audience.lists, "lists")?,
        segments: conditions(&audience.segments, "segments")?,
        exclude_lists: list_ids(&audience.exclude_lists, "exclude_lists")?,
        exclude_segments: conditions(&audience.exclude_segments, "exclude_segments")?,
        filter_segments: conditions(&audience.filter_segments, "filter_segments")?,

        ..Default::default()
    };
    if plan.lists.is_empty() && plan.segments.is_empty() {
        return Err(SendError::Document(DocumentError {
            field: "audience".into(),
            message: "names no list and no segment".into(),
        }));
    }
    Ok(plan)
}
