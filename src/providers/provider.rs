//! The provider trait: one implementation per wire and login (OpenAI-compatible,
//! Anthropic, Nous with its Hermes login, offline). Each makes single attempts; the
//! registry (`Providers`) wraps every one in the same retry and redaction path.

use super::call::{CallOutcome, CallRequest, TokenSink};
use super::error::ProviderError;
use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one attempt tells the retry loop beyond its result.
#[derive(Debug, Default)]
pub struct Attempt {
    /// True once any output (text or a tool call) went to the sink: no retry after.
    pub emitted: bool,
    /// The login bearer the attempt used, when a login (not a static key) signed it:
    /// a 401 then refreshes that login once.
    pub login_bearer: Option<Secret>,
}

/// One configured provider.
pub trait Provider: Send + Sync {
    fn id(&self) -> ProviderId;

    /// How it is signed in, as `GET /api/providers` says: `api_key`, `hermes_login`
    /// or `none`.
    fn auth(&self) -> &'static str {
        "api_key"
    }

    /// Whether it can be called now, with a reason when not (a dead login).
    fn usability(&self) -> Result<(), String> {
        Ok(())
    }

    /// Its static secrets (API keys), masked in everything an upstream sends back.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Secrets that change while running (a login's current tokens).
    fn live_secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether catalog prices may estimate a call's cost when the answer reports none
    /// (not for placeholder answers).
    fn estimates_cost(&self) -> bool {
        true
    }

    /// Before the first attempt: a login loads or refreshes here, so its token is
    /// masked from the start.
    fn prepare(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }

    /// One attempt at the call; `secrets` mask error bodies.
    fn attempt<'a>(
        &'a self,
        request: &'a CallRequest<'a>,
        sink: &'a mut dyn TokenSink,
        progress: &'a mut Attempt,
        secrets: &'a [String],
    ) -> BoxFuture<'a, Result<CallOutcome, ProviderError>>;

    /// After a 401 signed by `used` (a login bearer): refresh the login unless
    /// another call already did. `Ok(true)`: try again at once.
    fn after_unauthorized<'a>(
        &'a self,
        _used: &'a Secret,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async { Ok(false) })
    }

    /// Where its model list lives, and the key to ask with.
    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>>;
}
