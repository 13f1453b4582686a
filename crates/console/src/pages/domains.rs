//! Sending domains: add one (its DKIM key made here), the DNS records to publish with copy
//! buttons, and whether they are published yet (checked live), remove one.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{SendingDomain, StoreError};

use super::{done, notice, require, store_failed};
use crate::auth::{Power, TenantViewer, audit};
use crate::{ConsoleState, Store};

#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub notice: Option<String>,
}

fn records(domain: &SendingDomain, mail_host: &str) -> Vec<minijinja::Value> {
    tenancy::domain_records(domain, mail_host)
        .into_iter()
        .map(|r| {
            minijinja::context! { name => r.name, kind => r.kind, value => r.value, purpose => r.purpose }
        })
        .collect()
}

fn listing<S: Store>(
    state: &ConsoleState<S>,
    who: &TenantViewer,
    domains: &[SendingDomain],
    status: StatusCode,
    error: Option<String>,
    notice_key: Option<&str>,
    typed: &str,
) -> Response {
    let list: Vec<minijinja::Value> = domains
        .iter()
        .map(|d| {
            minijinja::context! { domain => d.domain.clone(), selector => d.selector.clone(), algorithm => d.algorithm.clone(), created_ms => d.created_ms }
        })
        .collect();
    let base = who.viewer.context("domains", Some(&who.tenant));
    state.views.page(
        status,
        "domains.html",
        minijinja::context! {  domains => list, error => error, notice => notice_key, typed => typed, can_change => who.viewer.may(Power::Integrate), ..base },
    )
}

/// `GET /domains`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Query(query): Query<PageQuery>,
) -> Response {
    match state.store().domains(&who.tenant.id).await {
        Ok(domains) => listing(
            &state,
            &who,
            &domains,
            StatusCode::OK,
            None,
            notice(query.notice.as_deref()),
            "",
        ),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    domain: String,
    #[serde(default)]
    algorithm: String,
}

/// `POST /domains`
pub async fn add<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Form(form): Form<AddForm>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Integrate) {
        return refused;
    }
    let algorithm = match form.algorithm.as_str() {
        "ed25519" => dkim::Algorithm::Ed25519,
        _ => dkim::Algorithm::Rsa2048,
    };
    let tenant_id = who.tenant.id.clone();
    let name = form.domain.trim().to_string();
    let made =
        tokio::task::spawn_blocking(move || tenancy::new_domain(&tenant_id, name, algorithm, None))
            .await;
    let refusal = match made {
        Ok(Ok(new)) => match state.store().add_domain(new).await {
            Ok(added) => {
                audit(
                    &state,
                    &who.viewer,
                    Some(&who.tenant.id),
                    "domain.add",
                    &added.domain,
                )
                .await;
                return done(&format!("/domains/{}", added.domain), "notice.domain_added");
            }
            Err(
                err @ (StoreError::Invalid { .. }
                | StoreError::DomainTaken(_)
                | StoreError::DuplicateDomain(_)),
            ) => err.to_string(),
            Err(err) => return store_failed(&state, &who.viewer, err),
        },
        Ok(Err(err)) => err.to_string(),
        Err(err) => err.to_string(),
    };
    let domains = state
        .store()
        .domains(&who.tenant.id)
        .await
        .unwrap_or_default();
    listing(
        &state,
        &who,
        &domains,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(refusal),
        None,
        &form.domain,
    )
}

/// `GET /domains/{domain}`: the records to publish and their live check.
pub async fn detail<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(domain): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let found = match state.store().sending_domain(&who.tenant.id, &domain).await {
        Ok(Some(found)) => found,
        Ok(None) => return state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => return store_failed(&state, &who.viewer, err),
    };
    let records = records(&found, &state.config.mail_host);
    let checks = crate::pages::dns_check::check_all(&state.config, &records).await;
    let base = who.viewer.context("domains", Some(&who.tenant));
    state.views.page(
        StatusCode::OK,
        "domain.html",
        minijinja::context! {
            domain => found.domain.clone(),
            selector => found.selector.clone(),
            algorithm => found.algorithm.clone(),
            records => records,
            checks => checks,
            notice => notice(query.notice.as_deref()),
            can_change => who.viewer.may(Power::Integrate),
            ..base
        },
    )
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    pub csrf: String,
}

/// `POST /domains/{domain}/remove`
pub async fn remove<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: TenantViewer,
    Path(domain): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = who.viewer.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(refused) = require(&state, &who.viewer, Power::Integrate) {
        return refused;
    }
    match state.store().remove_domain(&who.tenant.id, &domain).await {
        Ok(true) => {
            audit(
                &state,
                &who.viewer,
                Some(&who.tenant.id),
                "domain.remove",
                &domain,
            )
            .await;
            done("/domains", "notice.domain_removed")
        }
        Ok(false) => state.views.error(who.viewer.lang, StatusCode::NOT_FOUND),
        Err(err) => store_failed(&state, &who.viewer, err),
    }
}
