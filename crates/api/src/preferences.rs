//! A campaign recipient's preference page and list-scoped one-click unsubscribe:
//! `List-Unsubscribe: <https://.../v1/preferences/<token>>` with
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. The token, signed by this node,
//! names the tenant, the message, the recipient and the campaign's lists.
//!
//! - `POST` with `List-Unsubscribe=One-Click` (what a mailbox provider's unsubscribe button
//!   sends): the recipient leaves the campaign's lists, and only those.
//! - `GET`: a page in the recipient's language (the contact's locale: Japanese or English)
//!   listing the tenant's lists the recipient is on, each with a checkbox, and a button to
//!   leave them all. A GET changes nothing: link scanners follow links.
//! - `POST` of that form: the lists checked stay (or become again) subscribed, the others
//!   are left; "leave all" leaves every list.
//!
//! Every change is an `unsubscribed` event (with the lists and the message's campaign in
//! its detail); the consent
//! record of a re-subscription says `preferences`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use store::{AudienceStore, Consent, ControlStore, EventKind, EventStore, MemberStatus, NewEvent};

use crate::ApiState;

/// The page's words in one language.
struct Words {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    save: &'static str,
    leave_all: &'static str,
    saved: &'static str,
    left: &'static str,
    invalid: &'static str,
    none: &'static str,
    retry: &'static str,
}

const ENGLISH: Words = Words {
    lang: "en",
    title: "Your subscriptions",
    intro: "Choose the lists you want to receive:",
    save: "Save",
    leave_all: "Unsubscribe from all",
    saved: "Your choices are saved.",
    left: "You are unsubscribed.",
    invalid: "This link is not valid.",
    none: "You are on no list.",
    retry: "Please try again in a moment.",
};

const JAPANESE: Words = Words {
    lang: "ja",
    title: "配信設定",
    intro: "受け取るリストを選んでください：",
    save: "保存する",
    leave_all: "すべて配信停止する",
    saved: "設定を保存しました。",
    left: "配信を停止しました。",
    invalid: "このリンクは無効です。",
    none: "登録されているリストはありません。",
    retry: "しばらくしてからもう一度お試しください。",
};

fn words(locale: Option<&str>) -> &'static Words {
    match locale {
        Some(l) if l.to_ascii_lowercase().starts_with("ja") => &JAPANESE,
        _ => &ENGLISH,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, words: &Words, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title></head><body><main><h1>{}</h1>{body}</main></body></html>",
            words.lang, words.title, words.title
        ),
    )
        .into_response()
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        &ENGLISH,
        format!("<p>{}</p>", ENGLISH.invalid),
    )
}

/// Tokens are hex and a dot: anything else is refused before any work.
fn plausible(token: &str) -> bool {
    token.len() <= 4096 && token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.')
}

/// The recipient's contact and its lists (id, name, subscribed), or `None` for a token
/// that is not ours or a contact that is gone.
struct Recipient {
    named: tenancy::verp::Preferences,
    contact: store::Contact,
    lists: Vec<(String, String, bool)>,
}

async fn recipient<S: AudienceStore>(
    state: &ApiState<S>,
    token: &str,
) -> Result<Option<Recipient>, store::StoreError> {
    if !plausible(token) {
        return Ok(None);
    }
    let Some(named) = state.tenancy.return_paths.parse_preferences_token(token) else {
        return Ok(None);
    };
    let store = &state.tenancy.store;
    let Some(contact) = store.contact(&named.tenant_id, &named.recipient).await? else {
        return Ok(None);
    };
    let (memberships, lists) = tokio::try_join!(
        store.memberships(&named.tenant_id, contact.id),
        store.lists(&named.tenant_id)
    )?;
    let on: Vec<(String, String, bool)> = memberships
        .iter()
        .filter(|m| m.status != MemberStatus::Unconfirmed)
        .filter_map(|m| {
            let list = lists.iter().find(|l| l.id == m.list_id)?;
            Some((
                list.id.clone(),
                list.name.clone(),
                m.status == MemberStatus::Subscribed,
            ))
        })
        .collect();
    Ok(Some(Recipient {
        named,
        contact,
        lists: on,
    }))
}

fn form(token: &str, words: &Words, lists: &[(String, String, bool)]) -> String {
    if lists.is_empty() {
        return format!("<p>{}</p>", words.none);
    }
    let mut out = format!(
        "<form method=\"post\" action=\"{token}\"><p>{}</p>",
        words.intro
    );
    for (i, (id, name, subscribed)) in lists.iter().enumerate() {
        out.push_str(&format!(
            "<p><input type=\"checkbox\" id=\"l{i}\" name=\"list\" value=\"{}\"{}> <label for=\"l{i}\">{}</label></p>",
            escape(id),
            if *subscribed { " checked" } else { "" },
            escape(name)
        ));
    }
    out.push_str(&format!(
        "<p><button type=\"submit\" name=\"action\" value=\"save\">{}</button> \
         <button type=\"submit\" name=\"action\" value=\"leave_all\">{}</button></p></form>",
        words.save, words.leave_all
    ));
    out
}

/// `GET /v1/preferences/{token}`
pub(crate) async fn show<S: AudienceStore + ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(token): Path<String>,
) -> Response {
    match recipient(&state, &token).await {
        Ok(Some(found)) => {
            let words = words(found.contact.locale.as_deref());
            page(StatusCode::OK, words, form(&token, words, &found.lists))
        }
        Ok(None) => unknown(),
        Err(err) => {
            tracing::error!(error = %err, "reading preferences failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                &ENGLISH,
                format!("<p>{}</p>", ENGLISH.retry),
            )
        }
    }
}

/// The form's fields (`application/x-www-form-urlencoded`): checked list ids, the action,
/// and whether this is a one-click unsubscribe: any POST without the page's `action`
/// (RFC 8058 allows `multipart/form-data` as well as a urlencoded
/// `List-Unsubscribe=One-Click`; either way it is not our form).
fn fields(body: &[u8]) -> (HashSet<String>, Option<String>, bool) {
    let mut lists = HashSet::new();
    let mut action = None;
    for (name, value) in form_urlencoded(body) {
        match name.as_str() {
            "list" => {
                lists.insert(value);
            }
            "action" => action = Some(value),
            _ => {}
        }
    }
    let one_click = action.is_none();
    (lists, action, one_click)
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    let decode = |part: &str| -> String {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// `POST /v1/preferences/{token}`: one-click (RFC 8058) or the page's form.
pub(crate) async fn save<S: AudienceStore + ControlStore + EventStore + 'static>(
    State(state): State<Arc<ApiState<S>>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let found = match recipient(&state, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return unknown(),
        Err(err) => {
            tracing::error!(error = %err, "reading preferences failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                &ENGLISH,
                format!("<p>{}</p>", ENGLISH.retry),
            );
        }
    };
    let words = words(found.contact.locale.as_deref());
    let (checked, action, one_click) = fields(&body);
    // Which lists to leave and which to (re)join.
    let (leave, join): (Vec<String>, Vec<String>) = if one_click {
        let on: Vec<String> = found
            .lists
            .iter()
            .filter(|(id, _, subscribed)| *subscribed && found.named.lists.contains(id))
            .map(|(id, _, _)| id.clone())
            .collect();
        (on, Vec::new())
    } else if action.as_deref() == Some("leave_all") {
        let on = found
            .lists
            .iter()
            .filter(|(_, _, subscribed)| *subscribed)
            .map(|(id, _, _)| id.clone())
            .collect();
        (on, Vec::new())
    } else {
        let leave = found
            .lists
            .iter()
            .filter(|(id, _, subscribed)| *subscribed && !checked.contains(id))
            .map(|(id, _, _)| id.clone())
            .collect();
        let join = found
            .lists
            .iter()
            .filter(|(id, _, subscribed)| !*subscribed && checked.contains(id))
            .map(|(id, _, _)| id.clone())
            .collect();
        (leave, join)
    };
    let tenant = &found.named.tenant_id;
    let now = crate::contacts::now_ms();
    let consent = Consent::given("preferences", now, None);
    let store = &state.tenancy.store;
    for (lists, status) in [
        (&leave, MemberStatus::Unsubscribed),
        (&join, MemberStatus::Subscribed),
    ] {
        for list in lists {
            if let Err(err) = store
                .set_members(tenant, list, &[(found.contact.id, status)], &consent)
                .await
            {
                tracing::error!(error = %err, "saving preferences failed");
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    words,
                    format!("<p>{}</p>", words.retry),
                );
            }
        }
    }
    if !leave.is_empty() {
        // The campaign the message came from counts the unsubscribe in its report.
        let mut detail = events::inbound::campaign_detail(store, tenant, &found.named.message_id)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "the unsubscribe's campaign is unknown");
                Map::new()
            });
        detail.insert("lists".into(), Value::from(leave.clone()));
        detail.insert(
            "via".into(),
            Value::from(if one_click {
                "one-click"
            } else {
                "preferences"
            }),
        );
        state.events.record(vec![NewEvent {
            tenant_id: tenant.clone(),
            time_ms: now,
            kind: EventKind::Unsubscribed,
            message_id: found.named.message_id.clone(),
            recipient: found.named.recipient.clone(),
            custom_id: None,
            tags: None,
            detail: Some(Value::Object(detail).to_string()),
        }]);
    }
    let said = if one_click || action.as_deref() == Some("leave_all") {
        words.left
    } else {
        words.saved
    };
    page(StatusCode::OK, words, format!("<p>{said}</p>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        let (lists, action, one_click) = fields(b"list=ls_1&list=ls%5F2&action=save&x=%ZZ+y");
        assert_eq!(
            lists,
            HashSet::from(["ls_1".to_string(), "ls_2".to_string()])
        );
        assert_eq!(action.as_deref(), Some("save"));
        assert!(!one_click);
        assert!(fields(b"List-Unsubscribe=One-Click").2);
        assert!(fields(b"--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--").2);
        assert_eq!(
            form_urlencoded(b"a=%E6%97%A5+b"),
            vec![("a".into(), "日 b".into())]
        );
        assert_eq!(form_urlencoded(b"a=%4"), vec![("a".into(), "%4".into())]);
    }
}
