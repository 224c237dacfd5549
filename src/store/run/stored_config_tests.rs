//! The run config as a shared store keeps it: the trace parent survives, older configs
//! without it still read.

use super::test_support::config;
use crate::model::run_config::RunConfig;
use crate::model::trace_context::SpanContext;

#[test]
fn the_stored_config_keeps_the_trace_parent_and_older_configs_still_read() {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut traced = config(false);
    traced.trace_parent = SpanContext::from_traceparent(traceparent);
    let stored = traced.to_stored_json();
    let back = RunConfig::from_stored_json(&stored).expect("reads back");
    assert_eq!(back.trace_parent, traced.trace_parent);
    assert_eq!(
        back.trace_parent.and_then(|c| c.traceparent()).as_deref(),
        Some(traceparent)
    );

    // Stored before the field existed, or without a parent: none, and no field.
    let plain = config(false).to_stored_json();
    assert!(!plain.contains("trace_parent"), "{plain}");
    let mut older: serde_json::Value = serde_json::from_str(&stored).unwrap();
    older.as_object_mut().unwrap().remove("trace_parent");
    let read = RunConfig::from_stored_json(&older.to_string()).expect("older");
    assert_eq!(read.trace_parent, None);

    // A damaged value reads as no parent rather than an unreadable run.
    older["trace_parent"] = serde_json::json!("00-not-a-trace");
    let read = RunConfig::from_stored_json(&older.to_string()).expect("damaged");
    assert_eq!(read.trace_parent, None);
}
