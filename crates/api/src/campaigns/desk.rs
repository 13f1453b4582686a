//! The console's campaign desk: the same functions the `/v1/campaigns` handlers call,
//! answering the console's types.

use std::sync::Arc;

use campaigns::desk::{Answer, CampaignDesk, Move, Preview, Refusal};
use campaigns::documents::Audience;
use serde_json::{Map, Value};
use store::{Campaign, CampaignState};

use super::{CampaignsStore, composer, failed, report, tenants_campaign};
use crate::ApiState;
use crate::error::ApiError;

/// The desk over the API's state.
pub struct Desk<S> {
    pub state: Arc<ApiState<S>>,
}

fn refusal(err: ApiError) -> Refusal {
    let first = err.errors.into_iter().next();
    Refusal {
        missing: err.status == axum::http::StatusCode::NOT_FOUND,
        field: first.as_ref().and_then(|e| e.field.clone()),
        message: first.map_or_else(|| "refused".to_string(), |e| e.message),
    }
}

impl<S: CampaignsStore> Desk<S> {
    async fn previews(
        &self,
        tenant_id: &str,
        id: &str,
        address: Option<&str>,
    ) -> Result<Vec<Preview>, ApiError> {
        let campaign = tenants_campaign(&self.state, tenant_id, id).await?;
        let composer = composer::Composer {
            state: self.state.clone(),
        };
        let prepared = composer.prepared(&campaign).await.map_err(failed)?;
        let contact = match address {
            Some(address) => self.state.tenancy.store.contact(tenant_id, address).await?,
            None => None,
        };
        let mut out = Vec::new();
        for (n, variant) in prepared.variants.iter().enumerate() {
            let data = match (&contact, address) {
                (Some(contact), Some(address)) => composer::contact_data(address, Some(contact)),
                _ => variant.test_data.clone(),
            };
            let (from, rendered) = prepared
                .rendered(n, &data)
                .map_err(|err| crate::records::invalid("content", err))?;
            out.push(Preview {
                variant: variant.name.clone(),
                from,
                subject: rendered.subject,
                html: rendered.html,
                text: rendered.text,
            });
        }
        Ok(out)
    }

    async fn counted(&self, tenant_id: &str, audience: &Value) -> Result<i64, ApiError> {
        let audience = super::checked(Audience::read(audience))?;
        let store = &self.state.tenancy.store;
        let plan = campaigns::plan::resolve(store, tenant_id, &audience)
            .await
            .map_err(failed)?;
        Ok(store.audience_count(tenant_id, &plan).await?)
    }

    async fn reported(&self, tenant_id: &str, id: &str) -> Result<Value, ApiError> {
        let campaign = tenants_campaign(&self.state, tenant_id, id).await?;
        let counts = self
            .state
            .tenancy
            .store
            .campaign_counts(&campaign.id)
            .await?;
        Ok(report::report_json(&campaign, &counts))
    }
}

impl<S: CampaignsStore> CampaignDesk for Desk<S> {
    fn save<'a>(
        &'a self,
        tenant_id: &'a str,
        id: Option<&'a str>,
        fields: Map<String, Value>,
    ) -> Answer<'a, Campaign> {
        Box::pin(async move {
            match id {
                None => super::add_draft(&self.state, tenant_id, &fields).await,
                Some(id) => super::change_draft(&self.state, tenant_id, id, &fields).await,
            }
            .map_err(refusal)
        })
    }

    fn send<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> Answer<'a, Campaign> {
        Box::pin(async move {
            super::start_send(&self.state, tenant_id, id)
                .await
                .map_err(refusal)
        })
    }

    fn test<'a>(&'a self, tenant_id: &'a str, id: &'a str, to: Vec<String>) -> Answer<'a, usize> {
        Box::pin(async move {
            let to = Value::from(to);
            let addresses = super::test_addresses(Some(&to)).map_err(refusal)?;
            let campaign = tenants_campaign(&self.state, tenant_id, id)
                .await
                .map_err(refusal)?;
            super::send_tests(&self.state, &campaign, &addresses)
                .await
                .map(|sent| sent.len())
                .map_err(refusal)
        })
    }

    fn change<'a>(&'a self, tenant_id: &'a str, id: &'a str, to: Move) -> Answer<'a, Campaign> {
        let next = match to {
            Move::Pause => CampaignState::Paused,
            Move::Resume => CampaignState::Sending,
            Move::Cancel => CampaignState::Cancelled,
            Move::Unschedule => CampaignState::Draft,
        };
        Box::pin(async move {
            super::moved(&self.state, tenant_id, id, next)
                .await
                .map_err(refusal)
        })
    }

    fn winner<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        variant: Option<usize>,
    ) -> Answer<'a, Campaign> {
        Box::pin(async move {
            super::choose_winner(&self.state, tenant_id, id, variant)
                .await
                .map_err(refusal)
        })
    }

    fn preview<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        address: Option<&'a str>,
    ) -> Answer<'a, Vec<Preview>> {
        Box::pin(async move { self.previews(tenant_id, id, address).await.map_err(refusal) })
    }

    fn report<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> Answer<'a, Value> {
        Box::pin(async move { self.reported(tenant_id, id).await.map_err(refusal) })
    }

    fn count<'a>(&'a self, tenant_id: &'a str, audience: Value) -> Answer<'a, i64> {
        Box::pin(async move { self.counted(tenant_id, &audience).await.map_err(refusal) })
    }
}
