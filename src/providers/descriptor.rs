//! What each provider is, as data: how it is set up, how canonical `vendor/model` ids
//! map to its own, what it substitutes for a model it cannot serve, and how its model
//! list is read. The one place that tells providers apart by id; the rest of the
//! program asks these properties (or the `Provider` itself).

use crate::model::agent::AgentKind;
use crate::model::provider_id::ProviderId;

/// How a provider names models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelIds {
    /// Canonical `vendor/model` ids as they are (aggregators, local servers).
    Canonical,
    /// Its own ids: `vendor/` is dropped for its own vendor (and dots in versions become
    /// dashes when `dashed_versions`); other vendors' models it cannot serve.
    Native {
        vendor: &'static str,
        dashed_versions: bool,
    },
}

/// How its model list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogWire {
    /// `GET {base}/models` with a bearer (OpenAI style).
    OpenAiStyle,
    /// `GET {base}/v1/models` pages with `x-api-key` (Anthropic).
    AnthropicPages,
    /// No live list (offline).
    None,
}

#[derive(Debug)]
pub struct Descriptor {
    /// What to set when it is not configured.
    pub setup_hint: &'static str,
    pub model_ids: ModelIds,
    /// The models used when the roster's model is foreign: `(writer, the others)`.
    pub substitutes: (&'static str, &'static str),
    pub catalog: CatalogWire,
    /// Its live list holds embeddings, audio and image models too: keep chat models.
    pub catalog_has_non_chat_models: bool,
    /// How it is signed in when it has no key of its own (before any is configured).
    pub unkeyed_auth: &'static str,
}

const AGGREGATOR_SUBSTITUTES: (&str, &str) =
    ("anthropic/claude-sonnet-4.5", "anthropic/claude-haiku-4.5");

pub fn descriptor(id: ProviderId) -> &'static Descriptor {
    match id {
        ProviderId::OpenRouter => &Descriptor {
            setup_hint: "set OPENROUTER_API_KEY",
            model_ids: ModelIds::Canonical,
            substitutes: AGGREGATOR_SUBSTITUTES,
            catalog: CatalogWire::OpenAiStyle,
            catalog_has_non_chat_models: false,
            unkeyed_auth: "api_key",
        },
        ProviderId::Nous => &Descriptor {
            setup_hint: "set NOUS_API_KEY or log in with the Hermes CLI (auth.json in HERMES_HOME)",
            model_ids: ModelIds::Canonical,
            substitutes: AGGREGATOR_SUBSTITUTES,
            catalog: CatalogWire::OpenAiStyle,
            catalog_has_non_chat_models: false,
            unkeyed_auth: "hermes_login",
        },
        ProviderId::Anthropic => &Descriptor {
            setup_hint: "set ANTHROPIC_API_KEY",
            model_ids: ModelIds::Native {
                vendor: "anthropic",
                dashed_versions: true,
            },
            substitutes: ("claude-sonnet-4-5", "claude-haiku-4-5"),
            catalog: CatalogWire::AnthropicPages,
            catalog_has_non_chat_models: false,
            unkeyed_auth: "api_key",
        },
        ProviderId::OpenAi => &Descriptor {
            setup_hint: "set OPENAI_API_KEY",
            model_ids: ModelIds::Native {
                vendor: "openai",
                dashed_versions: false,
            },
            substitutes: ("gpt-4o", "gpt-4o-mini"),
            catalog: CatalogWire::OpenAiStyle,
            catalog_has_non_chat_models: true,
            unkeyed_auth: "api_key",
        },
        ProviderId::Custom => &Descriptor {
            setup_hint: "set CUSTOM_BASE_URL",
            model_ids: ModelIds::Canonical,
            substitutes: AGGREGATOR_SUBSTITUTES,
            catalog: CatalogWire::OpenAiStyle,
            catalog_has_non_chat_models: false,
            unkeyed_auth: "api_key",
        },
        ProviderId::Offline => &Descriptor {
            setup_hint: "always available",
            model_ids: ModelIds::Canonical,
            substitutes: AGGREGATOR_SUBSTITUTES,
            catalog: CatalogWire::None,
            catalog_has_non_chat_models: false,
            unkeyed_auth: "none",
        },
    }
}

impl Descriptor {
    /// The provider-native id for a canonical or native `model`; `None` when it
    /// cannot serve it (a Llama model on Anthropic).
    pub fn native_model_id(&self, model: &str) -> Option<String> {
        match self.model_ids {
            ModelIds::Canonical => Some(model.to_string()),
            ModelIds::Native {
                vendor,
                dashed_versions,
            } => match model.split_once('/') {
                None => Some(model.to_string()),
                Some((v, rest)) if v == vendor && dashed_versions => Some(rest.replace('.', "-")),
                Some((v, rest)) if v == vendor => Some(rest.to_string()),
                Some(_) => None,
            },
        }
    }

    /// The model used for an agent of this kind when the roster's model is foreign.
    pub fn substitute(&self, kind: AgentKind) -> &'static str {
        match kind {
            AgentKind::Writer => self.substitutes.0,
            _ => self.substitutes.1,
        }
    }

    pub fn has_live_catalog(&self) -> bool {
        self.catalog != CatalogWire::None
    }
}
