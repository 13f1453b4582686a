//! `tsubame serve`: wires the spool, SMTP ingress, delivery and admin HTTP together and runs
//! until SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use smtp_server::tls::{TlsSource, server_config};
use spool::{Spool, SpoolConfig};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::datadir::DataDir;

/// Explicit buckets: summaries cannot be aggregated across nodes, histograms can.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

pub fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let data = DataDir::new(config.data_dir.clone());
    let _lock = data.lock()?;
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            ops::slo::LATENCY_BUCKETS_SECONDS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("tsubame_spool_batch_records".into()),
            BATCH_BUCKETS,
        )?
        .install_recorder()
        .context("installing the metrics recorder")?;
    zero_counters();
    let upkeep = recorder.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    // One descriptor per SMTP connection, plus spool segments, delivery and HTTP.
    let needed = config.smtp.limits.connections_max as u64 + 4096;
    let open_files = crate::fdlimit::raise_open_files();
    if open_files < needed {
        tracing::warn!(
            limit = open_files,
            needed,
            "open-file limit below smtp.connections_max plus headroom; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=)"
        );
    }

    let spool_config = SpoolConfig {
        dir: data.spool(),
        segment_bytes_max: config.segment_bytes_max,
        batch_bytes_max: config.batch_bytes_max,
    };
    let (spool, report) = tokio::task::spawn_blocking(move || Spool::open(&spool_config)).await??;
    tracing::info!(
        messages = report.messages,
        segments = report.segments,
        records = report.records,
        dropped_bytes = report.dropped_bytes,
        duration_ms = report.duration.as_millis() as u64,
        "spool recovered"
    );
    // Cluster mode: the spool is reconciled with its replicated copy before anything reads it.
    let cluster = crate::cluster_mode::join(config.cluster.clone(), &spool).await?;

    let control = open_control(&data, config.control_postgres.as_deref()).await?;
    // Campaign batches a crash left uncommitted are taken back out of the spool before
    // delivery can see them; they are spooled again from their campaign's cursor.
    let settled = campaigns::expand::settle_open_batches(&control, &spool)
        .await
        .context("settling campaign batches left open")?;
    if settled > 0 {
        tracing::info!(batches = settled, "open campaign batches taken back");
    }
    // Events from every ingress and from delivery go through one recorder, which feeds the
    // suppression lists and wakes the webhooks.
    let (event_sink, event_recorder) = events::channel(control.clone());
    let written = event_recorder.written.clone();
    tokio::spawn(event_recorder.run());
    tokio::spawn(events::purge_forever(
        control.clone(),
        config.events.retention,
    ));
    let slo = Arc::new(ops::tracker::Tracker::new(&config.slos));
    resolve_slo_tenants(&control, &slo).await;
    restore_slo_counts(&control, &slo).await;
    tokio::spawn(save_slo_counts(control.clone(), slo.clone()));
    let freshness: events::webhooks::FreshnessObserver = {
        let slo = slo.clone();
        Arc::new(move |now_ms, tenant, ages| slo.webhook_delivered(now_ms, tenant, ages))
    };
    tokio::spawn(events::webhooks::run(
        control.clone(),
        written,
        config.events.webhooks.clone(),
        Some(freshness),
        duty(&control, &config, "webhooks"),
    ));
    // The console's live rates and the objectives are fed by the delivery event listener.
    let rates: Arc<console::ops::rates::Rates> = Arc::default();
    let activity: Arc<ops::activity::Activity> = Arc::default();
    let engine = if config.delivery.enabled {
        let sink = event_sink.clone();
        let delivered = rates.clone();
        let objectives = slo.clone();
        let activity = activity.clone();
        let listener: delivery::events::EventListener = Arc::new(move |batch| {
            let mut attempts = Vec::new();
            for event in &batch {
                let ok = event.outcome == delivery::events::Outcome::Delivered;
                if ok {
                    delivered.delivered(event.queued_ms);
                }
                record_activity(&activity, event);
                if ok || event.outcome == delivery::events::Outcome::Deferred {
                    attempts.push(ops::tracker::Attempt {
                        now_ms: event.time_ms as i64,
                        tenant: event.auth_user.as_deref().and_then(spool::tenant_of),
                        queued: Duration::from_millis(event.queued_ms),
                        recipient: recipient_key(&event.message_id, &event.recipient),
                        delivered: ok,
                    });
                }
            }
            objectives.outcomes(&attempts);
            let ours: Vec<store::NewEvent> = batch
                .iter()
                .filter_map(events::convert::from_delivery)
                .collect();
            sink.record(ours);
        });
        let engine = delivery::Engine::start_with_listener(
            spool.clone(),
            config.delivery.engine.clone(),
            Some(listener),
        )
        .map_err(|e| anyhow::anyhow!("starting delivery: {e}"))?;
        Some(engine)
    } else {
        tracing::warn!("delivery is disabled: messages are accepted and kept, never sent");
        None
    };

    let tls_source = match &config.tls {
        Some((cert, key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        None => TlsSource::SelfSigned { dir: data.tls() },
    };
    let tls = server_config(&tls_source, &config.smtp.hostname).context("setting up TLS")?;
    let token = data.ensure_token()?;

    // One tenancy for both ways in: a tenant's limits count API and SMTP mail together.
    let control_for_ops = control.clone();
    let return_paths = tenancy::ReturnPaths::new(&data.ensure_bounce_key()?);
    let tenancy = tenancy::Tenancy::new(control, return_paths);
    crate::cluster_mode::follow_shares(
        cluster.clone(),
        tenancy.quotas.shares.clone(),
        engine.clone(),
    );
    let smtp = smtp_server::Server::bind(
        config.smtp.clone(),
        spool.clone(),
        Some(tls),
        data.users(),
        Some(Arc::new(smtp_tenants::SmtpTenants {
            tenancy: tenancy.clone(),
            events: event_sink.clone(),
            classifier: Arc::new(config.delivery.engine.classifier.clone()),
            slo: slo.clone(),
        })),
    )
    .context("binding SMTP listeners")?;
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http_listen))?;
    let http_addr = http.local_addr()?;
    if let Some(node) = &cluster {
        let smtp_addrs = smtp.local_addrs().iter().map(|a| a.to_string()).collect();
        node.set_addresses(smtp_addrs, http_addr.to_string());
    }
    let drain = Arc::new(tokio::sync::Notify::new());
    // Alerts, on-call, notifications and reports, evaluated on the server's own clock
    // (moved forward by the admin API only when started with TSUBAME_OPS_CLOCK=adjustable).
    let clock = if std::env::var("TSUBAME_OPS_CLOCK").as_deref() == Ok("adjustable") {
        tracing::warn!("the operations clock is adjustable (drills and tests only)");
        ops::clock::Clock::adjustable()
    } else {
        ops::clock::Clock::system()
    };
    let observer = ops::observe::Observer::new(
        spool.clone(),
        data.spool(),
        engine.clone(),
        activity.clone(),
        control_for_ops.clone(),
        Some(match &config.tls {
            Some((cert, _)) => cert.clone(),
            None => data.tls().join("cert.pem"),
        }),
    );
    let mail: Arc<dyn ops::notify::MailOut> = Arc::new(ops::notify::spool_mail::SpoolMail {
        spool: spool.clone(),
        hostname: config.smtp.hostname.clone(),
    });
    let operations_duty = duty(&control_for_ops, &config, "operations");
    let operations = ops::runner::Ops::start(
        control_for_ops,
        config.ops.clone(),
        clock,
        config.smtp.hostname.clone(),
        slo.clone(),
        observer,
        Some(mail),
    )
    .await
    .context("starting the operations runner")?;
    tokio::spawn(operations.clone().run(operations_duty));
    let router = admin_api::router(admin_api::AdminState {
        spool: spool.clone(),
        token: Arc::from(token.as_str()),
        metrics: Arc::new(move || recorder.render()),
        delivery: engine.clone(),
        slo: slo.clone(),
        ops: operations.clone(),
        cluster: cluster.clone(),
        drain: drain.clone(),
    });
    // Acceptance: messages stored and messages the spool could not store, sampled.
    tokio::spawn(sample_acceptance(spool.clone(), slo.clone()));
    // Contact imports: queued ones and ones whose worker died are taken up from here.
    let imports_config = imports::ImportsConfig::new(data.root.join("imports"));
    let imports_wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(imports::runner::run(
        tenancy.store.clone(),
        imports_config.clone(),
        imports_wake.clone(),
    ));
    let console_imports = (imports_config.clone(), imports_wake.clone());
    let console_state = console::ConsoleState::new(
        tenancy.clone(),
        engine.clone(),
        spool.clone(),
        event_sink.clone(),
        config.events.webhooks.clone(),
        config.console.clone(),
        rates,
        console_imports,
    );
    let api_state = api::ApiState::new(
        spool.clone(),
        tenancy,
        event_sink.clone(),
        config.events.webhooks.clone(),
        config.public_url.clone(),
        config.smtp.hostname.clone(),
        (imports_config, imports_wake),
    );
    // A cancelled campaign's queued messages: out of the delivery queues, or straight out
    // of the spool when nothing delivers.
    let queue: Arc<dyn campaigns::expand::Withdraw> = match &engine {
        Some(engine) => Arc::new(EngineQueue(engine.clone())),
        None => Arc::new(SpoolQueue(spool.clone())),
    };
    let _ = api_state.queue.set(queue);
    let _ = console_state.operations.set(operations.clone());
    if let Some(node) = &cluster {
        let _ = console_state.cluster.set(node.clone());
    }
    let _ = console_state
        .campaigns
        .set(Arc::new(api::campaigns::desk::Desk {
            state: api_state.clone(),
        }));
    let _ = api_state.tracking.set(tracking::token::TrackingKey::new(
        &data.ensure_bounce_key()?,
    ));
    // Campaigns: due ones started, sending ones expanded into the spool.
    let expansion = Arc::new(campaigns::expand::Expansion {
        store: Arc::new(api_state.tenancy.store.clone()),
        spool: spool.clone(),
        sending: Arc::new(api::campaigns::composer::Composer {
            state: api_state.clone(),
        }),
        batch: config.campaign_batch,
        duty: duty(&api_state.tenancy.store, &config, "campaigns"),
    });
    tokio::spawn(campaigns::runner::run(
        expansion,
        api_state.campaigns_wake.clone(),
    ));
    // Every API request's time, for the API latency objectives.
    let api_slo = slo.clone();
    let router = router
        .merge(console::router(console_state))
        .merge(api::router(api_state).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let slo = api_slo.clone();
                async move {
                    let started = std::time::Instant::now();
                    let submits = request.method() == axum::http::Method::POST
                        && SUBMIT_PATHS.contains(&request.uri().path());
                    let response = next.run(request).await;
                    let took = started.elapsed();
                    metrics::histogram!("tsubame_http_request_duration_seconds")
                        .record(took.as_secs_f64());
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    slo.api_answered(now_ms, took);
                    // A submission refused by our fault before the spool (the spool counts
                    // its own refusals): one refused offer for the acceptance objectives.
                    if submits
                        && response
                            .extensions()
                            .get::<api::error::ServerFault>()
                            .is_some()
                    {
                        slo.offered(now_ms, 1, 1);
                    }
                    response
                }
            },
        )))
        .layer(axum::middleware::from_fn(
            api::framework_errors::json_errors,
        ));
    std::fs::write(data.admin_url(), format!("http://{http_addr}\n"))?;
    tracing::info!(smtp = ?smtp.local_addrs(), http = %http_addr, data_dir = %data.root.display(), "tsubame serving");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    let http_limits = config.http_limits;
    // The HTTP side is waited for at most 5 s below; requests in progress get that long.
    let http_grace = Duration::from_secs(5);
    let signals = shutdown_signals()?;
    let http_task = tokio::spawn(async move {
        let graceful = async move {
            let _ = http_stop.wait_for(|stopped| *stopped).await;
        };
        http_listener::serve(http, router, http_limits, graceful, http_grace).await;
    });
    let mut smtp_stop = stop_rx.clone();
    let smtp_task = tokio::spawn(smtp.run(async move {
        let _ = smtp_stop.wait_for(|stopped| *stopped).await;
    }));

    let cluster_lost = crate::cluster_mode::run(cluster.clone(), engine.clone());
    let (draining, lost) = tokio::select! {
        _ = signals => (false, None),
        _ = drain.notified() => (true, None),
        lost = cluster_lost => (false, Some(lost)),
    };
    if let Some(lost) = &lost {
        tracing::error!(error = %lost, "leaving: this node's queue went to another node");
    } else if draining {
        tracing::info!(
            "draining: no new connections, finishing deliveries, then handing the queue over"
        );
    }
    tracing::info!("shutting down: no new connections, finishing transactions in flight");
    let _ = stop_tx.send(true);
    let _ = smtp_task.await;
    if let Some(engine) = &engine {
        engine.shutdown(config.delivery.shutdown_grace).await;
    }
    if draining && let Some(node) = &cluster {
        crate::cluster_mode::hand_over(node).await;
    }
    event_sink.drain(Duration::from_secs(5)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    tokio::task::spawn_blocking(move || spool.shutdown()).await?;
    let _ = std::fs::remove_file(data.admin_url());
    tracing::info!("stopped");
    match lost {
        Some(lost) => Err(lost),
        None => Ok(()),
    }
}

/// How long a node holds a once-per-cluster duty without renewing it: the longest a duty
/// waits when its holder dies.
const DUTY_TERM: Duration = Duration::from_secs(10);

/// A once-per-cluster duty: leased in a shared PostgreSQL control plane (held by this node
/// when it can), always held on SQLite (one node alone).
fn duty(control: &store::ControlPlane, config: &Config, name: &str) -> leases::Duty {
    match control {
        store::ControlPlane::Sqlite(_) => leases::Duty::always(),
        store::ControlPlane::Postgres(_) => {
            let owner = match &config.cluster {
                Some(cluster) => cluster.membership.node.clone(),
                None => format!("{}:{}", config.smtp.hostname, std::process::id()),
            };
            leases::Duty::leased(control.clone(), name, &owner, DUTY_TERM)
        }
    }
}

/// The control plane: the shared PostgreSQL when configured (its address left in the data
/// directory for the command line), else SQLite in the data directory.
async fn open_control(
    data: &DataDir,
    postgres: Option<&str>,
) -> anyhow::Result<store::ControlPlane> {
    let marker = data.control_postgres();
    let control = match postgres {
        Some(url) => {
            let control = store::ControlPlane::open(&data.control(), Some(url))
                .await
                .context("connecting to the PostgreSQL control plane (control.postgres)")?;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&marker)
                .with_context(|| format!("writing {}", marker.display()))?;
            writeln!(file, "{url}")?;
            control
        }
        None => {
            let _ = std::fs::remove_file(&marker);
            store::ControlPlane::open(&data.control(), None)
                .await
                .with_context(|| format!("opening {}", data.control().display()))?
        }
    };
    tracing::info!(kind = control.kind(), "control plane open");
    Ok(control)
}

/// SIGTERM and SIGINT, listened for from the moment this is called (before anything is
/// served: a signal that arrives as the first client connects must drain, not kill).
fn shutdown_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Withdraws a cancelled campaign's messages from the delivery engine's queues.
struct EngineQueue(delivery::Engine);

impl campaigns::expand::Withdraw for EngineQueue {
    fn withdraw(&self, ids: &std::collections::HashSet<spool::MessageId>) -> u64 {
        self.0.delete_messages(ids)
    }
}

/// Withdraws a cancelled campaign's messages from the spool when delivery is off.
struct SpoolQueue(Spool);

impl campaigns::expand::Withdraw for SpoolQueue {
    fn withdraw(&self, ids: &std::collections::HashSet<spool::MessageId>) -> u64 {
        let mut removed = 0;
        for &id in ids {
            if self.0.contains(id) && self.0.remove_detached(id).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Feeds the acceptance objectives every few seconds: messages stored (good) and messages
/// the spool refused (disk full, I/O errors: our fault) since the last sample.
async fn sample_acceptance(spool: Spool, slo: Arc<ops::tracker::Tracker>) {
    let (mut stored, mut failed) = (spool.inserted_count(), spool.insert_failed_count());
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        let (now_stored, now_failed) = (spool.inserted_count(), spool.insert_failed_count());
        let refused = now_failed.saturating_sub(failed);
        let total = now_stored.saturating_sub(stored) + refused;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        slo.offered(now_ms, total, refused);
        (stored, failed) = (now_stored, now_failed);
    }
}

/// Counters that alerts and dashboards divide by or compare are exported from the start,
/// at zero, so a rate over them exists before the first event (Prometheus's advice for
/// counters with known labels).
fn zero_counters() {
    for reason in ["spool_error", "disk_full", "tenant_policy"] {
        metrics::counter!("tsubame_smtp_messages_rejected_total", "reason" => reason).absolute(0);
    }
    for name in [
        "tsubame_smtp_messages_accepted_total",
        "tsubame_events_recorded_total",
        "tsubame_events_dropped_total",
        "tsubame_webhook_failures_total",
        "tsubame_webhook_events_delivered_total",
        "tsubame_webhook_events_dropped_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    metrics::counter!("tsubame_smtp_connections_refused_total", "reason" => "early_talker")
        .absolute(0);
    metrics::gauge!("tsubame_smtp_connections").set(0.0);
}

/// How far back objectives' counters are kept: the longest period an objective may have.
const SLO_KEPT: Duration = Duration::from_secs(91 * 86_400);

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Puts the objectives' saved counters back, so budgets and burn rates survive a restart.
async fn restore_slo_counts(control: &store::ControlPlane, slo: &ops::tracker::Tracker) {
    let since = unix_ms() - SLO_KEPT.as_millis() as i64;
    match store::SloStore::slo_slots(control, since).await {
        Ok(rows) => {
            let saved: Vec<(String, i64, i64, ops::budget::Counts)> = rows
                .into_iter()
                .map(|r| {
                    let counts = ops::budget::Counts {
                        good: r.good,
                        total: r.total,
                    };
                    (r.slo, r.grain_ms, r.slot, counts)
                })
                .collect();
            slo.restore(&saved);
        }
        Err(err) => {
            tracing::warn!(error = %err, "reading the objectives' counters failed; they start again")
        }
    }
}

/// Saves the objectives' recent counters every few seconds (a crash loses at most that),
/// and forgets those older than any period once a day.
async fn save_slo_counts(control: store::ControlPlane, slo: Arc<ops::tracker::Tracker>) {
    let mut last_purge = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = unix_ms();
        let slots: Vec<store::SloSlot> = slo
            .recent(now)
            .into_iter()
            .map(|(name, grain_ms, slot, counts)| store::SloSlot {
                slo: name,
                grain_ms,
                slot,
                good: counts.good,
                total: counts.total,
            })
            .collect();
        resolve_slo_tenants(&control, &slo).await;
        if let Err(err) = store::SloStore::save_slo_slots(&control, &slots).await {
            tracing::warn!(error = %err, "saving the objectives' counters failed");
        }
        if now - last_purge > 86_400_000 {
            last_purge = now;
            let before = now - SLO_KEPT.as_millis() as i64;
            if let Err(err) = store::SloStore::purge_slo_slots(&control, before).await {
                tracing::warn!(error = %err, "purging old objectives' counters failed");
            }
        }
    }
}

/// Per-tenant objectives name their tenant; events carry its id. Looked up at start-up
/// and again with every save, so a tenant added later is counted from then on.
async fn resolve_slo_tenants(control: &store::ControlPlane, slo: &ops::tracker::Tracker) {
    for name in slo.unresolved_tenants() {
        if let Ok(Some(tenant)) = store::ControlStore::tenant(control, &name).await {
            slo.resolve_tenant(&name, &tenant.id);
        }
    }
}

/// The API's message submission endpoints (native, SendGrid, Mailjet).
const SUBMIT_PATHS: [&str; 3] = ["/v1/messages", "/v3/mail/send", "/v3.1/send"];

/// A message's recipient as a number, for the latency objectives' memory of late ones.
fn recipient_key(message_id: &str, recipient: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    message_id.hash(&mut h);
    recipient.hash(&mut h);
    h.finish() | 1
}

/// Feeds the operations' per-site and per-period counters from one delivery event.
fn record_activity(activity: &ops::activity::Activity, event: &delivery::events::Event) {
    use delivery::events::Outcome as O;
    let outcome = match event.outcome {
        O::Delivered => ops::activity::Outcome::Delivered,
        O::Deferred => ops::activity::Outcome::Deferred,
        O::Bounced => ops::activity::Outcome::Bounced,
        O::Expired | O::Deleted => return,
    };
    let domain = event.recipient.rsplit('@').next().unwrap_or("");
    let provider = match store::rollups::provider_of(domain) {
        "other" => domain,
        known => known,
    };
    activity.record_attempt(
        &event.site,
        provider,
        outcome,
        event.category == Some("dns_failure"),
        event.queued_ms,
        event.attempt_ms,
    );
}
