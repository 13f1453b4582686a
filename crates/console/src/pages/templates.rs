//! Stored templates in the console: the list, and an editor per template with a live
//! preview of the subject, the text and the HTML as a message would carry them, rendered
//! with the version's test data in the template's own dialect (the code the send APIs use).
//! The HTML is shown in a frame whose answer forbids scripts and remote content, so a
//! tenant's HTML cannot act on the console. Saving adds a version, or changes the shown one
//! while no message has used it; one version is active.

use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Dialect, StoredTemplate, TemplateVersion, VersionContent};
use templates::Rendered;

use super::{done, notice, permitted, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

/// The policy of the preview frame: the tenant's HTML with its inline styles, inline
/// images only, no scripts (a sandbox with no permissions), framed by the console only.
const PREVIEW_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox";

#[derive(Deserialize, Default)]
pub struct EditorQuery {
    version: Option<i64>,
    notice: Option<String>,
}

/// What the editor shows: a version's fields as typed.
#[derive(Deserialize, Default, Clone)]
pub struct Draft {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    html: String,
    #[serde(default)]
    test_data: String,
    /// `new` (add a version) or `update` (change `version`).
    #[serde(default)]
    action: String,
    #[serde(default)]
    version: Option<i64>,
}

impl Draft {
    fn from_version(v: &TemplateVersion) -> Draft {
        Draft {
            subject: v.content.subject.clone(),
            text: v.content.text.clone().unwrap_or_default(),
            html: v.content.html.clone().unwrap_or_default(),
            test_data: pretty(&v.content.test_data),
            version: Some(v.version),
            ..Draft::default()
        }
    }

    /// The draft as a version's content, checked: its test data is a JSON object and every
    /// part renders with it. Errors name the field.
    fn content(&self, dialect: Dialect) -> Result<(VersionContent, Rendered), String> {
        let data: Value = match self.test_data.trim() {
            "" => json!({}),
            text => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err("test data: must be a JSON object".into()),
            },
        };
        let content = VersionContent {
            subject: self.subject.trim().to_string(),
            html: Some(self.html.clone()).filter(|h| !h.trim().is_empty()),
            text: Some(self.text.clone()).filter(|t| !t.trim().is_empty()),
            test_data: data.to_string(),
        };
        if content.subject.is_empty() {
            return Err("subject: is required".into());
        }
        if content.html.is_none() && content.text.is_none() {
            return Err("text: a version needs text or HTML".into());
        }
        let rendered = render(dialect, &content, &data)?;
        Ok((content, rendered))
    }
}

fn render(dialect: Dialect, content: &VersionContent, data: &Value) -> Result<Rendered, String> {
    templates::render_parts(
        dialect,
        &content.subject,
        content.html.as_deref(),
        content.text.as_deref(),
        data,
    )
    .map_err(|e| format!("{}: {}", e.part, e.message))
}

fn pretty(json_text: &str) -> String {
    serde_json::from_str::<Value>(json_text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| json_text.to_string())
}

async fn tenants_template<S: Store>(
    state: &ConsoleState<S>,
    tenant: &str,
    id: &str,
) -> Result<Option<StoredTemplate>, store::StoreError> {
    Ok(state
        .store()
        .template(tenant, id)
        .await?
        .filter(|t| t.id == id))
}

/// The viewer's tenant's template, or the page to answer instead (404 for another
/// tenant's, like an unknown one).
async fn found<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    id: &str,
) -> Result<StoredTemplate, Response> {
    match tenants_template(state, &who.tenant.id, id).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(state.views.error(who.viewer.lang, StatusCode::NOT_FOUND)),
        Err(err) => Err(store_failed(state, &who.viewer, err)),
    }
}

fn template_view(t: &StoredTemplate) -> minijinja::Value {
    minijinja::context! {
        id => t.id.clone(), name => t.name.clone(), dialect => t.dialect.as_str(),
        active_version => t.active_version, created_ms => t.created_ms,
    }
}

/// `GET /templates`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<EditorQuery>,
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

async fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let templates = match state.store().templates(&who.tenant.id).await {
        Ok(found) => found,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let base = who.viewer.context("templates", Some(&who.tenant));
    state.views.page(
        status,
        "templates.html",
        minijinja::context! {
            templates => templates.iter().map(template_view).collect::<Vec<_>>(),
            error => error, notice => notice_key,
            can_change => who.viewer.may(Power::Audience), ..base
        },
    )
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    name: String,
    dialect: String,
}

/// `POST /templates`: a new template, then its editor.
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Audience) {
        return refused;
    }
    let Some(dialect) = Dialect::parse(&form.dialect) else {
        return state.views.error(who.viewer.lang, StatusCode::BAD_REQUEST);
    };
    let tenant = &who.tenant.id;
    match state
        .store()
        .add_template(tenant, &form.name, dialect)
        .await
    {
        Ok(made) => {
            audit(&state, &who.viewer, Some(tenant), "template.add", &made.id).await;
            done(&format!("/templates/{}", made.id), "notice.template_added")
        }
        Err(err @ store::StoreError::Invalid { .. }) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            listing(&state, &who, status, Some(err.to_string()), None).await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

async fn editor<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    template: &StoredTemplate,
    draft: Draft,
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
) -> Response {
    let tenant = &who.tenant.id;
    let ids = [template.id.clone()];
    let (versions, numbers) = match tokio::try_join!(
        state.store().versions(tenant, &template.id),
        state
            .store()
            .numbers(tenant, store::CompatKind::Template, &ids),
    ) {
        Ok(found) => found,
        Err(err) => return store_failed(state, &who.viewer, err),
    };
    let shown = draft
        .version
        .and_then(|n| versions.iter().find(|v| v.version == n));
    let preview = match draft.content(template.dialect) {
        Ok((_, rendered)) => rendered,
        Err(_) => Rendered::default(),
    };
    let rows: Vec<minijinja::Value> = versions
        .iter()
        .rev()
        .map(|v| {
            minijinja::context! {
                version => v.version, subject => v.content.subject.clone(),
                created_ms => v.created_ms, used_ms => v.used_ms,
                active => template.active_version == Some(v.version),
                shown => Some(v.version) == draft.version,
            }
        })
        .collect();
    let base = who.viewer.context("templates", Some(&who.tenant));
    state.views.page(
        status,
        "template.html",
        minijinja::context! {
            template => template_view(template), versions => rows,
            mailjet_id => numbers.first().copied(),
            sendgrid_id => store::compat::sendgrid_id(&template.id),
            subject => draft.subject, text => draft.text, html => draft.html,
            test_data => draft.test_data, version => draft.version,
            editable => shown.is_some_and(|v| v.used_ms.is_none()),
            preview_subject => preview.subject, preview_text => preview.text,
            error => error, notice => notice_key,
            can_change => who.viewer.may(Power::Audience), ..base
        },
    )
}

/// `GET /templates/{id}?version=`: the editor on a version (the active one by default).
pub async fn detail<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Query(query): Query<EditorQuery>,
) -> Response {
    let tenant = &who.tenant.id;
    let template = match found(&state, &who, &id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let wanted = query.version.or(template.active_version);
    let draft = match wanted {
        None => Draft {
            test_data: "{}".into(),
            ..Draft::default()
        },
        Some(n) => match state.store().version(tenant, &template.id, n).await {
            Ok(Some(v)) => Draft::from_version(&v),
            Ok(None) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
            Err(err) => return store_failed(&state, &who.viewer, err),
        },
    };
    let notice_key = notice(query.notice.as_deref());
    editor(
        &state,
        &who,
        &template,
        draft,
        StatusCode::OK,
        None,
        notice_key,
    )
    .await
}

/// `POST /templates/{id}/versions`: saves the draft as a new version (`action=new`) or into
/// the shown one while unused (`action=update`).
pub async fn save<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(draft): Form<Draft>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &draft.csrf, Power::Audience) {
        return refused;
    }
    let tenant = &who.tenant.id;
    let template = match found(&state, &who, &id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let content = match draft.content(template.dialect) {
        Ok((content, _)) => content,
        Err(error) => {
            return editor(
                &state,
                &who,
                &template,
                draft,
                unprocessable,
                Some(error),
                None,
            )
            .await;
        }
    };
    let store = state.store();
    let saved = match (draft.action.as_str(), draft.version) {
        ("update", Some(n)) => store
            .update_version(tenant, &template.id, n, &content)
            .await
            .map(|found| found.then_some(n)),
        _ => store
            .add_version(tenant, &template.id, &content, false)
            .await
            .map(|v| Some(v.version)),
    };
    match saved {
        Ok(Some(n)) => {
            audit(
                &state,
                &who.viewer,
                Some(tenant),
                "template.save",
                &format!("{} v{n}", template.id),
            )
            .await;
            done(
                &format!("/templates/{}?version={n}", template.id),
                "notice.template_saved",
            )
        }
        Ok(None) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err @ store::StoreError::Invalid { .. }) => {
            editor(
                &state,
                &who,
                &template,
                draft,
                unprocessable,
                Some(err.to_string()),
                None,
            )
            .await
        }
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// `POST /templates/{id}/versions/{n}/activate`
pub async fn activate<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path((id, version)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = permitted(&state, &who.viewer, &form.csrf, Power::Audience) {
        return refused;
    }
    let tenant = &who.tenant.id;
    let template = match found(&state, &who, &id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    match state
        .store()
        .activate_version(tenant, &template.id, version)
        .await
    {
        Ok(true) => {
            audit(
                &state,
                &who.viewer,
                Some(tenant),
                "template.activate",
                &format!("{} v{version}", template.id),
            )
            .await;
            done(
                &format!("/templates/{}?version={version}", template.id),
                "notice.template_activated",
            )
        }
        Ok(false) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

/// `POST /templates/{id}/preview`: the draft's subject and text, or the error naming the
/// field, for the editor's script.
pub async fn preview<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(draft): Form<Draft>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&draft.csrf) {
        return refused;
    }
    let template = match found(&state, &who, &id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    match draft.content(template.dialect) {
        Ok((_, rendered)) => Json(json!({
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html.is_some(),
        }))
        .into_response(),
        Err(error) => Json(json!({ "error": error })).into_response(),
    }
}

/// The HTML part as the preview frame shows it, under [`PREVIEW_POLICY`].
fn frame(html: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PREVIEW_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

fn frame_text(rendered: Result<Rendered, String>) -> Response {
    match rendered {
        Ok(Rendered {
            html: Some(html), ..
        }) => frame(html),
        // No HTML part (or an error): a plain page saying so, escaped.
        Ok(_) => frame(String::from("<!doctype html><title>-</title><p>—</p>")),
        Err(error) => frame(format!(
            "<!doctype html><title>error</title><pre>{}</pre>",
            error
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        )),
    }
}

/// `POST /templates/{id}/preview.html`: the draft's HTML part, for the preview frame.
pub async fn preview_html<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Form(draft): Form<Draft>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&draft.csrf) {
        return refused;
    }
    let template = match found(&state, &who, &id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    frame_text(draft.content(template.dialect).map(|(_, r)| r))
}

/// `GET /templates/{id}/preview.html?version=`: a stored version's HTML with its test data.
pub async fn version_html<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(id): Path<String>,
    Query(query): Query<EditorQuery>,
) -> Response {
    let tenant = &who.tenant.id;
    let template = match found(&state, &who, &id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let Some(n) = query.version.or(template.active_version) else {
        return frame_text(Ok(Rendered::default()));
    };
    match state.store().version(tenant, &template.id, n).await {
        Ok(Some(v)) => frame_text(
            Draft::from_version(&v)
                .content(template.dialect)
                .map(|(_, r)| r),
        ),
        Ok(None) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
