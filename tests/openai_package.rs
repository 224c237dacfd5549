//! The official `openai` Python package against the real server: tests/openai_client.py
//! lists the models, retrieves one (and an unknown one), asks a non-streaming and a streaming (follow-up) question, and
//! provokes a 400 and a 401; this test asserts on what the package parsed. The server
//! has API keys and nothing else: keys alone turn authentication on (issue 25).

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Server;

const KEY: &str = "py-client-key";

#[test]
fn the_openai_python_package_streams_completes_and_reads_errors() {
    let server = Server::start(&[("MESH_API_KEYS", KEY)]);
    let base = format!("http://{}/v1", server.addr);
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/openai_client.py"
        ))
        .arg(&base)
        .arg(KEY)
        .env("NO_PROXY", "*")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the openai client did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "client failed:\n{out}\n{err}");

    let got: HashMap<&str, Value> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k, serde_json::from_str(v).expect(v)))
        .collect();
    let models = got["models"].as_array().unwrap();
    assert_eq!(models[0], "agent-mesh");
    assert!(models.contains(&json!("agent-mesh/researcher")));
    assert_eq!(
        got["retrieved"],
        json!({"id": "agent-mesh/researcher", "object": "model", "owned_by": "agent-mesh"})
    );
    assert_eq!(
        got["retrieve_error"],
        json!({"status": 404, "code": "model_not_found", "type": "invalid_request_error"})
    );

    assert_eq!(got["nonstream_object"], "chat.completion");
    assert_eq!(got["nonstream_finish"], "stop");
    assert!(got["nonstream_content"]
        .as_str()
        .unwrap()
        .contains("Name a prime number"));
    let u = got["nonstream_usage"].as_array().unwrap();
    assert!(u[0].as_u64().unwrap() > 0 && u[1].as_u64().unwrap() > 0);
    assert_eq!(
        u[2].as_u64(),
        Some(u[0].as_u64().unwrap() + u[1].as_u64().unwrap())
    );

    assert_eq!(got["stream_roles"], json!(["assistant"]));
    assert_eq!(got["stream_finish"], "stop");
    let content = got["stream_content"].as_str().unwrap();
    assert!(content.contains("And a larger one?"), "{content}");
    // The follow-up through `messages`: the offline writer quotes the earlier turn.
    assert!(
        content.contains("asked \"Name a prime number\""),
        "{content}"
    );
    assert!(got["stream_reasoning"].as_str().unwrap().contains("Plan:"));
    let u = got["stream_usage"].as_array().expect("a usage chunk");
    assert!(u[1].as_u64().unwrap() > 0);

    assert_eq!(
        got["error"],
        json!({"status": 400, "param": "model", "code": "model_not_found", "type": "invalid_request_error"})
    );
    assert_eq!(
        got["auth_error"],
        json!({"status": 401, "code": "invalid_api_key"})
    );
}
