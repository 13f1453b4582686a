//! Webhooks: add an endpoint (URL checked like the API does; its secret shown once), and
//! per endpoint its state, the delivery log, a test batch on demand, secret rotation (the
//! old secret keeps signing for 24 h) and removal.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use store::{EventKind, Webhook};

use super::domains::{CsrfOnly, PageQuery};
use super::{done, notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

/// How long a rotated secret keeps signing beside the new one (as the API does).
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;
/// Delivery attempts shown on an endpoint's page.
const LOG_ROWS: u32 = 50;

fn hook_value(hook: &Webhook) -> minijinja::Value {
    let kinds: Vec<&str> = hook.kinds.iter().map(|k| k.as_str()).collect();
    minijinja::context! {
        id => hook.id.clone(),
        url => hook.url.clone(),
        kinds => kinds,
        created_ms => hook.created_ms,
        failing_since_ms => hook.failing_since_ms,
        previous_until_ms => hook.previous_secret.as_ref().map(|(_, until)| *until),
    }
}

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    created: Option<(String, String)>,
    error: Option<String>,
    notice_key: Option<&str>,
    typed: &str,
) -> Response {
    let hooks = match state.store().webhooks(&who.tenant.id).await {
        Ok(hooks) => hooks,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let list: Vec<minijinja::Value> = hooks.iter().map(hook_value).collect();
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let base = who.viewer.context("webhooks", Some(&who.tenant));
    state.views.page(
        status,
        "webhooks.html",
        minijinja::context! {
            hooks => list,
            kinds => kinds,
            created => created.map(|(id, secret)| minijinja::context! { id => id, secret => secret }),
            error => error,
            notice => notice_key,
            typed => typed,
            can_change => who.viewer.may(Power::Integrate),
            ..base
        },
    )
}

/// `GET /webhooks`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    let notice_key = notice(query.notice.as_deref());
    listing(&state, &who, StatusCode::OK, None, None, notice_key, "").await
}

/// `POST /webhooks`: `url`, `_csrf` and one `kind` per event type chosen (none: all).
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    if let Err(refused) = permitted(&state, &who.viewer, field("_csrf"), Power::Integrate) {
        return refused;
    }
    let url = field("url").trim().to_string();
    let kinds: Vec<EventKind> = fields
        .iter()
        .filter(|(k, _)| k == "kind")
        .filter_map(|(_, v)| EventKind::parse(v))
        .collect();
    if let Err(why) = state.webhooks.guard.check(&url).await {
        let error = format!(
            "{}: {why}",
            crate::i18n::text(who.viewer.lang, "webhooks.bad_url").unwrap_or("URL")
        );
        return listing(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
            None,
            &url,
        )
        .await;
    }
    match state
        .store()
        .add_webhook(&who.tenant.id, &url, &kinds)
        .await
    {
        Ok(hook) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "webhook.add",
                &hook.id,
            )
            .await;
            let created = Some((hook.id, hook.secret));
            listing(&state, &who, StatusCode::CREATED, created, None, None, "").await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

/// The viewer's tenant's endpoint `id`, or the page to answer with (404 for anyone else's).
async fn tenants_hook<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    id: &str,
) -> Result<Webhook, Response> {
    match state.store().webhooks(&who.tenant.id).await {
        Ok(hooks) => hooks
            .into_iter()
            .find(|h| h.id == id)
            .ok_or_else(|| state.views.error(who.viewer.lang, StatusCode::NOT_FOUND)),
        Err(err) => Err(store_failed(state, &who.viewer, err)),
    }
}

async fn detail_page<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    id: &str,
    secret: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let hook = match tenants_hook(state, who, id).await {
        Ok(hook) => hook,
        Err(refused) => return refused,
    };
    let log = match state
        .store()
        .webhook_deliveries(&who.tenant.id, id, LOG_ROWS)
        .await
    {
        Ok(log) => log.unwrap_or_default(),
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let rows: Vec<minijinja::Value> = log
        .iter()
        .map(|d| {
            minijinja::context! {
                time_ms => d.time_ms, events => d.events, first_event => d.first_event,
                last_event => d.last_event, status => d.status, error => d.error.clone(),
                duration_ms => d.duration_ms,
                ok => d.status.is_some_and(|s| (200..300).contains(&s)),
                test => d.first_event == 0 && d.last_event == 0,
            }
        })
        .collect();
    let base = who.viewer.context("webhooks", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "webhook.html",
        minijinja::context! {
            hook => hook_value(&hook),
            log => rows,
            secret => secret,
            notice => notice_key,
            can_change => who.viewer.may(Power::Integrate),
            ..base
        },
    )
}

/// `GET /webhooks/{id}`: the endpoint and its delivery log (refreshed in place).
pub async fn detail<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    detail_page(&state, &who, &id, None, notice(query.notice.as_deref())).await
}

/// `POST /webhooks/{id}/test`: posts a test batch now; its attempt heads the log.
pub async fn test<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Integrate) {
        return refused;
    }
    let hook = match tenants_hook(&state, &who, &id).await {
        Ok(hook) => hook,
        Err(refused) => return refused,
    };
    events::webhooks::send_test(state.store(), &state.webhooks, &hook).await;
    audit(
        &state,
        &who.viewer,
        Some(&who.tenant.id),
        "webhook.test",
        &id,
    )
    .await;
    done(&format!("/webhooks/{id}"), "notice.webhook_tested")
}

/// `POST /webhooks/{id}/rotate`: the answer shows the new secret, once.
pub async fn rotate<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Integrate) {
        return refused;
    }
    match state
        .store()
        .rotate_webhook_secret(&who.tenant.id, &id, ROTATION_OVERLAP_MS)
        .await
    {
        Ok(Some(hook)) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "webhook.rotate",
                &id,
            )
            .await;
            detail_page(&state, &who, &id, Some(hook.secret), None).await
        }
        Ok(None) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

/// `POST /webhooks/{id}/remove`
pub async fn remove<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Integrate) {
        return refused;
    }
    match state.store().remove_webhook(&who.tenant.id, &id).await {
        Ok(true) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "webhook.remove",
                &id,
            )
            .await;
            done("/webhooks", "notice.webhook_removed")
        }
        Ok(false) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
