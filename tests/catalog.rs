//! The model catalog against mock providers: live lists, fallbacks, filters, pages,
//! tiers, the background fetch, cost from prices, warnings and the CLI table.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::mock::{anthropic_stream, openai_stream, MockProvider, Recorded, Reply};
use support::{command, Server};

fn openrouter_models() -> Value {
    json!({"data": [
        {"id": "meta-llama/llama-3.1-8b-instruct", "name": "Llama 8B", "context_length": 131072, "pricing": {"prompt": "0.00000002", "completion": "0.00000003"}},
        {"id": "anthropic/claude-sonnet-4.5", "name": "Sonnet", "context_length": 1000000, "pricing": {"prompt": "0.000003", "completion": "0.000015"}},
        {"id": "vendor/mid", "name": "Mid", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
        {"id": "vendor/gift:free", "name": "Gift", "pricing": {"prompt": "0", "completion": "0"}},
        {"id": "vendor/unpriced-70b", "name": "Unpriced"}
    ]})
}

fn mock_for(models: Value) -> MockProvider {
    MockProvider::start(move |r: &Recorded, _| {
        if r.method == "GET" && r.path.contains("/models") {
            return Reply::error(200, &models.to_string());
        }
        let text = if r.agent() == "orchestrator" {
            r#"{"agents":["researcher"]}"#
        } else {
            "answer"
        };
        Reply::sse(&openai_stream(&[text], Some((1_000_000, 100_000, None))))
    })
}

fn models_of(server: &Server, query: &str) -> Value {
    let r = server.get(&format!("/api/models?{query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn openrouter_live_list_with_prices_tiers_and_cost() {
    let mock = mock_for(openrouter_models());
    let base = mock.url("/api/v1");
    let server = Server::start(&[
        ("OPENROUTER_API_KEY", "sk-or-cat-1234"),
        ("OPENROUTER_BASE_URL", &base),
    ]);
    let v = models_of(&server, "provider=openrouter&refresh=1");
    assert_eq!(v["provider"], "openrouter");
    assert_eq!(v["source"], "live");
    assert!(v["fetched_at"].as_str().unwrap().ends_with('Z'));
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 5);
    let by_id = |id: &str| models.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(
        by_id("anthropic/claude-sonnet-4.5")["price_out_per_mtok"],
        15.0
    );
    assert_eq!(
        by_id("anthropic/claude-sonnet-4.5")["context_length"],
        1000000
    );
    assert_eq!(by_id("anthropic/claude-sonnet-4.5")["tier"], "premium");
    assert_eq!(by_id("meta-llama/llama-3.1-8b-instruct")["tier"], "budget");
    assert_eq!(by_id("vendor/mid")["tier"], "standard");
    assert_eq!(by_id("vendor/gift:free")["tier"], "free");
    assert_eq!(by_id("vendor/unpriced-70b")["tier"], "standard");
    assert_eq!(
        by_id("vendor/unpriced-70b")["price_in_per_mtok"],
        Value::Null
    );
    let list_req = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "GET")
        .unwrap();
    assert_eq!(list_req.path, "/api/v1/models");
    assert_eq!(
        list_req.header("authorization"),
        Some("Bearer sk-or-cat-1234")
    );

    // The provider list reports the live catalog's size.
    let providers = server.get("/api/providers").json();
    let or = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openrouter")
        .unwrap()
        .clone();
    assert_eq!(
        (
            or["catalog"].as_str(),
            or["models"].as_u64(),
            or["usable"].as_bool()
        ),
        (Some("live"), Some(5), Some(true))
    );
    assert!(!providers.to_string().contains("sk-or-cat-1234"));

    // Without usage.cost from the provider, cost comes from catalog prices:
    // llama 8b: 1M in × $0.02 + 100k out × $0.03 per Mtok.
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let events = server.stream(&id, &[]).collect();
    let end = events
        .iter()
        .find(|e| e.event == "stream_end" && e.data["agent"] == "researcher")
        .unwrap();
    let cost = end.data["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.023).abs() < 1e-9, "{cost}");
}

#[test]
fn the_catalog_is_fetched_in_the_background_at_startup() {
    let mock = mock_for(openrouter_models());
    let base = mock.url("/api/v1");
    let server = Server::start(&[
        ("OPENROUTER_API_KEY", "k-12345"),
        ("OPENROUTER_BASE_URL", &base),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = models_of(&server, "");
        if v["source"] == "live" {
            assert_eq!(v["provider"], "openrouter");
            break;
        }
        assert!(Instant::now() < deadline, "catalog never fetched");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_down_provider_falls_back_to_the_built_in_list() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let base = format!("http://{closed}/api/v1");
    let server = Server::start(&[
        ("OPENROUTER_API_KEY", "k-12345"),
        ("OPENROUTER_BASE_URL", &base),
    ]);
    let v = models_of(&server, "provider=openrouter&refresh=1");
    assert_eq!(v["source"], "fallback");
    let ids: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"anthropic/claude-sonnet-4.5")
            && ids.contains(&"meta-llama/llama-3.1-8b-instruct")
    );
    let providers = server.get("/api/providers").json();
    let or = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openrouter")
        .unwrap()
        .clone();
    assert_eq!(or["catalog"], "fallback");
    assert_eq!(
        or["usable"], true,
        "a catalog failure does not make the provider unusable"
    );
}

#[test]
fn openai_non_chat_models_are_left_out() {
    let mock = mock_for(json!({"object": "list", "data": [
        {"id": "gpt-4o", "object": "model"}, {"id": "gpt-4o-mini"}, {"id": "text-embedding-3-large"},
        {"id": "whisper-1"}, {"id": "tts-1-hd"}, {"id": "dall-e-3"}, {"id": "gpt-4o-realtime-preview"},
        {"id": "omni-moderation-latest"}, {"id": "sora-2"}
    ]}));
    let base = mock.url("/v1");
    let server = Server::start(&[
        ("OPENAI_API_KEY", "sk-openai-xyz"),
        ("OPENAI_BASE_URL", &base),
    ]);
    let v = models_of(&server, "provider=openai&refresh=1");
    let ids: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o", "gpt-4o-mini"]);
    assert_eq!(v["models"][1]["tier"], "budget");
}

#[test]
fn anthropic_pages_are_followed() {
    let mock = MockProvider::start(|r: &Recorded, _| {
        if r.path.starts_with("/v1/models") {
            let page = if r.path.contains("after_id=claude-page-1-last") {
                json!({"data": [{"id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1", "type": "model"}], "has_more": false, "last_id": "claude-opus-4-1-20250805"})
            } else {
                json!({"data": [{"id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5", "type": "model"}, {"id": "claude-page-1-last", "display_name": "Last"}], "has_more": true, "last_id": "claude-page-1-last"})
            };
            return Reply::error(200, &page.to_string());
        }
        Reply::sse(&anthropic_stream(&["x"], 1, 1))
    });
    let base = mock.url("");
    let server = Server::start(&[
        ("ANTHROPIC_API_KEY", "sk-ant-cat"),
        ("ANTHROPIC_BASE_URL", &base),
    ]);
    let v = models_of(&server, "provider=anthropic&refresh=1");
    let ids: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "claude-sonnet-4-5-20250929",
            "claude-page-1-last",
            "claude-opus-4-1-20250805"
        ]
    );
    assert_eq!(v["models"][0]["name"], "Claude Sonnet 4.5");
    assert_eq!(v["models"][2]["tier"], "premium");
    let gets: Vec<Recorded> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert!(gets[0].path.starts_with("/v1/models?limit=1000"));
    assert_eq!(gets[0].header("x-api-key"), Some("sk-ant-cat"));
    assert_eq!(gets[0].header("anthropic-version"), Some("2023-06-01"));
    assert!(gets
        .iter()
        .any(|r| r.path.contains("after_id=claude-page-1-last")));
}

#[test]
fn custom_and_unknown_provider_queries() {
    let mock = mock_for(
        json!({"data": [{"id": "llama3.1:8b", "object": "model"}, {"id": "qwen2.5-coder:32b"}]}),
    );
    let base = mock.url("/v1");
    let server = Server::start(&[("CUSTOM_BASE_URL", &base)]);
    let v = models_of(&server, "provider=custom&refresh=1");
    assert_eq!(v["source"], "live");
    assert_eq!(v["models"][0]["tier"], "budget");
    for q in ["provider=gemini", "provider=openai"] {
        let r = server.get(&format!("/api/models?{q}"));
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["error"]["field"], "provider");
    }
    // The CLI prints the same live list as a table.
    let out = command(&[("CUSTOM_BASE_URL", &base)])
        .args(["models", "--provider", "custom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2 models from Custom") && text.contains("(live)"),
        "{text}"
    );
    assert!(
        text.contains("llama3.1:8b") && text.contains("budget"),
        "{text}"
    );
    let out = command(&[])
        .args(["models", "--provider", "openai"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_override_the_live_catalog_lacks_runs_with_a_warning() {
    let mock = mock_for(openrouter_models());
    let base = mock.url("/api/v1");
    let server = Server::start(&[
        ("OPENROUTER_API_KEY", "k-12345"),
        ("OPENROUTER_BASE_URL", &base),
    ]);
    models_of(&server, "provider=openrouter&refresh=1");
    let id = server.start_run(r#"{"task":"t","agents":["researcher"],"models":{"writer":"vendor/brand-new-model","researcher":"vendor/mid"}}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| {
            e.event == "status"
                && e.data["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("not in"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "only the unlisted model warns");
    assert_eq!(warnings[0].data["agent"], "writer");
    let pos = events
        .iter()
        .position(|e| {
            e.data["detail"]
                .as_str()
                .is_some_and(|d| d.contains("not in"))
        })
        .unwrap();
    assert_eq!(events[pos + 1].event, "stream_start");
    assert_eq!(events[pos + 1].data["model"], "vendor/brand-new-model");
    assert_eq!(
        mock.requests_of("writer")[0].json()["model"],
        "vendor/brand-new-model"
    );
}
