//! OTLP/HTTP JSON encoding (`http/json`): the protobuf JSON mapping with OTLP's own
//! rules: lowerCamelCase field names, trace and span ids as hex (not base64), enums
//! as numbers, 64-bit integers (timestamps, `intValue`) as decimal strings.

use super::proto::span_flags;
use super::resource::Resource;
use super::span::{AttrValue, Event, KeyValue, SpanData, Status};
use serde_json::{json, Map, Value};

/// The request body for one batch of spans of this process.
pub fn encode_request(resource: &Resource, spans: &[Box<SpanData>]) -> Vec<u8> {
    let resource_attributes: Vec<Value> = resource
        .attributes
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": { "stringValue": v } }))
        .collect();
    let body = json!({
        "resourceSpans": [{
            "resource": { "attributes": resource_attributes },
            "scopeSpans": [{
                "scope": { "name": resource.scope_name, "version": resource.scope_version },
                "spans": spans.iter().map(|s| span(s)).collect::<Vec<_>>(),
            }],
        }],
    });
    // Serializing a Value cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

fn span(s: &SpanData) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), s.context.trace_id.to_hex().into());
    m.insert("spanId".into(), s.context.span_id.to_hex().into());
    if let Some(parent) = &s.parent_span_id {
        m.insert("parentSpanId".into(), parent.to_hex().into());
    }
    m.insert("flags".into(), span_flags(s).into());
    m.insert("name".into(), s.name.as_ref().into());
    m.insert("kind".into(), (s.kind as u8).into());
    m.insert(
        "startTimeUnixNano".into(),
        s.start_unix_nanos.to_string().into(),
    );
    m.insert(
        "endTimeUnixNano".into(),
        s.end_unix_nanos.to_string().into(),
    );
    m.insert("attributes".into(), attributes(&s.attributes));
    if s.dropped_attributes > 0 {
        m.insert("droppedAttributesCount".into(), s.dropped_attributes.into());
    }
    if !s.events.is_empty() {
        m.insert(
            "events".into(),
            s.events.iter().map(event).collect::<Vec<_>>().into(),
        );
    }
    if s.dropped_events > 0 {
        m.insert("droppedEventsCount".into(), s.dropped_events.into());
    }
    match &s.status {
        Status::Unset => {}
        Status::Ok => {
            m.insert("status".into(), json!({ "code": 1 }));
        }
        Status::Error(description) => {
            m.insert(
                "status".into(),
                json!({ "code": 2, "message": description }),
            );
        }
    }
    Value::Object(m)
}

fn event(e: &Event) -> Value {
    json!({
        "timeUnixNano": e.time_unix_nanos.to_string(),
        "name": e.name,
        "attributes": attributes(&e.attributes),
    })
}

fn attributes(kvs: &[KeyValue]) -> Value {
    kvs.iter()
        .map(|kv| json!({ "key": kv.key, "value": any_value(&kv.value) }))
        .collect::<Vec<_>>()
        .into()
}

fn any_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Float(f) if f.is_finite() => json!({ "doubleValue": f }),
        // JSON has no NaN or infinity; the protobuf JSON mapping spells them as strings.
        AttrValue::Float(f) => json!({ "doubleValue": non_finite(*f) }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
        AttrValue::StrArray(items) => json!({
            "arrayValue": {
                "values": items.iter().map(|s| json!({ "stringValue": s })).collect::<Vec<_>>()
            }
        }),
    }
}

fn non_finite(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::trace_context::{SpanContext, SpanId, TraceId};
    use crate::trace::span::SpanKind;
    use std::borrow::Cow;

    #[test]
    fn a_span_is_written_in_the_otlp_json_mapping() {
        let s = Box::new(SpanData {
            context: SpanContext {
                trace_id: TraceId([0xab; 16]),
                span_id: SpanId([0xcd; 8]),
                sampled: true,
                remote: false,
            },
            parent_span_id: Some(SpanId([0x01; 8])),
            parent_is_remote: false,
            name: Cow::Borrowed("invoke_agent coder"),
            kind: SpanKind::Internal,
            start_unix_nanos: 1_700_000_000_000_000_001,
            end_unix_nanos: 1_700_000_000_000_000_002,
            attributes: vec![
                KeyValue {
                    key: "i",
                    value: AttrValue::Int(9_007_199_254_740_993),
                },
                KeyValue {
                    key: "f",
                    value: AttrValue::Float(1.5),
                },
                KeyValue {
                    key: "n",
                    value: AttrValue::Float(f64::NAN),
                },
                KeyValue {
                    key: "b",
                    value: AttrValue::Bool(true),
                },
                KeyValue {
                    key: "a",
                    value: AttrValue::StrArray(vec!["stop".into()]),
                },
            ],
            dropped_attributes: 0,
            events: vec![],
            dropped_events: 0,
            status: Status::Error("boom".into()),
        });
        let resource = Resource {
            attributes: vec![("service.name".into(), "svc".into())],
            scope_name: "agent-mesh",
            scope_version: "0.1.0",
        };
        let v: Value = serde_json::from_slice(&encode_request(&resource, &[s])).unwrap();
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
        assert_eq!(rs["scopeSpans"][0]["scope"]["name"], "agent-mesh");
        let span = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "ab".repeat(16));
        assert_eq!(span["spanId"], "cd".repeat(8));
        assert_eq!(span["parentSpanId"], "01".repeat(8));
        assert_eq!(span["kind"], 1);
        assert_eq!(span["flags"], 0x101);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000001");
        assert_eq!(span["status"], json!({ "code": 2, "message": "boom" }));
        let attrs = span["attributes"].as_array().unwrap();
        assert_eq!(attrs[0]["value"]["intValue"], "9007199254740993");
        assert_eq!(attrs[1]["value"]["doubleValue"], 1.5);
        assert_eq!(attrs[2]["value"]["doubleValue"], "NaN");
        assert_eq!(attrs[3]["value"]["boolValue"], true);
        assert_eq!(
            attrs[4]["value"]["arrayValue"]["values"][0]["stringValue"],
            "stop"
        );
    }
}
