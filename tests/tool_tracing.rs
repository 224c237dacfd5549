//! Tool calls traced end to end: the real binary, a mock provider whose researcher asks
//! for tools, the reference MCP server (server-everything over Streamable HTTP) behind a
//! wire tap, and the test OTLP collector. Each call is an `execute_tool {tool}` span
//! under the agent's `invoke_agent` span with the GenAI attributes (and `error.type`
//! when it fails); the MCP server gets the span's `traceparent` as a header and in
//! `params._meta`; arguments and results are exported only under `MESH_TRACE_CONTENT=1`.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::mcp::{EverythingHttp, WireTap};
use support::mock::{openai_stream, MockProvider, Recorded, Reply};
use support::otlp::{decode, Collector};
use support::Server;

const LIMIT: Duration = Duration::from_secs(60);
const ECHOED: &str = "tool-argument-text-5521";

/// One streamed assistant turn that asks for two tools: `echo` (succeeds) and `get-sum`
/// with a string where a number belongs (the server refuses it).
fn tool_calls_stream() -> Vec<String> {
    let call = |index: u32, id: &str, name: &str, arguments: &str| {
        format!(
            "data: {}\n\n",
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":index,"id":id,"type":"function","function":{"name":name,"arguments":arguments}}]}}]})
        )
    };
    vec![
        format!(
            "data: {}\n\n",
            json!({"choices":[{"index":0,"delta":{"role":"assistant","content":"Looking. "}}]})
        ),
        call(
            0,
            "call_echo",
            "everything__echo",
            &json!({ "message": ECHOED }).to_string(),
        ),
        call(1, "call_sum", "everything__get-sum", r#"{"a":1,"b":"two"}"#),
        format!(
            "data: {}\n\n",
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})
        ),
        "data: [DONE]\n\n".to_string(),
    ]
}

/// The orchestrator picks the researcher, who calls tools once and then answers.
fn team(r: &Recorded, _: usize) -> Reply {
    let text = match r.agent() {
        "orchestrator" => r#"{"agents":["researcher"],"reasoning":"r"}"#,
        "researcher" => {
            let answered = r.json()["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
            if !answered {
                return Reply::sse(&tool_calls_stream());
            }
            "researcher found it"
        }
        _ => "the report",
    };
    Reply::sse(&openai_stream(&[text], Some((5, 3, None))))
}

struct Setup {
    server: Server,
    collector: Collector,
    tap: WireTap,
    _everything: EverythingHttp,
    config: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

fn setup(mock: &MockProvider, content: bool) -> Setup {
    let everything = EverythingHttp::start();
    let tap = WireTap::start(everything.port);
    let config = std::env::temp_dir().join(format!(
        "mesh-tool-tracing-{}-{content}.json",
        std::process::id()
    ));
    let servers = json!({"mcpServers": {"everything": {"url": tap.url()}}});
    std::fs::write(&config, servers.to_string()).expect("write the MCP config");
    let collector = Collector::start(&[]);
    let endpoint = collector.base_url();
    let base = mock.url("/api/v1");
    let config_path = config.to_string_lossy().into_owned();
    let mut env = vec![
        ("OPENROUTER_API_KEY", "sk-or-v1-tools-0123456789"),
        ("OPENROUTER_BASE_URL", base.as_str()),
        ("MESH_MCP_CONFIG", config_path.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    if content {
        env.push(("MESH_TRACE_CONTENT", "1"));
    }
    Setup {
        server: Server::start(&env),
        collector,
        tap,
        _everything: everything,
        config,
    }
}

/// Runs the team to `done`, stops the server (flushing the spans) and decodes them.
fn traced_tool_run(setup: &mut Setup) -> (String, Vec<Value>) {
    let id = setup.server.start_run(r#"{"task":"why is the sky blue"}"#);
    let done = setup.server.wait_finished(&id, LIMIT);
    assert_eq!(done["status"], "completed", "{done}");
    let trace_id = done["trace_id"].as_str().expect("a trace id").to_string();
    setup.server.signal("TERM");
    assert_eq!(setup.server.wait_exit(LIMIT), Some(0));
    let bodies: Vec<Vec<u8>> = setup
        .collector
        .received()
        .into_iter()
        .map(|r| r.body)
        .collect();
    let got = decode("protobuf", &bodies);
    let spans = got["spans"].as_array().expect("spans").clone();
    (trace_id, spans)
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
}

#[test]
fn each_tool_call_is_an_execute_tool_span_whose_context_reaches_the_mcp_server() {
    let mock = MockProvider::start(team);
    let mut setup = setup(&mock, false);
    let (trace_id, spans) = traced_tool_run(&mut setup);

    let agent = named(&spans, "invoke_agent researcher");
    let echo = named(&spans, "execute_tool echo");
    let sum = named(&spans, "execute_tool get-sum");
    for (span, call_id) in [(echo, "call_echo"), (sum, "call_sum")] {
        assert_eq!(span["trace_id"], trace_id.as_str());
        assert_eq!(span["parent_span_id"], agent["span_id"], "{span}");
        assert_eq!(span["kind"], "SPAN_KIND_INTERNAL");
        let a = &span["attributes"];
        assert_eq!(a["gen_ai.operation.name"], "execute_tool");
        assert_eq!(a["gen_ai.tool.call.id"], call_id);
        assert_eq!(a["gen_ai.tool.type"], "extension");
        assert_eq!(a["mesh.tool.server"], "everything");
        assert!(
            a.get("gen_ai.tool.call.arguments").is_none(),
            "content is off"
        );
        assert!(a.get("gen_ai.tool.call.result").is_none(), "content is off");
    }
    assert_eq!(echo["attributes"]["gen_ai.tool.name"], "echo");
    assert!(echo["attributes"].get("error.type").is_none(), "{echo}");
    assert_eq!(sum["attributes"]["gen_ai.tool.name"], "get-sum");
    // server-everything answers arguments its schema refuses with an `isError` result.
    assert_eq!(
        sum["attributes"]["error.type"], "tool_error",
        "a refused call has error.type: {sum}"
    );
    assert_eq!(sum["status_code"], "STATUS_CODE_ERROR");

    // The MCP server got each call's span as its parent, as a header and in `_meta`.
    let sent = setup.tap.sent();
    for span in [echo, sum] {
        let traceparent = format!(
            "00-{trace_id}-{}-01",
            span["span_id"].as_str().expect("span id")
        );
        assert!(
            sent.contains(&format!("traceparent: {traceparent}\r\n")),
            "no traceparent header {traceparent} in:\n{sent}"
        );
        assert!(
            sent.contains(&format!(r#""traceparent":"{traceparent}""#)),
            "no _meta traceparent {traceparent} in:\n{sent}"
        );
    }
    // Neither the arguments nor the result left the process in a span.
    for r in setup.collector.received() {
        assert!(!String::from_utf8_lossy(&r.body).contains(ECHOED));
    }
}

#[test]
fn tool_arguments_and_results_are_exported_only_with_trace_content_on() {
    let mock = MockProvider::start(team);
    let mut setup = setup(&mock, true);
    let (_, spans) = traced_tool_run(&mut setup);
    let echo = &named(&spans, "execute_tool echo")["attributes"];
    let arguments: Value = serde_json::from_str(
        echo["gen_ai.tool.call.arguments"]
            .as_str()
            .expect("arguments recorded"),
    )
    .expect("arguments are JSON");
    assert_eq!(arguments["message"], ECHOED);
    let result = echo["gen_ai.tool.call.result"]
        .as_str()
        .expect("result recorded");
    assert!(result.contains(ECHOED), "{result}");
}
