//! The one path into the spool for every send API: suppressed recipients dropped, quota,
//! composition and DKIM signing, spooling, then `accepted` and `suppressed` events. The
//! caller answers only after this returns: every message it reports queued is durable.

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::http::StatusCode;
use spool::{MessageId, SpoolError};
use store::{ControlStore, EventStore};

use crate::ApiState;
use crate::compose;
use crate::error::ApiError;
use crate::native::Message;

/// What became of one message.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub id: MessageId,
    /// False when every recipient was suppressed: nothing was spooled.
    pub queued: bool,
    /// Recipients dropped because the tenant suppresses them.
    pub suppressed: Vec<String>,
}

/// Suppression, quota, composition and spooling for checked messages. Returns once all are
/// durable, in request order.
pub(crate) async fn submit<S: ControlStore + EventStore>(
    state: &ApiState<S>,
    key: &store::ApiKey,
    peer: SocketAddr,
    messages: &[(Message, store::SendingDomain)],
) -> Result<Vec<Submitted>, ApiError> {
    let everyone: Vec<String> = messages.iter().flat_map(|(m, _)| m.recipients()).collect();
    let blocked: HashSet<String> = state
        .tenancy
        .suppressed(&key.tenant_id, &everyone)
        .await
        .map_err(ApiError::from)?;
    // (kept, suppressed) recipients per message.
    let split: Vec<(Vec<String>, Vec<String>)> = messages
        .iter()
        .map(|(m, _)| {
            m.recipients()
                .into_iter()
                .partition(|r| !blocked.contains(&r.to_ascii_lowercase()))
        })
        .collect();
    let sending = split.iter().filter(|(kept, _)| !kept.is_empty()).count();
    if sending > 0 {
        state
            .tenancy
            .admit(&key.tenant_id, sending)
            .await
            .map_err(ApiError::from)?;
    }
    let submitter = compose::Submitter {
        tenant_id: key.tenant_id.clone(),
        client_ip: peer.ip().to_string(),
    };
    let ids: Vec<MessageId> = messages.iter().map(|_| state.spool.next_id()).collect();
    // Composing and DKIM signing are CPU work (an RSA-2048 signature is ~0.2 ms): off the
    // async workers, split over the cores so one request's signatures run side by side.
    let batch: Vec<(usize, Message, store::SendingDomain, Vec<String>)> = messages
        .iter()
        .zip(&split)
        .enumerate()
        .filter(|(_, (_, (kept, _)))| !kept.is_empty())
        .map(|(i, ((m, d), (kept, _)))| (i, m.clone(), d.clone(), kept.clone()))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = batch.len().div_ceil(cores).max(8);
    let mut jobs = Vec::new();
    let mut rest = batch;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        let hostname = state.hostname.clone();
        let signers = state.tenancy.signers.clone();
        let submitter = submitter.clone();
        let ids = ids.clone();
        let return_paths = state.tenancy.return_paths.clone();
        let public_url = state.public_url.clone();
        jobs.push(tokio::task::spawn_blocking(move || {
            part.iter()
                .map(|(i, message, domain, kept)| {
                    let signer = signers.get(domain)?;
                    let id = ids[*i];
                    let addresses = compose::Addresses {
                        return_path: return_paths.address(&id.to_string(), &domain.domain),
                        unsubscribe: return_paths.address_for(
                            tenancy::verp::Purpose::Unsubscribe,
                            &id.to_string(),
                            &domain.domain,
                        ),
                        one_click: match (&public_url, kept.as_slice()) {
                            (Some(base), [only]) => Some(format!(
                                "{base}/v1/unsubscribe/{}",
                                return_paths.unsubscribe_token(
                                    &id.to_string(),
                                    &domain.domain,
                                    only
                                )
                            )),
                            _ => None,
                        },
                    };
                    compose::compose(
                        message, kept, &addresses, id, &hostname, &submitter, &signer,
                    )
                    .map(|composed| (*i, composed))
                })
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let failed = |err: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("composing: {err}"),
        )
    };
    let mut pending = Vec::with_capacity(messages.len());
    for job in jobs {
        let composed = job
            .await
            .map_err(|err| failed(err.to_string()))?
            .map_err(|err| failed(err.to_string()))?;
        pending.extend(composed);
    }
    // All inserts in flight together: they share the spool's group commits.
    let mut inserts = tokio::task::JoinSet::new();
    for (i, composed) in pending {
        let spool = state.spool.clone();
        let id = ids[i];
        inserts.spawn(async move {
            let compose::Composed {
                envelope,
                signature,
                content,
            } = composed;
            let done = spool
                .insert_with_prefix(id, envelope, signature.as_bytes(), content)
                .await;
            (i, done)
        });
    }
    let mut queued = vec![false; messages.len()];
    let mut failure = None;
    while let Some(done) = inserts.join_next().await {
        let Ok((i, result)) = done else {
            failure = Some(SpoolError::Poisoned);
            continue;
        };
        match result {
            Ok(()) => queued[i] = true,
            Err(err) => failure = Some(err),
        }
    }
    let mut events = Vec::new();
    for (i, ((message, domain), (kept, dropped))) in messages.iter().zip(&split).enumerate() {
        let kept: &[String] = if queued[i] { kept } else { &[] };
        if kept.is_empty() && dropped.is_empty() {
            continue;
        }
        events.extend(events::convert::admitted(
            &key.tenant_id,
            &ids[i].to_string(),
            kept,
            dropped,
            crate::attributes::stored(message).as_deref(),
            "api",
            &domain.domain,
        ));
    }
    state.events.record(events);
    if let Some(err) = failure {
        // Some messages may be queued already; the client retries the whole request with
        // the same Idempotency-Key. Say so rather than hide it.
        let done = queued.iter().filter(|q| **q).count();
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the spool refused messages ({err}); {done} of {} were queued",
                messages.len()
            ),
        );
        error.retry_after = Some(5);
        error.spool_refused = true;
        return Err(error);
    }
    Ok(ids
        .into_iter()
        .zip(split)
        .zip(queued)
        .map(|((id, (_, suppressed)), queued)| Submitted {
            id,
            queued,
            suppressed,
        })
        .collect())
}
