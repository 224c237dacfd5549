//! Nous Portal through its Hermes login (no `NOUS_API_KEY`): the Chat Completions wire
//! with the login's bearer and inference URL, refreshed before it expires and once
//! after a 401.

use super::call::{CallOutcome, CallRequest, TokenSink};
use super::client::HttpClient;
use super::error::ProviderError;
use super::nous_auth::NousAuth;
use super::openai::{send, Wire};
use super::provider::{Attempt, BoxFuture, Provider};
use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use std::sync::Arc;

pub struct NousLogin {
    pub auth: Arc<NousAuth>,
    pub client: HttpClient,
}

impl Provider for NousLogin {
    fn id(&self) -> ProviderId {
        ProviderId::Nous
    }

    fn auth(&self) -> &'static str {
        "hermes_login"
    }

    fn usability(&self) -> Result<(), String> {
        self.auth.status()
    }

    fn live_secrets(&self) -> Vec<String> {
        self.auth.live_secrets()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move { self.auth.bearer(&self.client).await.map(|_| ()) })
    }

    fn attempt<'a>(
        &'a self,
        request: &'a CallRequest<'a>,
        sink: &'a mut dyn TokenSink,
        progress: &'a mut Attempt,
        secrets: &'a [String],
    ) -> BoxFuture<'a, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            let bearer = self.auth.bearer(&self.client).await?;
            progress.login_bearer = Some(bearer.token.clone());
            let wire = Wire {
                base_url: &bearer.base_url,
                bearer: Some(bearer.token.expose()),
                app_headers: false,
            };
            send(&self.client, &wire, request, sink, progress, secrets).await
        })
    }

    fn after_unauthorized<'a>(
        &'a self,
        used: &'a Secret,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            self.auth.after_unauthorized(&self.client, used).await?;
            Ok(true)
        })
    }

    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>> {
        Box::pin(async move {
            let b = self
                .auth
                .bearer(&self.client)
                .await
                .map_err(|e| e.message)?;
            Ok((b.base_url, Some(b.token)))
        })
    }
}
