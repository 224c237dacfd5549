//! The catalog's unit tests: tiers, parsing each provider's list, prices.

use super::*;

#[test]
fn tiers_by_price_then_by_name() {
    assert_eq!(tier_of("x/y:free", Some(1.0), Some(1.0)), Tier::Free);
    assert_eq!(tier_of("x/y", Some(0.0), Some(0.0)), Tier::Free);
    assert_eq!(tier_of("x/y", Some(0.1), Some(0.99)), Tier::Budget);
    assert_eq!(tier_of("x/y", Some(1.0), Some(1.0)), Tier::Standard);
    assert_eq!(tier_of("x/y", Some(3.0), Some(15.0)), Tier::Premium);
    assert_eq!(
        tier_of("meta-llama/llama-3.1-8b-instruct", None, None),
        Tier::Budget
    );
    assert_eq!(tier_of("gpt-4o-mini", None, None), Tier::Budget);
    assert_eq!(tier_of("claude-haiku-4-5", None, None), Tier::Budget);
    assert_eq!(tier_of("gemini-2.0-flash", None, None), Tier::Budget);
    assert_eq!(tier_of("llama-3.3-70b", None, None), Tier::Standard);
    assert_eq!(tier_of("claude-sonnet-4-5", None, None), Tier::Standard);
    assert_eq!(tier_of("gpt-4o", None, None), Tier::Standard);
    assert_eq!(
        tier_of("hermes-3-llama-3.1-405b", None, None),
        Tier::Premium
    );
    assert_eq!(tier_of("claude-opus-4-1", None, None), Tier::Premium);
    assert_eq!(tier_of("o1", None, None), Tier::Premium);
    assert_eq!(tier_of("mystery-model", None, None), Tier::Standard);
}

#[test]
fn openai_non_chat_models_are_filtered() {
    let body: Value = serde_json::json!({"data": [
        {"id": "gpt-4o"}, {"id": "text-embedding-3-small"}, {"id": "tts-1"}, {"id": "whisper-1"},
        {"id": "gpt-4o-transcribe"}, {"id": "dall-e-3"}, {"id": "gpt-image-1"}, {"id": "omni-moderation-latest"},
        {"id": "gpt-4o-realtime-preview"}, {"id": "gpt-4o-audio-preview"}, {"id": "babbage-002"}, {"id": "davinci-002"},
        {"id": "gpt-4o-search-preview"}, {"id": "computer-use-preview"}, {"id": "sora-2"}, {"id": "o3-mini"}
    ]});
    let ids: Vec<String> = parse_openai_style(ProviderId::OpenAi, &body)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["gpt-4o", "o3-mini"]);
}

#[test]
fn openrouter_prices_become_per_million_tokens() {
    let body: Value = serde_json::json!({"data": [
        {"id": "a/b", "name": "A B", "context_length": 8192, "pricing": {"prompt": "0.000003", "completion": "0.000015"}},
        {"id": "c/d:free", "name": "C", "pricing": {"prompt": "0", "completion": "0"}},
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}}
    ]});
    let m = parse_openai_style(ProviderId::OpenRouter, &body).unwrap();
    assert_eq!(m[0].price_in_per_mtok, Some(3.0));
    assert_eq!(m[0].price_out_per_mtok, Some(15.0));
    assert_eq!(m[0].context_length, Some(8192));
    assert_eq!(m[0].tier, Tier::Premium);
    assert_eq!(m[1].tier, Tier::Free);
    assert_eq!(m[2].price_out_per_mtok, None);
    assert!(
        parse_openai_style(ProviderId::OpenRouter, &serde_json::json!({"models": []})).is_err()
    );
}

#[test]
fn anthropic_pages_report_the_next_cursor() {
    let body = serde_json::json!({"data": [{"id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5"}], "has_more": true, "last_id": "claude-sonnet-4-5-20250929"});
    let (models, next) = parse_anthropic_page(&body).unwrap();
    assert_eq!(models[0].name, "Claude Sonnet 4.5");
    assert_eq!(models[0].price_out_per_mtok, Some(15.0));
    assert_eq!(next.as_deref(), Some("claude-sonnet-4-5-20250929"));
    let (_, next) =
        parse_anthropic_page(&serde_json::json!({"data": [], "has_more": false})).unwrap();
    assert_eq!(next, None);
}

#[test]
fn catalog_cost_uses_prices_per_million() {
    let c = Catalog::new(&[]);
    let cost = c
        .cost(
            ProviderId::Anthropic,
            "claude-sonnet-4-5",
            1_000_000,
            100_000,
        )
        .unwrap();
    assert!((cost - 4.5).abs() < 1e-9);
    assert_eq!(c.cost(ProviderId::Nous, "Hermes-4-70B", 10, 10), None);
    assert_eq!(c.cost(ProviderId::Anthropic, "unknown", 10, 10), None);
}
