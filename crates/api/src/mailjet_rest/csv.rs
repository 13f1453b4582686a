//! Mailjet's CSV import: the file is uploaded to `DATA/contactslist/{id}/CSVData/text:plain`
//! (kept in the imports directory, fsynced), then `csvimport` makes an import job of it
//! with the list (the native import engine: durable, resumable, progress and error file);
//! `csvimport/{id}` shows Mailjet's status and `DATA/BatchJob/{id}/CSVError/text:csv` the
//! refused lines. Columns map by header (`email`, declared properties; `name` is the
//! contact's Name). An import never re-subscribes someone who unsubscribed from the list,
//! whatever the method says: a file brings no new consent.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use imports::stage::{ImportRequest, new_path, stage_file};
use serde_json::{Value, json};
use store::{CompatKind, Existing, ImportJob, ImportState};

use super::lists::tenants_list;
use super::{MjError, MjKey, MjStore, body, created, data, integer, number, object, text};
use crate::ApiState;
use crate::auth::{Manage, Read};

/// `POST /v3/DATA/contactslist/{id}/CSVData/text:plain`, the CSV as the body → `{"ID"}`.
pub(crate) async fn upload<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, kind)): Path<(String, String)>,
    MjKey { key, .. }: MjKey<Manage>,
    body: Body,
) -> Result<Response, MjError> {
    if kind != "text:plain" {
        return Err(MjError::not_found());
    }
    let list = tenants_list(&state, &key.tenant_id, &id).await?;
    let config = &state.imports;
    tokio::fs::create_dir_all(&config.dir)
        .await
        .map_err(|e| crate::contacts::imports::stage_refused(e.into()))?;
    let path = new_path(config);
    if let Err(err) = crate::contacts::imports::write_body(body, &path, config.max_bytes).await {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(err.into());
    }
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let number = number(
        &state,
        &key.tenant_id,
        CompatKind::Upload,
        &format!("{}/{file}", list.id),
    )
    .await?;
    Ok(axum::Json(json!({ "ID": number })).into_response())
}

fn state_name(state: ImportState) -> &'static str {
    match state {
        ImportState::Queued => "Upload",
        ImportState::Running => "Processing",
        ImportState::Done => "Completed",
        ImportState::Failed => "Error",
    }
}

async fn job_json<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    job: &ImportJob,
    method: &str,
) -> Result<Value, MjError> {
    let list_id = job
        .list
        .as_ref()
        .map(|(id, _)| id.clone())
        .unwrap_or_default();
    let file = std::path::Path::new(&job.file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let list_number = number(state, tenant_id, CompatKind::List, &list_id).await?;
    let data_id = number(
        state,
        tenant_id,
        CompatKind::Upload,
        &format!("{list_id}/{file}"),
    )
    .await?;
    let id = number(state, tenant_id, CompatKind::Import, &job.id).await?;
    Ok(json!({
        "AliveAt": super::time(job.started_ms),
        "ContactsList": list_number,
        "Count": job.records_done,
        "Current": job.records_done,
        "DataID": data_id,
        "Errcount": job.refused,
        "ErrTreshold": 0,
        "ID": id,
        "ImportOptions": "",
        "JobEnd": super::time(job.finished_ms),
        "JobStart": super::time(job.started_ms),
        "Method": method,
        "RequestAt": super::time(Some(job.created_ms)),
        "Status": state_name(job.state),
    }))
}

/// Whether a stored file's header has a `name` column (Mailjet's contact Name).
fn has_name_column(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    text.lines().next().is_some_and(|line| {
        line.split([',', ';', '\t'])
            .any(|c| c.trim().trim_matches('"').eq_ignore_ascii_case("name"))
    })
}

/// `POST /v3/REST/csvimport`: `{"ContactsListID", "DataID", "Method": addnoforce |
/// addforce}`.
pub(crate) async fn start<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    MjKey { key, .. }: MjKey<Manage>,
    bytes: Bytes,
) -> Result<Response, MjError> {
    let map = body(&bytes)?;
    let data_id =
        integer(map.get("DataID")).ok_or_else(|| MjError::bad("\"DataID\" is required"))?;
    let upload = object(
        &state,
        &key.tenant_id,
        CompatKind::Upload,
        &data_id.to_string(),
    )
    .await?;
    let (list_id, file) = upload.split_once('/').ok_or_else(MjError::not_found)?;
    if let Some(list_number) = integer(map.get("ContactsListID")) {
        let list = tenants_list(&state, &key.tenant_id, &list_number.to_string()).await?;
        if list.id != list_id {
            return Err(MjError::bad(
                "\"ContactsListID\" the data was uploaded for another list",
            ));
        }
    }
    let method = text(&map, "Method")?
        .unwrap_or("addnoforce")
        .to_ascii_lowercase();
    if !matches!(method.as_str(), "addnoforce" | "addforce") {
        return Err(MjError::bad(
            "\"Method\" only addnoforce and addforce imports are kept by this server \
             (unsubscribe or remove with managemanycontacts)",
        ));
    }
    let path = state.imports.dir.join(file);
    if !path.exists() {
        return Err(MjError::not_found());
    }
    if has_name_column(&path) {
        super::contacts::declare_name(&state, &key.tenant_id).await?;
    }
    let request = ImportRequest {
        tenant_id: key.tenant_id.clone(),
        // The method rides in the job's name, for the status poll.
        name: format!("mailjet-{data_id}-{method}.csv"),
        mapping: Vec::new(),
        existing: Existing::Update,
        list: Some(list_id.to_string()),
    };
    let job = stage_file(&state.tenancy.store, &path, &request)
        .await
        .map_err(crate::contacts::imports::stage_refused)?;
    state.imports_wake.notify_one();
    Ok(created(
        job_json(&state, &key.tenant_id, &job, &method).await?,
    ))
}

async fn tenants_job<S: MjStore>(
    state: &ApiState<S>,
    tenant_id: &str,
    number: &str,
) -> Result<ImportJob, MjError> {
    let id = object(state, tenant_id, CompatKind::Import, number).await?;
    state
        .tenancy
        .store
        .import(tenant_id, &id)
        .await?
        .ok_or_else(MjError::not_found)
}

/// `GET /v3/REST/csvimport/{id}`
pub(crate) async fn status<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let job = tenants_job(&state, &key.tenant_id, &id).await?;
    let method = if job.name.ends_with("-addforce.csv") {
        "addforce"
    } else {
        "addnoforce"
    };
    Ok(data(
        vec![job_json(&state, &key.tenant_id, &job, method).await?],
        1,
    ))
}

/// `GET /v3/DATA/BatchJob/{id}/CSVError/text:csv`: the refused lines (`line,reason`).
pub(crate) async fn errors<S: MjStore>(
    State(state): State<Arc<ApiState<S>>>,
    Path((id, _kind)): Path<(String, String)>,
    MjKey { key, .. }: MjKey<Read>,
) -> Result<Response, MjError> {
    let job = tenants_job(&state, &key.tenant_id, &id).await?;
    let out = imports::error_file(&state.tenancy.store, &key.tenant_id, &job.id).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
}
