//! Run budgets over real sockets against mock providers: a token cap reached
//! mid-stream (the call dropped, the writer still writes), a USD cap with catalog
//! prices and with reported costs, a cap too small for the writer's reserve, parallel
//! specialists sharing one budget, defaults from the environment, the metrics counter.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::mock::{openai_stream, MockProvider, Part, Recorded, Reply};
use support::{Ev, Server};

/// An upstream that would stream `chunks` pieces of 40 characters, `gap` apart (a
/// runaway specialist unless something stops it), then usage and `[DONE]`.
fn long_stream(who: &str, chunks: usize, gap: Duration) -> Reply {
    let mut reply = Reply::sse(&[]);
    let piece = format!("{who} writes forty characters of text. ");
    let piece = &piece[..40.min(piece.len())];
    for _ in 0..chunks {
        reply.parts.push(Part::Sleep(gap));
        reply.parts.push(Part::Bytes(
            format!(
                "data: {}\n\n",
                json!({"choices":[{"delta":{"content":piece}}]})
            )
            .into_bytes(),
        ));
    }
    reply.parts.push(Part::Bytes(
        format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":chunks*10}})
        )
        .into_bytes(),
    ));
    reply
}

/// Specialists run away; the writer answers briefly with usage (and `writer_cost`).
fn runaway_team(writer_cost: Option<f64>) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync {
    move |r, _| {
        if r.method != "POST" {
            return Reply::error(404, r#"{"error":"no catalog here"}"#);
        }
        match r.agent() {
            "writer" => Reply::sse(&openai_stream(
                &["The ", "deliverable."],
                Some((900, 20, writer_cost)),
            )),
            who => long_stream(who, 3000, Duration::from_millis(2)),
        }
    }
}

/// Waits (bounded) until the mock saw `n` connections closed by the client mid-reply.
fn wait_closes(mock: &MockProvider, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while mock.closes().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(mock.closes().len(), n, "every dropped call closed upstream");
}

fn custom(mock: &MockProvider, extra: &[(&str, &str)]) -> Server {
    let base = mock.url("/v1");
    let mut env = vec![("CUSTOM_BASE_URL", base.as_str())];
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn of<'a>(events: &'a [Ev], event: &str, agent: &str) -> Vec<&'a Ev> {
    events
        .iter()
        .filter(|e| e.event == event && e.data["agent"] == agent)
        .collect()
}

fn done_event(events: &[Ev]) -> &Value {
    let last = events.last().expect("events");
    assert_eq!(last.event, "done", "{events:?}");
    &last.data
}

/// The agent's call was dropped by the budget: an `error` of kind `budget`, no
/// `stream_end`, and far less text than the upstream would have sent.
fn assert_dropped_by_budget(events: &[Ev], agent: &str) {
    let errors = of(events, "error", agent);
    assert_eq!(errors.len(), 1, "{agent}: {events:?}");
    assert_eq!(errors[0].data["kind"], "budget", "{:?}", errors[0]);
    assert!(
        errors[0].data["message"]
            .as_str()
            .unwrap()
            .contains("budget is spent"),
        "{:?}",
        errors[0]
    );
    assert!(of(events, "stream_end", agent).is_empty());
    let text = support::text_of(events, agent);
    assert!(
        !text.is_empty() && text.len() < 3000 * 40 / 4,
        "{agent} streamed {} characters",
        text.len()
    );
}

#[test]
fn a_token_cap_reached_mid_stream_drops_the_call_and_the_writer_still_writes() {
    let mock = MockProvider::start(runaway_team(None));
    let server = custom(&mock, &[]);
    let id = server.start_run(
        r#"{"task":"Explain B-trees","agents":["researcher","analyst"],"budget":{"tokens":11000}}"#,
    );
    let events = server.stream(&id, &[]).collect();
    let done = done_event(&events);
    assert_eq!(done["status"], "completed", "{events:?}");
    assert_eq!(done["output"], "The deliverable.");

    assert_dropped_by_budget(&events, "researcher");
    // The next specialist is skipped with the reason, and never called.
    let skipped = of(&events, "status", "analyst");
    assert!(
        skipped.iter().any(|e| e.data["state"] == "skipped"
            && e.data["detail"].as_str().unwrap().starts_with("budget: ")),
        "{skipped:?}"
    );
    assert!(mock.requests_of("analyst").is_empty());
    // The upstream connection of the dropped call was closed.
    wait_closes(&mock, 1);

    let budget = &done["budget"];
    assert_eq!(budget["tokens"], 11000);
    assert_eq!(budget["usd"], Value::Null);
    assert_eq!(budget["exhausted"], true);
    let spent = budget["spent_tokens"].as_u64().unwrap();
    // What the writer reported (920), the researcher's prompt and the text it
    // streamed before it was cut: within the cap.
    assert!(spent > 920 && spent <= 11000, "{budget}");

    // The snapshot, the run list and /metrics say so too.
    let snap = server.wait_finished(&id, Duration::from_secs(10));
    assert_eq!(snap["budget"]["exhausted"], true, "{snap}");
    assert_eq!(snap["budget"]["spent_tokens"], spent);
    assert_eq!(
        snap["config"]["budget"],
        json!({"usd": null, "tokens": 11000})
    );
    let researcher = snap["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "researcher")
        .unwrap();
    assert_eq!(researcher["error_kind"], "budget");
    assert_eq!(researcher["state"], "failed");
    let list = server.get("/api/runs").json();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["budget"]["exhausted"], true, "{list}");
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains("\nagent_mesh_runs_budget_exhausted_total 1\n"),
        "{metrics}"
    );
}

#[test]
fn a_run_within_its_budget_reports_its_spend_and_is_not_counted_as_stopped() {
    let mock = MockProvider::start(|r, _| {
        if r.method != "POST" {
            return Reply::error(404, "{}");
        }
        Reply::sse(&openai_stream(&["short ", "answer"], Some((50, 5, None))))
    });
    let server = custom(&mock, &[]);
    let id = server.start_run(r#"{"task":"t","agents":["researcher"],"budget":{"tokens":100000}}"#);
    let events = server.stream(&id, &[]).collect();
    let done = done_event(&events);
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["budget"],
        json!({"usd": null, "tokens": 100000, "spent_usd": 0.0, "spent_tokens": 110, "exhausted": false})
    );
    let metrics = server.get("/metrics").text();
    assert!(metrics.contains("\nagent_mesh_runs_budget_exhausted_total 0\n"));
    // A run without a budget carries none.
    let r = server.post_json("/api/run", r#"{"task":"t","agents":["researcher"]}"#);
    assert!(r.json().get("budget").is_none(), "{}", r.text());
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let events = server.stream(&id, &[]).collect();
    assert!(done_event(&events).get("budget").is_none());
    assert_eq!(
        server.get(&format!("/api/runs/{id}")).json()["budget"],
        Value::Null
    );
}

#[test]
fn a_usd_cap_with_catalog_prices_stops_a_priced_specialist_mid_stream() {
    // OpenRouter's built-in price list (the mock has no catalog): the writer is
    // Claude Sonnet 4.5 ($3 / $15 per Mtok), its reserve about $0.124; the researcher
    // runs Claude Opus 4.1 ($15 / $75), so the rest of $0.20 lasts about 1,000 tokens.
    let mock = MockProvider::start(runaway_team(Some(0.004)));
    let base = mock.url("/api/v1");
    let server = Server::start(&[
        ("OPENROUTER_API_KEY", "sk-or-test-key"),
        ("OPENROUTER_BASE_URL", base.as_str()),
    ]);
    let id = server.start_run(
        r#"{"task":"t","agents":["researcher","coder"],"models":{"researcher":"anthropic/claude-opus-4.1"},"budget":{"usd":0.2}}"#,
    );
    let events = server.stream(&id, &[]).collect();
    let done = done_event(&events);
    assert_eq!(done["status"], "completed", "{events:?}");
    // Every model has a price: no warning.
    assert!(
        !events.iter().any(|e| e.event == "status"
            && e.data["detail"].as_str().unwrap().contains("no price")),
        "{events:?}"
    );
    assert_dropped_by_budget(&events, "researcher");
    assert!(mock.requests_of("coder").is_empty());
    let budget = &done["budget"];
    assert_eq!(budget["usd"], 0.2);
    assert_eq!(budget["exhausted"], true);
    let spent = budget["spent_usd"].as_f64().unwrap();
    // The writer's reported $0.004 and the researcher's estimated spend.
    assert!(spent > 0.05 && spent <= 0.2, "{budget}");
    let snap = server.wait_finished(&id, Duration::from_secs(10));
    assert_eq!(snap["budget"]["unpriced"], json!([]));
}

#[test]
fn reported_costs_count_for_unpriced_models_and_the_run_says_the_cap_cannot_see_them() {
    // A custom server's models have no catalog price: the run warns at its start, and
    // the cost the provider reports (usage.cost) still counts after each call.
    let mock = MockProvider::start(|r, _| {
        if r.method != "POST" {
            return Reply::error(404, "{}");
        }
        match r.agent() {
            "writer" => Reply::sse(&openai_stream(&["ok"], Some((10, 1, Some(0.01))))),
            _ => Reply::sse(&openai_stream(&["notes"], Some((10, 5, Some(0.7))))),
        }
    });
    let server = custom(&mock, &[]);
    let id =
        server.start_run(r#"{"task":"t","agents":["researcher","analyst"],"budget":{"usd":0.5}}"#);
    let events = server.stream(&id, &[]).collect();
    let warning = events
        .iter()
        .find(|e| e.event == "status" && e.data["agent"].is_null())
        .unwrap();
    let detail = warning.data["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("budget: no price is known for")
            && detail.contains("writer (custom ")
            && detail.contains("cannot be enforced"),
        "{detail}"
    );
    // The researcher's $0.70 passed the cap: the analyst is skipped, the writer writes.
    assert!(of(&events, "stream_end", "researcher").len() == 1);
    assert!(mock.requests_of("analyst").is_empty());
    let done = done_event(&events);
    assert_eq!(done["output"], "ok");
    assert_eq!(done["budget"]["exhausted"], true);
    assert!((done["budget"]["spent_usd"].as_f64().unwrap() - 0.71).abs() < 1e-9);
    let snap = server.wait_finished(&id, Duration::from_secs(10));
    let unpriced = snap["budget"]["unpriced"].as_array().unwrap();
    assert_eq!(unpriced.len(), 5, "{snap}");
}

#[test]
fn a_cap_too_small_for_the_writers_reserve_is_refused_at_start_naming_budget() {
    let mock = MockProvider::start(runaway_team(None));
    let server = custom(&mock, &[]);
    let r = server.post_json("/api/run", r#"{"task":"t","budget":{"tokens":5000}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("budget.tokens: 5000 cannot hold the writer's reserve"),
        "{message}"
    );
    let r = server.post_json("/api/run", r#"{"task":"t","budget":{"tokens":-1}}"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("budget.tokens"));
    assert!(mock.chat_requests().is_empty(), "nothing was called");

    let base = mock.url("/api/v1");
    let openrouter = Server::start(&[
        ("OPENROUTER_API_KEY", "sk-or-test-key"),
        ("OPENROUTER_BASE_URL", base.as_str()),
    ]);
    let r = openrouter.post_json("/api/run", r#"{"task":"t","budget":{"usd":0.05}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("budget.usd: 0.05 cannot hold the writer's reserve"),
        "{}",
        r.text()
    );
}

#[test]
fn parallel_specialists_share_one_budget_and_stop_together() {
    let mock = MockProvider::start(runaway_team(None));
    let server = custom(&mock, &[("MESH_SCHEDULE", "parallel")]);
    let id = server.start_run(
        r#"{"task":"t","agents":["researcher","coder","analyst"],"budget":{"tokens":14000}}"#,
    );
    let events = server.stream(&id, &[]).collect();
    let done = done_event(&events);
    assert_eq!(done["status"], "completed", "{events:?}");
    for who in ["researcher", "coder", "analyst"] {
        assert_dropped_by_budget(&events, who);
    }
    // All three ran at once: each started before any was stopped.
    let first_error = events.iter().position(|e| e.event == "error").unwrap();
    for who in ["researcher", "coder", "analyst"] {
        let start = events
            .iter()
            .position(|e| e.event == "stream_start" && e.data["agent"] == who)
            .unwrap();
        assert!(start < first_error, "{who} started after the stop");
    }
    wait_closes(&mock, 3);
    let spent = done["budget"]["spent_tokens"].as_u64().unwrap();
    assert!(spent <= 14000, "{done}");
    assert_eq!(done["budget"]["exhausted"], true);
}

#[test]
fn defaults_come_from_the_environment_and_a_bad_value_stops_startup() {
    let mock = MockProvider::start(|r, _| {
        if r.method != "POST" {
            return Reply::error(404, "{}");
        }
        Reply::sse(&openai_stream(&["x"], Some((10, 1, None))))
    });
    let server = custom(&mock, &[("MESH_RUN_BUDGET_TOKENS", "60000")]);
    let r = server.post_json("/api/run", r#"{"task":"t","agents":["researcher"]}"#);
    assert_eq!(r.status, 201);
    // The answer names the caps the run got (custom models have no catalog price).
    let started = r.json();
    assert_eq!(started["budget"]["tokens"], 60000);
    assert_eq!(started["budget"]["usd"], Value::Null);
    assert_eq!(started["budget"]["unpriced"].as_array().unwrap().len(), 5);
    let id = started["id"].as_str().unwrap().to_string();
    let events = server.stream(&id, &[]).collect();
    assert_eq!(done_event(&events)["budget"]["tokens"], 60000);
    // A request's own cap wins over the default for that cap.
    let id = server
        .start_run(r#"{"task":"t","agents":["researcher"],"budget":{"tokens":70000,"usd":3}}"#);
    let events = server.stream(&id, &[]).collect();
    let budget = &done_event(&events)["budget"];
    assert_eq!(
        (budget["tokens"].as_u64(), budget["usd"].as_f64()),
        (Some(70000), Some(3.0))
    );
    drop(server);

    // A default too small for the writer's reserve: every run is refused, saying where
    // the cap came from.
    let server = custom(&mock, &[("MESH_RUN_BUDGET_TOKENS", "100")]);
    let r = server.post_json("/api/run", r#"{"task":"t"}"#);
    assert_eq!(r.status, 400);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("budget.tokens: 100 (from MESH_RUN_BUDGET_TOKENS)"),
        "{message}"
    );
    drop(server);

    for (var, value) in [
        ("MESH_RUN_BUDGET_USD", "free"),
        ("MESH_RUN_BUDGET_USD", "0"),
        ("MESH_RUN_BUDGET_TOKENS", "2.5"),
    ] {
        let (code, stderr) = support::exit_of(&[(var, value)]);
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}
