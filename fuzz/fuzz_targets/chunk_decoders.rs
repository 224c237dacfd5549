//! Invariant: the OpenAI and Anthropic decoders never panic on any events, and invent nothing: each event emits at most one piece of text, non-empty, and every piece of text, tool-call id, name, non-empty arguments fragment and finish reason is a string value of that event's JSON data; the tool-call accumulator joins any fragments without panicking.
//!
//! Input: raw upstream stream bytes, cut into events by the project's SSE parser (as in
//! production), then fed to both decoders. Feeding goes on after `Finished` or an
//! error, so a decoder in any state meets any event; `outcome()` is read at the end.
#![no_main]

use agent_mesh::providers::decode::{AnthropicDecoder, ChunkDecoder, Delta, Flow, OpenAiDecoder};
use agent_mesh::providers::sse::{SseEvent, SseParser};
use agent_mesh::providers::tool_calls::ToolCallAccumulator;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A response is capped at 8 MiB in production; 32 KiB holds dozens of chunks.
const MAX_INPUT: usize = 32 * 1024;

/// Every string (keys excluded) anywhere in the event's JSON data, without recursion.
fn json_strings(data: &str) -> Vec<String> {
    let Ok(root) = serde_json::from_str::<Value>(data.trim()) else {
        return Vec::new();
    };
    let mut strings = Vec::new();
    let mut stack = vec![root];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => strings.push(s),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    strings
}

fn feed(name: &str, decoder: &mut dyn ChunkDecoder, events: &[SseEvent]) {
    let mut calls = ToolCallAccumulator::default();
    for event in events {
        let mut pieces: Vec<String> = Vec::new();
        // Strings the event's deltas carry besides text: ids, names, arguments, reasons.
        let mut quoted: Vec<String> = Vec::new();
        let flow = decoder.event(event, &mut |delta| match delta {
            Delta::Text(text) => pieces.push(text.to_string()),
            Delta::ToolCall(fragment) => {
                calls.push(&fragment);
                quoted.extend(fragment.id.map(str::to_string));
                quoted.extend(fragment.name.map(str::to_string));
                if !fragment.arguments.is_empty() {
                    quoted.push(fragment.arguments.to_string());
                }
            }
            Delta::Finish(reason) => quoted.push(reason.to_string()),
            Delta::Usage(_) => {}
        });
        assert!(
            pieces.len() <= 1,
            "{name}: one event emitted {} pieces",
            pieces.len()
        );
        if let Some(piece) = pieces.first() {
            assert!(!piece.is_empty(), "{name}: emitted an empty piece");
        }
        if !pieces.is_empty() || !quoted.is_empty() {
            let strings = json_strings(&event.data);
            for piece in pieces.iter().chain(&quoted) {
                assert!(
                    strings.contains(piece),
                    "{name}: emitted {piece:?}, which is not a string in {:?}",
                    event.data
                );
            }
        }
        match flow {
            Ok(Flow::Finished | Flow::More) => {}
            Err(e) => assert!(!e.message.is_empty(), "{name}: an error without a message"),
        }
    }
    // Read at the end of every call in production: must not panic in any state.
    let _ = (decoder.outcome(), decoder.saw_finish(), calls.finish());
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    // A stream error ends the call in production; the events before it were relayed.
    let _ = parser.feed(data, &mut events);
    parser.finish(&mut events);
    feed("openai", &mut OpenAiDecoder::default(), &events);
    feed("anthropic", &mut AnthropicDecoder::default(), &events);
});
