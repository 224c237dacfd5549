//! Follow-ups on the in-memory store (the scenarios are tests/scenarios/follow_ups.rs,
//! shared with the Redis store's suite), and bearer keys beside Basic auth.

mod support;

#[path = "scenarios/follow_ups.rs"]
mod follow_ups;

use support::instances::Instances;
use support::Server;

/// A server on a store of its own, for one scenario.
fn instances(env: &[(&str, &str)]) -> Instances {
    Instances::memory(env)
}

#[test]
fn a_bearer_key_is_accepted_beside_basic_auth_and_a_wrong_one_is_a_401() {
    let server = Server::start(&[
        ("MESH_USER", "u"),
        ("MESH_PASS", "p"),
        ("MESH_API_KEYS", "key-one,key-two"),
    ]);
    let get = |auth: &str| server.request("GET", "/api/runs", &[("Authorization", auth)], b"");
    assert_eq!(get("Bearer key-two").status, 200);
    assert_eq!(get("Basic dTpw").status, 200);
    let wrong = get("Bearer key-three");
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(!wrong.text().contains("key-"), "{}", wrong.text());
    assert!(!server.logs().contains("key-one"), "{}", server.logs());
}
