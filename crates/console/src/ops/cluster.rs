//! The cluster as this node sees it: every node with its state, health, share of the
//! cluster-wide limits and queue, and the takeovers this node did. A single node says so.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cluster::membership::{Member, NodeState};
use cluster::takeover::Takeover;

use crate::auth::OperatorViewer;
use crate::{ConsoleState, Store};

fn state_key(state: &NodeState) -> &'static str {
    match state {
        NodeState::Starting => "starting",
        NodeState::Up => "up",
        NodeState::Draining => "draining",
        NodeState::HandingOver => "handing_over",
        NodeState::TakenOver { .. } => "taken_over",
    }
}

/// The page's cluster part, from what membership says (kept apart from the handler so it
/// can be checked without a cluster).
pub fn view(
    me: &str,
    fenced: bool,
    members: &[Member],
    takeovers: &[Takeover],
) -> minijinja::Value {
    let active = members.iter().filter(|m| m.active()).count().max(1);
    let nodes: Vec<minijinja::Value> = members
        .iter()
        .map(|m| {
            let share = if m.active() {
                format!("{:.0}%", 100.0 / active as f64)
            } else {
                "—".into()
            };
            minijinja::context! {
                name => m.record.name.clone(),
                this => m.record.name == me,
                state => state_key(&m.record.state),
                taken_by => match &m.record.state {
                    NodeState::TakenOver { by } => Some(by.clone()),
                    _ => None,
                },
                alive => m.alive,
                silent_s => format!("{:.1}", m.silent_for.as_secs_f64()),
                share => share,
                queued => m.record.queued,
                smtp => m.record.smtp.join(", "),
                started_ms => m.record.started_ms,
            }
        })
        .collect();
    let takeovers: Vec<minijinja::Value> = takeovers
        .iter()
        .rev()
        .map(|t| {
            minijinja::context! {
                node => t.node.clone(),
                imported => t.imported,
                dropped_held => t.dropped_held,
                took_ms => t.took.as_millis() as u64,
            }
        })
        .collect();
    minijinja::context! {
        clustered => true,
        me => me,
        fenced => fenced,
        nodes => nodes,
        takeovers => takeovers,
    }
}

/// `GET /ops/cluster`
pub async fn page<S: Store>(
    State(state): State<Arc<ConsoleState<S>>>,
    who: OperatorViewer,
) -> Response {
    let base = who.viewer.context("cluster", None);
    let cluster = match state.cluster.get() {
        None => minijinja::context! { clustered => false },
        Some(node) => view(node.name(), node.fenced(), &node.view(), &node.takeovers()),
    };
    state.views.page(
        StatusCode::OK,
        "ops_cluster.html",
        minijinja::context! { cluster => cluster, ..base },
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cluster::membership::NodeRecord;

    use super::*;
    use crate::render::Views;

    fn member(name: &str, state: NodeState, alive: bool, queued: u64) -> Member {
        let mut record = NodeRecord::new(name, state);
        record.queued = queued;
        record.smtp = vec![format!("10.0.0.{}:25", name.len())];
        Member {
            record,
            revision: 1,
            alive,
            silent_for: Duration::from_millis(if alive { 200 } else { 4_000 }),
        }
    }

    #[test]
    fn the_cluster_page_shows_every_node_its_health_and_share() {
        let members = [
            member("mx1", NodeState::Up, true, 12),
            member("mx2", NodeState::Draining, true, 3),
            member("mx3", NodeState::TakenOver { by: "mx1".into() }, false, 40),
        ];
        let takeovers = [Takeover {
            node: "mx3".into(),
            imported: 40,
            dropped_held: 0,
            took: Duration::from_millis(180),
        }];
        for lang in ["en", "ja"] {
            let context = minijinja::context! {
                lang => lang, csrf => "x", operator => true, page => "cluster",
                me => minijinja::context! { email => "op@x", name => "", role => "operator", totp => false },
                tenant_name => None::<String>, notice => None::<&str>, error => None::<String>,
                cluster => view("mx1", false, &members, &takeovers),
            };
            let html = Views::new()
                .render("ops_cluster.html", context)
                .expect("renders");
            for text in ["mx1", "mx2", "mx3", "50%", "10.0.0.3:25", "180"] {
                assert!(html.contains(text), "{lang}: {text} missing");
            }
        }
        let alone = minijinja::context! {
            lang => "en", csrf => "x", operator => true, page => "cluster",
            me => minijinja::context! { email => "op@x", name => "", role => "operator", totp => false },
            tenant_name => None::<String>, notice => None::<&str>, error => None::<String>,
            cluster => minijinja::context! { clustered => false },
        };
        let html = Views::new()
            .render("ops_cluster.html", alone)
            .expect("renders");
        assert!(html.contains("runs alone"), "{html}");
    }
}
