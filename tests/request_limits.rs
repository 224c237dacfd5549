//! Issue 20 item 7: a catalog refresh is one upstream fetch however many ask at once;
//! a task of invisible characters or with a NUL is refused naming its field;
//! `MESH_MAX_ACTIVE_RUNS` above the retained runs stops startup.

mod support;

use serde_json::json;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::mock::{MockProvider, Recorded, Reply};
use support::Server;

/// A gate the mock's model-list answers wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let open = self.open.lock().unwrap();
        // Bounded: a test that fails before opening must not hang the mock forever.
        let _ = self
            .opened
            .wait_timeout_while(open, Duration::from_secs(20), |open| !*open)
            .unwrap();
    }

    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

#[test]
fn two_hundred_concurrent_refreshes_make_one_upstream_fetch() {
    let gate = Arc::new(Gate::default());
    gate.set(true);
    let mock = {
        let gate = gate.clone();
        MockProvider::start(move |r: &Recorded, _| {
            if r.method == "GET" && r.path.ends_with("/models") {
                gate.wait();
                return Reply::error(200, &json!({"data": [{"id": "m-1"}]}).to_string());
            }
            Reply::error(500, "{}")
        })
    };
    let base = mock.url("/v1");
    let server = Server::start(&[
        ("CUSTOM_BASE_URL", &base),
        ("MESH_PROVIDER", "custom"),
        ("MESH_MAX_CONNECTIONS_PER_PEER", "1000"),
    ]);
    let list_fetches = || {
        mock.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/models"))
            .count()
    };
    // The background fetch at startup first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("/api/models").json()["source"] != "live" {
        assert!(Instant::now() < deadline, "the catalog was never fetched");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = list_fetches();
    // Hold the next fetch upstream while 200 refreshes arrive.
    gate.set(false);
    let sockets: Vec<_> = (0..200)
        .map(|_| {
            let mut s = server.connect();
            support::write_request(&mut s, "GET", "/api/models?refresh=1", &[], b"");
            s
        })
        .collect();
    // A request made after all of them has been answered, so the server has read
    // theirs (connections are served in the order they were accepted).
    assert_eq!(server.get("/health").status, 200);
    // The one fetch reaches the mock (and waits at the gate); no second one starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while list_fetches() == before {
        assert!(Instant::now() < deadline, "no fetch reached the provider");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(list_fetches(), before + 1, "refreshes fetched in parallel");
    gate.set(true);
    for s in sockets {
        let r = support::read_response(&mut std::io::BufReader::new(s));
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["source"], "live");
        assert_eq!(v["models"][0]["id"], "m-1");
    }
    assert_eq!(
        list_fetches(),
        before + 1,
        "one upstream fetch for 200 refreshes"
    );
    // A refresh asked for afterwards fetches again.
    assert_eq!(server.get("/api/models?refresh=1").status, 200);
    assert_eq!(list_fetches(), before + 2);
}

#[test]
fn a_task_of_invisible_characters_or_with_a_nul_is_a_400_naming_task() {
    let server = Server::start(&[]);
    for task in [
        "\u{feff}\u{200b}",
        " \u{200b}\u{2060} \u{00ad}\n",
        "before\u{0}after",
    ] {
        let body = json!({ "task": task }).to_string();
        let r = server.post_json("/api/run", &body);
        assert_eq!(r.status, 400, "{task:?}: {}", r.text());
        assert_eq!(r.json()["error"]["field"], "task", "{task:?}");
        let chat = json!({"model": "agent-mesh", "messages": [{"role": "user", "content": task}]});
        let r = server.post_json("/v1/chat/completions", &chat.to_string());
        assert_eq!(r.status, 400, "{task:?}: {}", r.text());
        assert_eq!(r.json()["error"]["param"], "messages[0].content");
    }
    // Nothing was started; a task with visible text around invisible ones is fine.
    assert_eq!(server.get("/api/runs").json(), json!([]));
    server.start_run(&json!({"task": "\u{feff}Hi\u{200b}"}).to_string());
}

#[test]
fn max_active_runs_above_the_retained_runs_stops_startup() {
    let (code, stderr) = support::exit_of(&[("MESH_MAX_ACTIVE_RUNS", "5000")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("MESH_MAX_ACTIVE_RUNS") && stderr.contains("1000"),
        "{stderr}"
    );
    // The largest value that can be reached still starts.
    let server = Server::start(&[("MESH_MAX_ACTIVE_RUNS", "1000")]);
    assert_eq!(server.get("/health").status, 200);
}
