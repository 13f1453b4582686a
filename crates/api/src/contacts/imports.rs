//! Contact imports over HTTP: `POST /v1/imports` takes a CSV file as the request body
//! (streamed to disk, fsynced) and answers 202 with the queued job; `GET /v1/imports`,
//! `GET /v1/imports/{id}` show progress; `GET /v1/imports/{id}/errors` is the error file
//! (CSV: line, reason). Options ride in the query: `name`, `existing` (update | keep),
//! `list` (id or name), and `map.<column>=<target>` per column to map by hand.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use imports::stage::{ImportRequest, StageError, new_path, stage_file};
use serde_json::{Value, json};
use store::{Existing, ImportJob};
use tokio::io::AsyncWriteExt;

use super::Store;
use crate::ApiState;
use crate::auth::{Authorized, Manage, Read};
use crate::error::ApiError;
use crate::manage::not_found;
use crate::records::invalid;

pub(crate) fn job_json(job: &ImportJob) -> Value {
    let percent = job.percent();
    json!({
        "id": job.id, "name": job.name, "state": job.state.as_str(), "encoding": job.encoding,
        "existing": match job.existing { Existing::Keep => "keep", Existing::Update => "update" },
        "list_id": job.list.as_ref().map(|(id, _)| id.clone()),
        "total_bytes": job.total_bytes, "done_bytes": job.done_bytes, "percent": percent,
        "rows": job.records_done, "added": job.added, "updated": job.updated,
        "unchanged": job.unchanged, "refused": job.refused, "suppressed": job.suppressed,
        "failure": job.failure, "created_ms": job.created_ms, "started_ms": job.started_ms,
        "finished_ms": job.finished_ms,
    })
}

fn request(tenant_id: &str, query: &HashMap<String, String>) -> Result<ImportRequest, ApiError> {
    if let Some(unknown) = query
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "existing" | "list") && !k.starts_with("map."))
    {
        return Err(invalid(unknown, "is not a known parameter"));
    }
    let existing = match query.get("existing").map(String::as_str) {
        None | Some("update") => Existing::Update,
        Some("keep") => Existing::Keep,
        Some(_) => return Err(invalid("existing", "must be update or keep")),
    };
    let mut mapping: Vec<(String, String)> = query
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("map.")?.to_string(), v.clone())))
        .collect();
    mapping.sort();
    Ok(ImportRequest {
        tenant_id: tenant_id.to_string(),
        name: query
            .get("name")
            .cloned()
            .unwrap_or_else(|| "upload.csv".into()),
        mapping,
        existing,
        list: query.get("list").cloned(),
    })
}

pub(crate) fn stage_refused(err: StageError) -> ApiError {
    match err {
        StageError::Store(err) => err.into(),
        StageError::Io(err) => {
            tracing::error!(error = %err, "storing an import failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the file could not be stored",
            )
        }
        StageError::NoList(_) => invalid("list", err.to_string()),
        StageError::Mapping(_) => invalid("map", err.to_string()),
        other => invalid("file", other.to_string()),
    }
}

/// `POST /v1/imports?name=&existing=&list=&map.<column>=<target>`, the CSV as the body.
pub(crate) async fn upload<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { key, .. }: Authorized<Manage>,
    body: Body,
) -> Result<Response, ApiError> {
    let request = request(&key.tenant_id, &query)?;
    let config = &state.imports;
    tokio::fs::create_dir_all(&config.dir)
        .await
        .map_err(|e| stage_refused(e.into()))?;
    let path = new_path(config);
    let written = write_body(body, &path, config.max_bytes).await;
    if let Err(err) = written {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(err);
    }
    match stage_file(&state.tenancy.store, &path, &request).await {
        Ok(job) => {
            state.imports_wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(job_json(&job))).into_response())
        }
        Err(err) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(stage_refused(err))
        }
    }
}

/// Streams a request body into `path` (fsynced), refusing more than `max` bytes.
pub(crate) async fn write_body(
    body: Body,
    path: &std::path::Path,
    max: u64,
) -> Result<(), ApiError> {
    use http_body_util::BodyExt;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| stage_refused(e.into()))?;
    let mut body = body;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| invalid("file", format!("the upload broke off: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("an import file is at most {max} bytes"),
                ));
            }
            file.write_all(&data)
                .await
                .map_err(|e| stage_refused(e.into()))?;
        }
    }
    file.sync_all().await.map_err(|e| stage_refused(e.into()))?;
    if total == 0 {
        return Err(invalid(
            "file",
            "the body is empty: send the CSV file as the body",
        ));
    }
    Ok(())
}

/// `GET /v1/imports`: the newest 100 jobs.
pub(crate) async fn all<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let jobs = state.tenancy.store.imports(&key.tenant_id).await?;
    let list: Vec<Value> = jobs.iter().map(job_json).collect();
    Ok(Json(json!({ "imports": list })).into_response())
}

/// `GET /v1/imports/{id}`
pub(crate) async fn get<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let job = state
        .tenancy
        .store
        .import(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(job_json(&job)).into_response())
}

/// `GET /v1/imports/{id}/errors`: `line,reason` for every refused row, as CSV.
pub(crate) async fn errors<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Path(id): Path<String>,
    Authorized { key, .. }: Authorized<Read>,
) -> Result<Response, ApiError> {
    let store = &state.tenancy.store;
    let job = store
        .import(&key.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    let out = imports::error_file(store, &key.tenant_id, &job.id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-errors.csv\"", job.id),
            ),
        ],
        out,
    )
        .into_response())
}
