//! Model routing (SPEC §4.3): canonical `vendor/model` ids to provider-native ids, with
//! substitution when a direct provider cannot serve the model at all.

use crate::model::agent::AgentKind;
use crate::model::provider_id::ProviderId;
use crate::providers::descriptor::descriptor;

/// The provider-native id for `model`, and the original id when it had to be substituted.
pub fn resolve_model(
    provider: ProviderId,
    model: &str,
    kind: AgentKind,
) -> (String, Option<String>) {
    match normalize_model_id(provider, model) {
        Some(native) => (native, None),
        None => (
            default_model(provider, kind).to_string(),
            Some(model.to_string()),
        ),
    }
}

/// `None` when the provider cannot serve this model (a Llama model on Anthropic).
pub fn normalize_model_id(provider: ProviderId, model: &str) -> Option<String> {
    descriptor(provider).native_model_id(model)
}

/// What a direct provider uses for an agent of this kind when the roster's model is foreign.
pub fn default_model(provider: ProviderId, kind: AgentKind) -> &'static str {
    descriptor(provider).substitute(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_ids_drop_vendor_and_dash_the_version() {
        assert_eq!(
            normalize_model_id(ProviderId::Anthropic, "anthropic/claude-sonnet-4.5").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            normalize_model_id(ProviderId::Anthropic, "anthropic/claude-haiku-4.5").as_deref(),
            Some("claude-haiku-4-5")
        );
        assert_eq!(
            normalize_model_id(ProviderId::Anthropic, "claude-opus-4-1").as_deref(),
            Some("claude-opus-4-1")
        );
        assert_eq!(
            normalize_model_id(ProviderId::Anthropic, "meta-llama/llama-3.1-8b-instruct"),
            None
        );
    }

    #[test]
    fn openai_ids_drop_vendor() {
        assert_eq!(
            normalize_model_id(ProviderId::OpenAi, "openai/gpt-4o").as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            normalize_model_id(ProviderId::OpenAi, "gpt-4o-mini").as_deref(),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            normalize_model_id(ProviderId::OpenAi, "qwen/qwen-2.5-coder-32b-instruct"),
            None
        );
    }

    #[test]
    fn aggregators_pass_ids_unchanged() {
        for p in [ProviderId::OpenRouter, ProviderId::Nous, ProviderId::Custom] {
            assert_eq!(
                normalize_model_id(p, "meta-llama/llama-3.3-70b-instruct").as_deref(),
                Some("meta-llama/llama-3.3-70b-instruct")
            );
        }
    }

    #[test]
    fn substitution_uses_the_kind_default_and_reports_the_original() {
        let (m, sub) = resolve_model(
            ProviderId::Anthropic,
            "meta-llama/llama-3.1-8b-instruct",
            AgentKind::Specialist,
        );
        assert_eq!(m, "claude-haiku-4-5");
        assert_eq!(sub.as_deref(), Some("meta-llama/llama-3.1-8b-instruct"));
        let (m, _) = resolve_model(ProviderId::Anthropic, "x/y", AgentKind::Writer);
        assert_eq!(m, "claude-sonnet-4-5");
        let (m, _) = resolve_model(ProviderId::OpenAi, "x/y", AgentKind::Planner);
        assert_eq!(m, "gpt-4o-mini");
        let (m, _) = resolve_model(ProviderId::OpenAi, "x/y", AgentKind::Writer);
        assert_eq!(m, "gpt-4o");
        let (m, sub) = resolve_model(ProviderId::OpenRouter, "x/y", AgentKind::Writer);
        assert_eq!((m.as_str(), sub), ("x/y", None));
    }
}
