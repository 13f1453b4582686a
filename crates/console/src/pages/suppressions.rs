//! Suppressions: search by address prefix, add, remove, CSV export of the whole list, and
//! CSV import as a background job with progress ([`super::imports`]).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::Suppression;

use super::{done, notice, require, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

/// Rows on one page.
const PAGE_ROWS: u32 = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
    notice: Option<String>,
}

fn row(s: &Suppression) -> minijinja::Value {
    minijinja::context! { address => s.address.clone(), reason => s.reason.clone(), created_ms => s.created_ms }
}

/// A page of the list, or of the addresses starting with `prefix` (through the primary
/// key: `address > prefix`, then the exact address itself).
async fn search<S: Store>(
    store: &S,
    tenant: &str,
    prefix: &str,
    after: Option<&str>,
) -> Result<Vec<Suppression>, store::StoreError> {
    if prefix.is_empty() {
        return store.suppressions(tenant, after, PAGE_ROWS).await;
    }
    let mut found = Vec::new();
    if after.is_none()
        && let Some(exact) = store.suppression(tenant, prefix).await?
    {
        found.push(exact);
    }
    let start = after.unwrap_or(prefix);
    let page = store.suppressions(tenant, Some(start), PAGE_ROWS).await?;
    found.extend(
        page.into_iter()
            .take_while(|s| s.address.starts_with(prefix)),
    );
    found.truncate(PAGE_ROWS as usize);
    Ok(found)
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    query: &ListQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let prefix = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let rows = match search(
        state.store(),
        &who.tenant.id,
        &prefix,
        query.after.as_deref(),
    )
    .await
    {
        Ok(rows) => rows,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let next = (rows.len() as u32 >= PAGE_ROWS).then(|| rows.last().map(|s| s.address.clone()));
    let imports = state.imports.for_tenant(&who.tenant.id);
    let base = who.viewer.context("suppressions", Some(&who.tenant));
    state.views.page(
        status,
        "suppressions.html",
        minijinja::context! {
            rows => rows.iter().map(row).collect::<Vec<_>>(),
            q => prefix,
            next => next.flatten(),
            error => error,
            notice => notice(query.notice.as_deref()),
            imports => imports,
            can_change => who.viewer.may(Power::Audience),
            ..base
        },
    )
}

/// `GET /suppressions`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<ListQuery>,
) -> Response {
    listing(&state, &who, &query, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct AddressForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    address: String,
}

/// A plausible address, lower-cased: what the send path compares against.
pub fn normalise(address: &str) -> Option<String> {
    let lower = address.trim().to_lowercase();
    let (local, domain) = lower.rsplit_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && lower.len() <= 254
        && !lower
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>');
    ok.then_some(lower)
}

/// `POST /suppressions`
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddressForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Audience) {
        return refused;
    }
    let Some(address) = normalise(&form.address) else {
        let error =
            crate::i18n::text(who.viewer.lang, "suppressions.bad_address").map(str::to_string);
        return listing(
            &state,
            &who,
            &ListQuery::default(),
            StatusCode::UNPROCESSABLE_ENTITY,
            error,
        )
        .await;
    };
    match state
        .store()
        .add_suppressions(&who.tenant.id, &[(address.clone(), "manual".into())])
        .await
    {
        Ok(_) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "suppression.add",
                &address,
            )
            .await;
            done("/suppressions", "notice.suppression_added")
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

/// `POST /suppressions/remove`
pub async fn remove<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddressForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Audience) {
        return refused;
    }
    let address = form.address.trim().to_lowercase();
    match state
        .store()
        .remove_suppression(&who.tenant.id, &address)
        .await
    {
        Ok(true) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "suppression.remove",
                &address,
            )
            .await;
            done("/suppressions", "notice.suppression_removed")
        }
        Ok(false) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

/// A CSV field, quoted when it needs to be (RFC 4180), and never read as a formula by a
/// spreadsheet (a leading `=`, `+`, `-`, `@` gets a `'`).
pub fn csv_field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// `GET /suppressions.csv`: the whole list, `address,reason,created_at`.
pub async fn export<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
) -> Response {
    let mut out = String::from("address,reason,created_at\r\n");
    let mut after: Option<String> = None;
    loop {
        let page = match state
            .store()
            .suppressions(&who.tenant.id, after.as_deref(), 1000)
            .await
        {
            Ok(page) => page,
            Err(err) => return store_failed(&state, &who.viewer, err),
        };
        for s in &page {
            out.push_str(&csv_field(&s.address));
            out.push(',');
            out.push_str(&csv_field(&s.reason));
            out.push(',');
            out.push_str(&crate::render::utc_text(s.created_ms));
            out.push_str("\r\n");
        }
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|s| s.address.clone());
    }
    audit(
        &state,
        &who.viewer,
        Some(&who.tenant.id),
        "suppression.export",
        "",
    )
    .await;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"suppressions.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

/// `POST /suppressions/import` (multipart: `_csrf`, `file`): starts a job and goes to it.
pub async fn import<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    mut multipart: Multipart,
) -> Response {
    let mut csrf = String::new();
    let mut file: Option<Vec<u8>> = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name() {
            Some("_csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => file = field.bytes().await.ok().map(|b| b.to_vec()),
            _ => {}
        }
    }
    if let Err(refused) = who.viewer.check_csrf(&csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Audience) {
        return refused;
    }
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        let error = crate::i18n::text(who.viewer.lang, "suppressions.no_file").map(str::to_string);
        return listing(
            &state,
            &who,
            &ListQuery::default(),
            StatusCode::UNPROCESSABLE_ENTITY,
            error,
        )
        .await;
    };
    let id = super::imports::start(&state, &who.tenant.id, file);
    audit(
        &state,
        &who.viewer,
        Some(&who.tenant.id),
        "suppression.import",
        &id,
    )
    .await;
    axum::response::Redirect::to(&format!("/suppressions/imports/{id}")).into_response()
}
