//! The web console of `tsubame serve`: server-rendered pages for a tenant's people
//! (dashboard, activity, sending domains, API keys, suppressions, webhooks, contacts,
//! segments, templates, campaigns, account, audit log) and for the platform's operators
//! (overview, queues, message lookup, tenants, shaping), on the same HTTP listener as the
//! API.
//!
//! Pages are HTML rendered by minijinja from templates embedded in the binary, with one
//! hand-written stylesheet and one small script (progressive enhancement: copy buttons,
//! local times, in-place refresh, progress); every form works without JavaScript. Charts
//! are SVG drawn on the server.
//!
//! # Layout
//! - [`auth`]: passwords (argon2), sessions (server-side, cookie holds a random id), CSRF,
//!   sign-in throttle, TOTP second factor, the signed-in [`auth::Viewer`] extractors.
//! - [`render`]: the template environment, the message catalogues ([`i18n`]), security
//!   headers, HTML errors.
//! - [`pages`]: the tenant's pages; [`ops`]: the operators'.

pub mod assets;
pub mod auth;
pub mod i18n;
pub mod ops;
pub mod pages;
pub mod render;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use store::{
    AudienceStore, CampaignStore, CompatStore, ConsoleStore, ControlStore, EventStore, ImportStore,
    TemplateStore,
};
use tenancy::Tenancy;

/// Settings validated by the binary.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Mark cookies `Secure` (served over HTTPS, directly or behind a TLS proxy).
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute: Duration,
    pub throttle: auth::throttle::ThrottleLimits,
    /// The mail host named in sending domains' DNS records.
    pub mail_host: String,
    /// Where the live checks of sending domains' records ask.
    pub dns: delivery::route::dns::DnsConfig,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            secure_cookies: false,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            throttle: auth::throttle::ThrottleLimits::default(),
            mail_host: "localhost".into(),
            dns: delivery::route::dns::DnsConfig::default(),
        }
    }
}

/// What the handlers share.
pub struct ConsoleState<S> {
    pub tenancy: Arc<Tenancy<S>>,
    pub delivery: Option<delivery::Engine>,
    pub spool: spool::Spool,
    pub events: events::EventSink,
    /// Which webhook URLs may be added (its guard) and how test batches are posted.
    pub webhooks: events::webhooks::WebhookConfig,
    pub config: ConsoleConfig,
    pub views: render::Views,
    pub throttle: auth::throttle::LoginThrottle,
    /// Second-factor time steps already used, per login (a code works once).
    pub totp_used: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    pub imports: pages::imports::Imports,
    /// Live platform rates for the operators; the binary feeds deliveries in.
    pub rates: Arc<ops::rates::Rates>,
    /// Where contact imports are kept, and the runner to wake when one is added.
    pub contact_imports: imports::ImportsConfig,
    pub contact_imports_wake: Arc<tokio::sync::Notify>,
    /// The API's campaign calls, handed over by the binary once the API is built.
    pub campaigns: std::sync::OnceLock<Arc<dyn campaigns::desk::CampaignDesk>>,
    /// Alerts, objectives, on-call, reports and forecasts, handed over by the binary.
    pub operations: std::sync::OnceLock<Arc<::ops::runner::Ops>>,
    /// Cluster mode's membership; unset on a single node.
    pub cluster: std::sync::OnceLock<Arc<cluster::node::ClusterNode>>,
}

impl<S> ConsoleState<S> {
    pub fn store(&self) -> &S {
        &self.tenancy.store
    }
}

/// Every trait the console needs of the control plane.
pub trait Store:
    ControlStore
    + EventStore
    + ConsoleStore
    + AudienceStore
    + ImportStore
    + TemplateStore
    + CompatStore
    + CampaignStore
    + Clone
    + 'static
{
}
impl<T> Store for T where
    T: ControlStore
        + EventStore
        + ConsoleStore
        + AudienceStore
        + ImportStore
        + TemplateStore
        + CompatStore
        + CampaignStore
        + Clone
        + 'static
{
}

impl<S: Store> ConsoleState<S> {
    pub fn new(
        tenancy: Arc<Tenancy<S>>,
        delivery: Option<delivery::Engine>,
        spool: spool::Spool,
        events: events::EventSink,
        webhooks: events::webhooks::WebhookConfig,
        config: ConsoleConfig,
        rates: Arc<ops::rates::Rates>,
        contact_imports: (imports::ImportsConfig, Arc<tokio::sync::Notify>),
    ) -> Arc<ConsoleState<S>> {
        Arc::new(ConsoleState {
            tenancy,
            delivery,
            spool,
            events,
            webhooks,
            throttle: auth::throttle::LoginThrottle::new(config.throttle),
            config,
            views: render::Views::new(),
            totp_used: Default::default(),
            imports: Default::default(),
            rates,
            contact_imports: contact_imports.0,
            contact_imports_wake: contact_imports.1,
            campaigns: std::sync::OnceLock::new(),
            operations: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
        })
    }
}

/// The console's routes, to merge into the HTTP listener's router (served with connect
/// info: sign-ins and the audit log record the client's address).
pub fn router<S: Store>(state: Arc<ConsoleState<S>>) -> Router {
    tokio::spawn(auth::sessions::purge_forever(state.clone()));
    let sampler = state.clone();
    tokio::spawn(async move {
        loop {
            let accepted = sampler.spool.inserted_count();
            sampler.rates.sample_now(auth::sessions::now_ms(), accepted);
            tokio::time::sleep(ops::rates::SAMPLE_EVERY).await;
        }
    });
    Router::new()
        .route("/", get(pages::dashboard::page::<S>))
        .route(
            "/login",
            get(auth::login::form::<S>).post(auth::login::submit::<S>),
        )
        .route("/login/code", post(auth::login::second_factor::<S>))
        .route("/logout", post(auth::login::logout::<S>))
        .route("/activity", get(pages::activity::page::<S>))
        .route("/activity/{id}", get(pages::activity::message::<S>))
        .route(
            "/domains",
            get(pages::domains::page::<S>).post(pages::domains::add::<S>),
        )
        .route("/domains/{domain}", get(pages::domains::detail::<S>))
        .route(
            "/domains/{domain}/remove",
            post(pages::domains::remove::<S>),
        )
        .route(
            "/keys",
            get(pages::keys::page::<S>).post(pages::keys::add::<S>),
        )
        .route("/keys/{id}/revoke", post(pages::keys::revoke::<S>))
        .route(
            "/suppressions",
            get(pages::suppressions::page::<S>).post(pages::suppressions::add::<S>),
        )
        .route(
            "/suppressions/remove",
            post(pages::suppressions::remove::<S>),
        )
        .route("/suppressions.csv", get(pages::suppressions::export::<S>))
        .route(
            "/suppressions/import",
            post(pages::suppressions::import::<S>),
        )
        .route("/suppressions/imports/{id}", get(pages::imports::page::<S>))
        .route(
            "/team",
            get(pages::team::page::<S>).post(pages::team::add::<S>),
        )
        .route("/team/{id}", post(pages::team::change::<S>))
        .route(
            "/webhooks",
            get(pages::webhooks::page::<S>).post(pages::webhooks::add::<S>),
        )
        .route("/webhooks/{id}", get(pages::webhooks::detail::<S>))
        .route("/webhooks/{id}/test", post(pages::webhooks::test::<S>))
        .route("/webhooks/{id}/rotate", post(pages::webhooks::rotate::<S>))
        .route("/webhooks/{id}/remove", post(pages::webhooks::remove::<S>))
        .route(
            "/account",
            get(pages::account::page::<S>).post(pages::account::change_password::<S>),
        )
        .route("/account/language", post(pages::account::language::<S>))
        .route("/account/name", post(pages::account::name::<S>))
        .route("/account/totp", post(pages::account::totp::<S>))
        .route("/audit", get(pages::audit::page::<S>))
        .route("/contacts", get(pages::contacts::page::<S>))
        .route("/contacts/{id}", get(pages::contacts::detail::<S>))
        .route(
            "/lists",
            get(pages::lists::page::<S>).post(pages::lists::add::<S>),
        )
        .route(
            "/segments",
            get(pages::segments::page::<S>).post(pages::segments::save::<S>),
        )
        .route("/segments/count", get(pages::segments::count::<S>))
        .route(
            "/templates",
            get(pages::templates::page::<S>).post(pages::templates::add::<S>),
        )
        .route("/templates/{id}", get(pages::templates::detail::<S>))
        .route(
            "/templates/{id}/versions",
            post(pages::templates::save::<S>),
        )
        .route(
            "/templates/{id}/versions/{version}/activate",
            post(pages::templates::activate::<S>),
        )
        .route(
            "/templates/{id}/preview",
            post(pages::templates::preview::<S>),
        )
        .route(
            "/templates/{id}/preview.html",
            get(pages::templates::version_html::<S>).post(pages::templates::preview_html::<S>),
        )
        .route(
            "/campaigns",
            get(pages::campaigns::page::<S>).post(pages::campaigns::add::<S>),
        )
        .route("/campaigns/count", get(pages::campaigns::count::<S>))
        .route(
            "/campaigns/{id}",
            get(pages::campaigns::detail::<S>).post(pages::campaigns::save::<S>),
        )
        .route(
            "/campaigns/{id}/preview.html",
            get(pages::campaigns::preview_html::<S>),
        )
        .route(
            "/campaigns/{id}/report.csv",
            get(pages::campaigns::report_csv::<S>),
        )
        .route("/campaigns/{id}/{action}", post(pages::campaigns::act::<S>))
        .route(
            "/contacts/imports",
            get(pages::contact_imports::page::<S>)
                .post(pages::contact_imports::upload::<S>)
                .layer(axum::extract::DefaultBodyLimit::max(2 << 30)),
        )
        .route(
            "/contacts/imports/{id}",
            get(pages::contact_imports::job::<S>),
        )
        .route(
            "/contacts/imports/{id}/errors.csv",
            get(pages::contact_imports::errors::<S>),
        )
        .route("/ops", get(ops::overview::page::<S>))
        .route("/ops/queues", get(ops::queues::page::<S>))
        .route("/ops/queues/action", post(ops::queues::action::<S>))
        .route("/ops/messages", get(ops::messages::page::<S>))
        .route(
            "/ops/tenants",
            get(ops::tenants::page::<S>).post(ops::tenants::add::<S>),
        )
        .route("/ops/tenants/{id}", post(ops::tenants::change::<S>))
        .route("/ops/shaping", get(ops::shaping::page::<S>))
        .route("/ops/cluster", get(ops::cluster::page::<S>))
        .route("/ops/audit", get(ops::audit::page::<S>))
        .route("/ops/alerts", get(ops::alerts::page::<S>))
        .route("/ops/alerts/{id}", get(ops::alerts::show::<S>))
        .route("/ops/alerts/{id}/{action}", post(ops::alerts::act::<S>))
        .route(
            "/ops/silences/{id}/end",
            post(ops::alerts::end_silence::<S>),
        )
        .route("/ops/slo", get(ops::slo::page::<S>))
        .route("/ops/oncall", get(ops::oncall::page::<S>))
        .route(
            "/ops/reports",
            get(ops::reports::page::<S>).post(ops::reports::make::<S>),
        )
        .route("/ops/reports/{id}", get(ops::reports::download::<S>))
        .route(
            "/ops/forecast",
            get(ops::forecast::page::<S>).post(ops::forecast::run::<S>),
        )
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(render::security_headers))
        .with_state(state)
}
