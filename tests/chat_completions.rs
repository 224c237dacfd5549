//! The OpenAI-compatible endpoints over real sockets: `/v1/models`, streaming and
//! non-streaming `/v1/chat/completions` (usage, fixed team, history through
//! `messages`), OpenAI-shaped errors, bearer keys, and a disconnect cancelling the run.

mod support;

use serde_json::{json, Value};
use std::io::BufReader;
use std::time::{Duration, Instant};
use support::mock::{openai_stream, MockProvider, Reply};
use support::{read_head, write_request, ChunkedReader, Head, Server};

const KEY: &str = "mesh-test-key";
const WITHIN: Duration = Duration::from_secs(20);

fn server(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("MESH_USER", "u"),
        ("MESH_PASS", "p"),
        ("MESH_API_KEYS", KEY),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn bearer() -> String {
    format!("Bearer {KEY}")
}

fn post(server: &Server, body: &Value) -> support::Response {
    let auth = bearer();
    server.request(
        "POST",
        "/v1/chat/completions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// A streaming request: the head, then each `data:` payload as it arrives.
struct ChunkStream {
    head: Head,
    body: ChunkedReader<BufReader<std::net::TcpStream>>,
    pending: String,
}

impl ChunkStream {
    fn open(server: &Server, body: &Value) -> ChunkStream {
        let mut s = server.connect();
        let auth = bearer();
        write_request(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        let mut reader = BufReader::new(s);
        let head = read_head(&mut reader);
        ChunkStream {
            head,
            body: ChunkedReader::new(reader),
            pending: String::new(),
        }
    }

    /// The next `data:` payload, or `None` when the body ended; comments skipped.
    fn next_data(&mut self) -> Option<String> {
        loop {
            if let Block::Data(data) = self.next_block()? {
                return Some(data);
            }
        }
    }

    /// The next SSE block: a `data:` payload or a `:` comment.
    fn next_block(&mut self) -> Option<Block> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block = self.pending[..end].to_string();
                self.pending.drain(..end + 2);
                if let Some(comment) = block.strip_prefix(':') {
                    return Some(Block::Comment(comment.trim().to_string()));
                }
                let data = block
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data line: {block:?}"));
                return Some(Block::Data(data.to_string()));
            }
            let chunk = self.body.next_chunk()?;
            self.pending.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    fn all(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.next_data()).collect()
    }
}

#[derive(Debug)]
enum Block {
    Data(String),
    Comment(String),
}

/// `GET` on the run API, signed in with the bearer key.
fn api_get(server: &Server, path: &str) -> Value {
    let auth = bearer();
    server
        .request("GET", path, &[("Authorization", &auth)], b"")
        .json()
}

fn wait_finished(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + WITHIN;
    loop {
        let snap = api_get(server, &format!("/api/runs/{id}"));
        if snap["status"] != "running" {
            return snap;
        }
        assert!(Instant::now() < deadline, "run {id} still running: {snap}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn models_lists_the_orchestrated_team_and_each_specialist() {
    let server = server(&[]);
    let auth = bearer();
    let r = server.request("GET", "/v1/models", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "agent-mesh",
            "agent-mesh/researcher",
            "agent-mesh/coder",
            "agent-mesh/analyst"
        ]
    );
    for m in v["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model");
        assert_eq!(m["owned_by"], "agent-mesh");
        assert!(m["created"].as_u64().unwrap() > 1_600_000_000);
    }
}

#[test]
fn a_non_streaming_completion_is_the_writers_deliverable_with_usage() {
    let server = server(&[]);
    let r = post(
        &server,
        &json!({"model": "agent-mesh", "temperature": 0.3, "max_tokens": 50, "user": "x",
                "messages": [user("Compare tabs and spaces")]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "agent-mesh");
    let id = v["id"].as_str().unwrap();
    let run_id = id.strip_prefix("chatcmpl-").expect(id);
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    // It is a normal run: its snapshot holds the same deliverable.
    let snap = api_get(&server, &format!("/api/runs/{run_id}"));
    assert_eq!(snap["status"], "completed", "{snap}");
    assert_eq!(choice["message"]["content"], snap["output"]);
    assert!(snap["output"].as_str().unwrap().contains("tabs and spaces"));
    let u = &v["usage"];
    let (p, c) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0, "{u}");
    assert_eq!(u["total_tokens"].as_u64().unwrap(), p + c);
    assert_eq!(snap["usage"]["input_tokens"].as_u64().unwrap(), p);
}

#[test]
fn a_stream_sends_role_progress_content_stop_usage_and_done() {
    let server = server(&[]);
    let mut s = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh/researcher+analyst", "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [user("Summarize the history of rust")]}),
    );
    assert_eq!(s.head.status, 200);
    assert_eq!(s.head.header("content-type"), Some("text/event-stream"));
    let datas = s.all();
    assert_eq!(
        datas.last().map(String::as_str),
        Some("[DONE]"),
        "{datas:?}"
    );
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "agent-mesh/researcher+analyst");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let delta_text = |field: &str| -> String {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][field].as_str())
            .collect()
    };
    let reasoning = delta_text("reasoning_content");
    assert!(
        reasoning.contains("Plan: researcher, analyst"),
        "{reasoning}"
    );
    assert!(reasoning.contains("researcher started"), "{reasoning}");
    assert!(reasoning.contains("analyst finished"), "{reasoning}");
    assert!(!reasoning.contains("coder"), "{reasoning}");
    let content = delta_text("content");
    let run_id = chunks[0]["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap();
    let snap = wait_finished(&server, run_id);
    assert_eq!(snap["plan"]["agents"], json!(["researcher", "analyst"]));
    assert_eq!(content, snap["output"].as_str().unwrap());
    assert!(!content.is_empty());
    // The stop chunk, then the usage chunk with no choices.
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    let u = &chunks[n - 1]["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);

    // Without include_usage there is no usage chunk.
    let datas = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh/coder", "stream": true, "messages": [user("x")]}),
    )
    .all();
    let last: Value = serde_json::from_str(&datas[datas.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last.get("usage").is_none(), "{last}");
}

#[test]
fn earlier_messages_and_the_system_message_reach_the_prompts() {
    let mock = MockProvider::start(|_, _| Reply::sse(&openai_stream(&["fine."], None)));
    let base = mock.url("/v1");
    let server = server(&[("CUSTOM_BASE_URL", &base)]);
    let r = post(
        &server,
        &json!({"model": "agent-mesh/researcher", "messages": [
            {"role": "system", "content": "Answer like a pirate."},
            user("What is the capital of Peru?"),
            {"role": "assistant", "content": [{"type": "text", "text": "Lima is the capital."}]},
            {"role": "user", "content": [{"type": "text", "text": "How big is it?"}]},
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let requests = mock.chat_requests();
    assert_eq!(requests.len(), 2, "researcher and writer");
    for req in &requests {
        let u = req.user();
        let a = u.find("What is the capital of Peru?").expect(&u);
        let b = u.find("Lima is the capital.").expect(&u);
        let c = u.find("How big is it?").expect(&u);
        assert!(a < b && b < c, "{u}");
    }
    let writer = requests.iter().find(|r| r.agent() == "writer").unwrap();
    assert!(
        writer.system().contains("Answer like a pirate."),
        "{}",
        writer.system()
    );
    let researcher = requests.iter().find(|r| r.agent() == "researcher").unwrap();
    assert!(!researcher.system().contains("pirate"));
}

#[test]
fn bad_requests_are_openai_errors_naming_the_param() {
    let server = server(&[]);
    let cases = [
        (json!({"model": "gpt-4o", "messages": [user("x")]}), "model"),
        (
            json!({"model": "agent-mesh/wizard", "messages": [user("x")]}),
            "model",
        ),
        (json!({"model": "agent-mesh", "messages": []}), "messages"),
        (json!({"model": "agent-mesh"}), "messages"),
        (
            json!({"model": "agent-mesh", "messages": [{"role": "system", "content": "s"}]}),
            "messages",
        ),
        (
            json!({"model": "agent-mesh", "messages": [{"role": "user", "content": 7}]}),
            "messages[0].content",
        ),
        (json!({"model": 5, "messages": [user("x")]}), "model"),
        (
            json!({"model": "agent-mesh", "n": 2, "messages": [user("x")]}),
            "n",
        ),
    ];
    for (body, param) in cases {
        let r = post(&server, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error", "{body}");
        assert_eq!(e["param"], param, "{body}");
        assert!(e["message"].as_str().unwrap().len() > 5);
        assert!(e.get("code").is_some());
    }
    assert_eq!(
        post(
            &server,
            &json!({"model": "gpt-4o", "messages": [user("x")]})
        )
        .json()["error"]["code"],
        "model_not_found"
    );
    // No run was created for any of them.
    assert_eq!(api_get(&server, "/api/runs"), json!([]));
}

#[test]
fn a_wrong_key_is_a_401_in_openais_shape_and_bearer_works_on_api_too() {
    let server = server(&[]);
    for auth in ["Bearer not-the-key", "Basic dTp3cm9uZw=="] {
        let r = server.request("GET", "/v1/models", &[("Authorization", auth)], b"");
        assert_eq!(r.status, 401, "{auth}");
        let e = &r.json()["error"];
        assert_eq!(e["type"], "authentication_error");
        assert_eq!(e["code"], "invalid_api_key");
        assert!(!r.text().contains(KEY));
    }
    let auth = bearer();
    assert_eq!(
        server
            .request("GET", "/api/agents", &[("Authorization", &auth)], b"")
            .status,
        200
    );
    assert!(!server.logs().contains(KEY));
}

#[test]
fn a_client_that_disconnects_mid_stream_cancels_the_run() {
    let server = server(&[("MESH_OFFLINE_DELAY_MS", "30")]);
    let mut s = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh", "stream": true, "messages": [user("A long answer please")]}),
    );
    let first: Value = serde_json::from_str(&s.next_data().unwrap()).unwrap();
    let run_id = first["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap()
        .to_string();
    // Wait until the run is under way (some progress has arrived), then hang up.
    let second = s.next_data().unwrap();
    assert!(second.contains("reasoning_content"), "{second}");
    drop(s);
    let deadline = Instant::now() + WITHIN;
    let snap = loop {
        let snap = api_get(&server, &format!("/api/runs/{run_id}"));
        if snap["status"] != "running" {
            break snap;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the disconnect"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(snap["status"], "cancelled", "{snap}");
}

#[test]
fn a_client_that_disconnects_before_a_non_streamed_answer_cancels_the_run() {
    let server = server(&[("MESH_OFFLINE_DELAY_MS", "30")]);
    let body =
        json!({"model": "agent-mesh", "stream": false, "messages": [user("A long answer please")]})
            .to_string();
    let mut s = server.connect();
    let auth = format!("Bearer {KEY}");
    write_request(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    // Wait until the run exists and is running, then hang up without reading.
    let deadline = Instant::now() + WITHIN;
    let run_id = loop {
        let list = api_get(&server, "/api/runs");
        if let Some(r) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "running")
        {
            break r["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(s);
    let snap = wait_finished(&server, &run_id);
    assert_eq!(snap["status"], "cancelled", "{snap}");
}

#[test]
fn a_stream_cut_short_by_shutdown_ends_cancelled_then_done() {
    let mut server = server(&[
        ("MESH_OFFLINE_DELAY_MS", "200"),
        ("MESH_SHUTDOWN_GRACE_SECS", "1"),
    ]);
    let mut s = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh", "stream": true, "messages": [user("Too slow to finish")]}),
    );
    s.next_data().unwrap();
    server.signal("TERM");
    let rest = s.all();
    // The shutdown cancelled the run: its answer is unfinished, never a `stop`.
    let last = last_before_done(&rest);
    assert_eq!(last["choices"][0]["finish_reason"], "cancelled", "{rest:?}");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

/// The payload before the closing `[DONE]` (asserting the stream has one).
fn last_before_done(datas: &[String]) -> Value {
    assert_eq!(
        datas.last().map(String::as_str),
        Some("[DONE]"),
        "{datas:?}"
    );
    serde_json::from_str(&datas[datas.len() - 2]).unwrap()
}

/// The mock's answer for the writer: five tokens, then the connection closes with
/// no finish and no `[DONE]` (an upstream that dropped mid-answer).
fn writer_drops_after_five_tokens() -> MockProvider {
    MockProvider::start(|req, _| {
        let mut events = openai_stream(&["one ", "two ", "three ", "four ", "five"], None);
        if req.agent() == "writer" {
            events.truncate(events.len() - 2);
        }
        Reply::sse(&events)
    })
}

#[test]
fn a_writer_that_fails_mid_answer_is_an_error_in_both_modes_never_a_stop() {
    let mock = writer_drops_after_five_tokens();
    let base = mock.url("/v1");
    let server = server(&[("CUSTOM_BASE_URL", &base)]);
    let body = json!({"model": "agent-mesh/researcher", "messages": [user("x")]});
    let r = post(&server, &body);
    assert_eq!(r.status, 500, "{}", r.text());
    let err = r.json();
    assert_eq!(err["error"]["type"], "server_error", "{err}");
    assert_eq!(err["error"]["code"], "run_failed", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended before"),
        "{err}"
    );

    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let datas = ChunkStream::open(&server, &stream_body).all();
    assert!(
        datas.iter().any(|d| d.contains(r#""content":"five""#)),
        "{datas:?}"
    );
    let err = last_before_done(&datas);
    assert_eq!(err["error"]["code"], "run_failed", "{err}");
    assert!(
        !datas.iter().any(|d| d.contains("finish_reason\":\"stop")),
        "{datas:?}"
    );
}

fn cancel(server: &Server, run_id: &str) {
    let auth = bearer();
    let path = format!("/api/runs/{run_id}/cancel");
    let r = server.request("POST", &path, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn a_run_cancelled_mid_answer_ends_with_finish_reason_cancelled_in_both_modes() {
    let server = server(&[("MESH_OFFLINE_DELAY_MS", "30")]);
    let ask =
        json!({"model": "agent-mesh", "stream": true, "messages": [user("A long answer please")]});
    let mut s = ChunkStream::open(&server, &ask);
    let first: Value = serde_json::from_str(&s.next_data().unwrap()).unwrap();
    let run_id = first["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap()
        .to_string();
    // Cancel once the writer's answer is under way.
    while !s.next_data().unwrap().contains(r#""delta":{"content""#) {}
    cancel(&server, &run_id);
    let rest = s.all();
    let last = last_before_done(&rest);
    assert_eq!(last["choices"][0]["finish_reason"], "cancelled", "{rest:?}");

    let mut ask = ask;
    ask["stream"] = json!(false);
    std::thread::scope(|scope| {
        let answer = scope.spawn(|| post(&server, &ask));
        let deadline = Instant::now() + WITHIN;
        let run_id = loop {
            let list = api_get(&server, "/api/runs");
            let running = list
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["status"] == "running");
            if let Some(r) = running {
                break r["id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "the run never started");
            std::thread::sleep(Duration::from_millis(10));
        };
        cancel(&server, &run_id);
        let r = answer.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["choices"][0]["finish_reason"],
            "cancelled",
            "{}",
            r.text()
        );
    });
}

#[test]
fn a_run_that_fails_ends_the_stream_with_an_error_object() {
    let mock = MockProvider::start(|_, _| Reply::error(401, r#"{"error":{"message":"bad key"}}"#));
    let base = mock.url("/v1");
    let server = server(&[("CUSTOM_BASE_URL", &base)]);
    let datas = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh/researcher", "stream": true, "messages": [user("x")]}),
    )
    .all();
    let err = last_before_done(&datas);
    assert_eq!(err["error"]["code"], "run_failed", "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("could not finish"));
    assert!(
        !datas
            .iter()
            .any(|d| d.contains("\"finish_reason\":\"stop\"")),
        "{datas:?}"
    );
    // Non-streaming, the same failure is an error response, not an empty answer.
    let r = post(
        &server,
        &json!({"model": "agent-mesh/researcher", "messages": [user("x")]}),
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "server_error");
}

#[test]
fn an_empty_key_in_the_list_exits_2_naming_the_variable_without_the_keys() {
    for list in ["secret-a,,secret-b", "secret-a, "] {
        let out = support::command(&[("MESH_API_KEYS", list)])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{list}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("MESH_API_KEYS"), "{err}");
        assert!(!err.contains("secret-a"), "{err}");
    }
}

/// While the team works nothing is relayed: a comment after 15 s of silence keeps
/// proxies (nginx's 60 s read timeout) from cutting the stream.
#[test]
fn a_silent_stream_gets_a_keep_alive_comment_after_15_s() {
    // One token every 20 s: after the first progress chunks the stream is silent.
    let server = server(&[("MESH_OFFLINE_DELAY_MS", "20000")]);
    let mut s = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh", "stream": true, "messages": [user("slow")]}),
    );
    assert_eq!(s.head.status, 200);
    let mut last_data = Instant::now();
    loop {
        match s.next_block().expect("the stream stays open") {
            Block::Comment(c) => {
                assert_eq!(c, "keep-alive");
                let silent = last_data.elapsed();
                assert!(silent >= Duration::from_secs(14), "too early: {silent:?}");
                assert!(silent < Duration::from_secs(18), "too late: {silent:?}");
                break;
            }
            Block::Data(d) => {
                let v: Value = serde_json::from_str(&d).unwrap();
                assert!(
                    v["choices"][0]["delta"]["content"]
                        .as_str()
                        .unwrap_or("")
                        .is_empty(),
                    "no answer text expected before 20 s: {d}"
                );
                last_data = Instant::now();
            }
        }
    }
}

/// Asserts OpenAI's error object and returns it.
fn openai_error_of(r: &support::Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let e = r.json()["error"].clone();
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert!(e["type"].is_string(), "{e}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{e}");
    e
}

#[test]
fn a_model_is_retrieved_by_id_and_an_unknown_one_is_an_openai_404() {
    let server = server(&[]);
    let auth = bearer();
    let get = |path: &str| server.request("GET", path, &[("Authorization", &auth)], b"");
    for (path, id) in [
        ("/v1/models/agent-mesh", "agent-mesh"),
        ("/v1/models/agent-mesh/researcher", "agent-mesh/researcher"),
        // How the SDKs send it: the slash escaped.
        (
            "/v1/models/agent-mesh%2Fcoder%2Banalyst",
            "agent-mesh/coder+analyst",
        ),
    ] {
        let r = get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let m = r.json();
        assert_eq!(m["id"], id);
        assert_eq!(m["object"], "model");
        assert_eq!(m["owned_by"], "agent-mesh");
        assert!(m["created"].as_u64().unwrap() > 0);
    }
    for path in ["/v1/models/gpt-4o", "/v1/models/agent-mesh%2Fwizard"] {
        let e = openai_error_of(&get(path), 404);
        assert_eq!(e["code"], "model_not_found", "{path}");
        assert_eq!(e["type"], "invalid_request_error");
    }
}

#[test]
fn every_v1_error_is_in_openais_shape() {
    let server = server(&[]);
    let auth = bearer();
    let e = openai_error_of(
        &server.request("GET", "/v1/embeddings", &[("Authorization", &auth)], b""),
        404,
    );
    assert_eq!(e["code"], "not_found");
    let r = server.request("DELETE", "/v1/models", &[("Authorization", &auth)], b"");
    let e = openai_error_of(&r, 405);
    assert_eq!(e["code"], "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let big = vec![b'x'; 70 * 1024];
    let e = openai_error_of(
        &server.request(
            "POST",
            "/v1/chat/completions",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &big,
        ),
        413,
    );
    assert_eq!(e["code"], "payload_too_large");
    // The rest of the API keeps its own shape.
    let r = server.request("GET", "/api/nothing", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert!(r.json()["error"].get("type").is_none());
}

const FRONT_END: &str = "https://chat.example";

fn preflight(server: &Server, origin: &str) -> support::Response {
    server.request(
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type, x-stainless-os",
            ),
        ],
        b"",
    )
}

#[test]
fn cors_lets_a_listed_origin_call_v1_and_no_other() {
    let server = server(&[(
        "MESH_CORS_ORIGINS",
        "https://chat.example, http://localhost:3000",
    )]);
    // The preflight carries no credentials and is answered anyway.
    let r = preflight(&server, FRONT_END);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(FRONT_END));
    let methods = r.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let allowed = r.header("access-control-allow-headers").unwrap();
    for h in ["authorization", "content-type", "x-stainless-os"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(r.header("access-control-max-age").is_some());
    // An origin not listed gets no permission.
    let r = preflight(&server, "https://evil.example");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-methods"), None);

    let auth = bearer();
    let get = |origin: &str, auth: &str| {
        server.request(
            "GET",
            "/v1/models",
            &[("Authorization", auth), ("Origin", origin)],
            b"",
        )
    };
    let r = get(FRONT_END, &auth);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(FRONT_END));
    assert!(r.header("vary").unwrap().contains("Origin"));
    // An error is readable too, so the page can say why.
    let r = get("http://localhost:3000", "Bearer wrong");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    let r = get("https://evil.example", &auth);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The rest of the API is not opened.
    let r = server.request(
        "GET",
        "/api/agents",
        &[("Authorization", &auth), ("Origin", FRONT_END)],
        b"",
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn without_cors_origins_there_is_no_cors() {
    let server = server(&[]);
    let r = preflight(&server, FRONT_END);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), None);
    let auth = bearer();
    let r = server.request(
        "GET",
        "/v1/models",
        &[("Authorization", &auth), ("Origin", FRONT_END)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

/// An unreachable provider: the error a non-streamed request answers with keeps the
/// cause, word for word as the stream's error object.
#[test]
fn a_failure_names_its_cause_streamed_or_not() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let server = server(&[("CUSTOM_BASE_URL", &base)]);
    for model in ["agent-mesh/researcher", "agent-mesh"] {
        let body = json!({"model": model, "messages": [user("x")]});
        let r = post(&server, &body);
        assert_eq!(r.status, 500, "{}", r.text());
        let plain = r.json()["error"]["message"].as_str().unwrap().to_string();
        let mut streamed_body = body.clone();
        streamed_body["stream"] = json!(true);
        let datas = ChunkStream::open(&server, &streamed_body).all();
        let streamed = last_before_done(&datas)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(plain.contains("cannot reach 127.0.0.1"), "{model}: {plain}");
        assert_eq!(plain, streamed, "{model}");
    }
}

/// An orchestrator that answers prose, not a plan: the fallback team is said in
/// `reasoning_content`, with why, as on /api/stream.
#[test]
fn a_fallback_plan_is_said_in_reasoning_content() {
    let mock = MockProvider::start(|r, _| {
        Reply::sse(&openai_stream(
            &[&format!("{} speaks prose", r.agent())],
            None,
        ))
    });
    let base = mock.url("/v1");
    let server = server(&[("CUSTOM_BASE_URL", &base)]);
    let datas = ChunkStream::open(
        &server,
        &json!({"model": "agent-mesh", "stream": true, "messages": [user("x")]}),
    )
    .all();
    let reasoning: String = datas
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let plan_line = reasoning
        .lines()
        .find(|l| l.starts_with("Plan: "))
        .unwrap_or_else(|| panic!("no plan line: {reasoning}"));
    assert!(plan_line.contains("fallback"), "{plan_line}");
    assert!(plan_line.contains("researcher, analyst"), "{plan_line}");
}

/// A server that sends no usage (llama-cpp-python): the usage chunk and the
/// completion's `usage` are null, never zeros.
#[test]
fn usage_a_provider_did_not_report_is_null_never_zero() {
    let mock = MockProvider::start(|r, _| {
        Reply::sse(&openai_stream(&[&format!("{} answer", r.agent())], None))
    });
    let base = mock.url("/v1");
    let server = server(&[("CUSTOM_BASE_URL", &base)]);
    let body = json!({"model": "agent-mesh/researcher", "messages": [user("x")]});
    let r = post(&server, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["usage"], Value::Null);
    let run_id = r.json()["id"].as_str().unwrap()["chatcmpl-".len()..].to_string();
    let snap = api_get(&server, &format!("/api/runs/{run_id}"));
    assert_eq!(snap["usage"], Value::Null);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let datas = ChunkStream::open(&server, &streamed).all();
    let usage_chunk: Value = serde_json::from_str(&datas[datas.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    assert!(
        usage_chunk.get("usage").is_some_and(Value::is_null),
        "{usage_chunk}"
    );
}
