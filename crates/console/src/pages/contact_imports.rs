//! Contact imports in the console: upload a CSV (streamed to the data directory, then the
//! same job as the API's), watch its progress bar, download its error file.

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use store::{Existing, ImportJob};
use tokio::io::AsyncWriteExt;

use super::domains::PageQuery;
use super::{notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

fn job_view(job: &ImportJob) -> minijinja::Value {
    let percent = job.percent();
    minijinja::context! {
        id => job.id.clone(), name => job.name.clone(), state => job.state.as_str(),
        finished => matches!(job.state, store::ImportState::Done | store::ImportState::Failed),
        percent => percent, rows => job.records_done, added => job.added, updated => job.updated,
        unchanged => job.unchanged, refused => job.refused, suppressed => job.suppressed,
        failure => job.failure.clone(), encoding => job.encoding.clone(),
        created_ms => job.created_ms, finished_ms => job.finished_ms,
    }
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let (jobs, lists) = match tokio::try_join!(
        state.store().imports(&who.tenant.id),
        state.store().lists(&who.tenant.id),
    ) {
        Ok(found) => found,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let base = who.viewer.context("contact_imports", Some(&who.tenant));
    state.views.page(
        status,
        "contact_imports.html",
        minijinja::context! {
            jobs => jobs.iter().map(job_view).collect::<Vec<_>>(),
            lists => lists.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
            error => error, notice => notice_key,
            can_change => who.viewer.may(Power::Audience), ..base
        },
    )
}

/// `GET /contacts/imports`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    listing(
        &state,
        &who,
        StatusCode::OK,
        None,
        notice(query.notice.as_deref()),
    )
    .await
}

/// `POST /contacts/imports` (multipart: `_csrf`, `file`, `list`, `existing`); the file is
/// streamed to disk as it arrives.
pub async fn upload<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    mut multipart: Multipart,
) -> Response {
    let config = &state.contact_imports;
    let path = imports::stage::new_path(config);
    let mut csrf = String::new();
    let mut list = String::new();
    let mut existing = Existing::Update;
    let mut name = String::from("upload.csv");
    let mut size: u64 = 0;
    let mut failure: Option<String> = None;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        match field.name() {
            Some("_csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("list") => list = field.text().await.unwrap_or_default(),
            Some("existing") => {
                if field.text().await.unwrap_or_default() == "keep" {
                    existing = Existing::Keep;
                }
            }
            Some("file") => {
                // Nothing is written before the form's token is known to be right.
                if let Err(refused) = permitted(&state, &who.viewer, &csrf, Power::Audience) {
                    return refused;
                }
                name = field.file_name().unwrap_or("upload.csv").to_string();
                let _ = tokio::fs::create_dir_all(&config.dir).await;
                let mut file = match tokio::fs::File::create(&path).await {
                    Ok(file) => file,
                    Err(err) => {
                        failure = Some(err.to_string());
                        break;
                    }
                };
                while let Ok(Some(chunk)) = field.chunk().await {
                    size += chunk.len() as u64;
                    if let Err(err) = file.write_all(&chunk).await {
                        failure = Some(err.to_string());
                        break;
                    }
                }
                if let Err(err) = file.sync_all().await {
                    failure = Some(err.to_string());
                }
            }
            _ => {}
        }
    }
    if let Err(refused) = permitted(&state, &who.viewer, &csrf, Power::Audience) {
        let _ = tokio::fs::remove_file(&path).await;
        return refused;
    }
    let text = |key: &str| crate::i18n::text(who.viewer.lang, key).map(str::to_string);
    if size == 0 {
        let _ = tokio::fs::remove_file(&path).await;
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return listing(&state, &who, status, text("suppressions.no_file"), None).await;
    }
    if let Some(err) = failure {
        let _ = tokio::fs::remove_file(&path).await;
        tracing::error!(error = %err, "storing an import failed");
        return state
            .views
            .error(who.viewer.lang, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let request = imports::stage::ImportRequest {
        tenant_id: who.tenant.id.clone(),
        name,
        mapping: Vec::new(),
        existing,
        list: Some(list).filter(|l| !l.is_empty()),
    };
    match imports::stage::stage_file(state.store(), &path, &request).await {
        Ok(job) => {
            state.contact_imports_wake.notify_one();
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "contacts.import",
                &job.id,
            )
            .await;
            Redirect::to(&format!("/contacts/imports/{}", job.id)).into_response()
        }
        Err(err) => {
            let _ = tokio::fs::remove_file(&path).await;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            listing(&state, &who, status, Some(err.to_string()), None).await
        }
    }
}

/// `GET /contacts/imports/{id}`: progress (refreshed in place while it runs) and the
/// first refused rows.
pub async fn job<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
) -> Response {
    let store = state.store();
    let job = match store.import(&who.tenant.id, &id).await {
        Ok(Some(job)) => job,
        Ok(None) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let errors = match store.import_errors(&who.tenant.id, &id, 0, 20).await {
        Ok(errors) => errors,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let base = who.viewer.context("contact_imports", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "contact_import.html",
        minijinja::context! { job => job_view(&job), errors => errors, ..base },
    )
}

/// `GET /contacts/imports/{id}/errors.csv`
pub async fn errors<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
) -> Response {
    let store = state.store();
    match store.import(&who.tenant.id, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => return store_failed(&state, &who.viewer, err),
    }
    let out = match imports::error_file(store, &who.tenant.id, &id).await {
        Ok(out) => out,
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}-errors.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}
