//! Finding the plan in the reply: fences, prose, stray quotes and braces, the size cap
//! and parse budget, junk that must never panic, and the invariants on random input.

use super::*;

#[test]
fn bare_object() {
    let plan = parse(
        r#"{"agents":["researcher","analyst"],"reasoning":"needs data","tasks":{"researcher":"find sources"}}"#,
    )
    .unwrap();
    assert_eq!(plan.agents, ["researcher", "analyst"]);
    assert_eq!(plan.reasoning, "needs data");
    assert_eq!(
        plan.tasks.get("researcher").map(String::as_str),
        Some("find sources")
    );
    assert_eq!(plan.tasks.len(), 1);
    assert!(plan.dropped.is_empty());
}

#[test]
fn json_fence() {
    let reply =
        "Here is my plan:\n```json\n{\"agents\": [\"coder\"], \"reasoning\": \"code\"}\n```\nDone.";
    let plan = parse(reply).unwrap();
    assert_eq!(plan.agents, ["coder"]);
    assert_eq!(plan.reasoning, "code");
}

#[test]
fn bare_fence() {
    assert_eq!(agents("```\n{\"agents\": [\"critic\"]}\n```"), ["critic"]);
}

#[test]
fn uppercase_fence_without_newline() {
    assert_eq!(agents("```JSON{\"agents\": [\"critic\"]}```"), ["critic"]);
}

#[test]
fn unterminated_fence() {
    assert_eq!(
        agents("```json\n{\"agents\": [\"analyst\"]}\n"),
        ["analyst"]
    );
}

#[test]
fn fence_is_tried_before_prose_objects() {
    let reply = "Earlier draft {\"agents\":[\"critic\"]}\n```json\n{\"agents\":[\"coder\"]}\n```";
    assert_eq!(agents(reply), ["coder"]);
}

#[test]
fn other_language_fence_is_stepped_over() {
    let reply = "```python\nprint('{')\n```\n```json\n{\"agents\":[\"coder\"]}\n```";
    assert_eq!(agents(reply), ["coder"]);
}

#[test]
fn object_inside_prose() {
    let reply = "Sure! Based on the task, {\"agents\": [\"analyst\"], \"reasoning\": \"numbers\"} is the team I'd pick. Thanks.";
    let plan = parse(reply).unwrap();
    assert_eq!(plan.agents, ["analyst"]);
    assert_eq!(plan.reasoning, "numbers");
}

#[test]
fn prose_with_apostrophe_and_fake_braces_before_object() {
    let reply = "Here's what I'd do — the placeholder {not json} isn't a plan, nor is {x: 1}. \
                 \"Quoted\" words too. {\"agents\":[\"researcher\",\"critic\"],\"reasoning\":\"it's {tricky}\"}";
    let plan = parse(reply).unwrap();
    assert_eq!(plan.agents, ["researcher", "critic"]);
    assert_eq!(plan.reasoning, "it's {tricky}");
}

#[test]
fn stray_quote_before_first_brace() {
    let reply = "The user said \"analyse this, then {\"agents\":[\"analyst\"]}";
    assert_eq!(agents(reply), ["analyst"]);
}

#[test]
fn prose_quote_before_object_whose_strings_hold_a_brace() {
    // Only the string-aware pass can pair these braces, and only if the prose quote
    // before the object is ignored.
    let reply = r#"He said "hi. {"agents":["analyst"],"reasoning":"close with }"}"#;
    let plan = parse(reply).unwrap();
    assert_eq!(plan.agents, ["analyst"]);
    assert_eq!(plan.reasoning, "close with }");
}

#[test]
fn stray_quote_inside_an_unclosed_brace_ends_at_the_line() {
    // The `"` after the stray `{` opens a bogus string; the newline closes it so the
    // string-aware pass still sees the object whose reasoning holds a lone `}`.
    let reply = "A { and a 5\" screen\n{\"agents\":[\"coder\"],\"reasoning\":\"}\"}";
    let plan = parse(reply).unwrap();
    assert_eq!(plan.agents, ["coder"]);
    assert_eq!(plan.reasoning, "}");
}

#[test]
fn placeholder_braces_do_not_spend_the_parse_budget() {
    let reply = format!(
        "{}{}{{\"agents\":[\"critic\"]}}",
        "Fill in {name} and {}. ".repeat(200),
        "{ }".repeat(200)
    );
    assert_eq!(agents(&reply), ["critic"]);
}

#[test]
fn stray_unclosed_brace_before_object() {
    let reply = "Sets look like { a, b. Plan: {\"agents\":[\"coder\"]}";
    assert_eq!(agents(reply), ["coder"]);
}

#[test]
fn stray_quote_between_braces_uses_the_stringless_pass() {
    // The unclosed `{` keeps the scanner inside an object, so the lone `"` after it
    // would open a string that hides the real object's braces on the same line.
    let reply = "A { and 5\" screen {\"agents\":[\"critic\"]}";
    assert_eq!(agents(reply), ["critic"]);
}

#[test]
fn no_json_is_an_error() {
    assert_eq!(error("I think the researcher should go first."), NO_OBJECT);
}

#[test]
fn array_is_an_error() {
    assert_eq!(error(r#"["researcher","analyst"]"#), NO_OBJECT);
}

#[test]
fn first_balanced_object_not_a_plan_then_a_plan() {
    let reply = r#"Context: {"task":"summarise","length":3}. Plan: {"agents":["analyst"]}"#;
    assert_eq!(agents(reply), ["analyst"]);
}

#[test]
fn echoed_schema_with_unknown_names_does_not_hide_the_real_plan() {
    let reply = r#"Format: {"agents":["name1"]}. Mine: {"agents":["coder"]}"#;
    let plan = parse(reply).unwrap();
    assert_eq!(plan.agents, ["coder"]);
    assert!(plan.dropped.is_empty());
}

#[test]
fn objects_nested_in_a_parsed_non_plan_are_not_candidates_but_a_wrapper_is() {
    assert_eq!(
        error(r#"{"example":{"x":{"agents":["coder"]}}}"#),
        NO_AGENTS
    );
    assert_eq!(
        error(r#"Context: {"example":{"x":{"agents":["coder"]}}} ends here."#),
        NO_AGENTS
    );
    assert_eq!(agents(r#"{"plan":{"agents":["coder"]}}"#), ["coder"]);
}

#[test]
fn plan_past_the_size_cap_is_not_seen() {
    let reply = format!("{}{{\"agents\":[\"coder\"]}}", "é".repeat(MAX_REPLY_BYTES));
    assert_eq!(error(&reply), NO_OBJECT);
}

#[test]
fn many_junk_candidates_exhaust_the_budget_without_panicking() {
    let junk = r#"{"a":1} "#.repeat(10_000);
    let reply = format!("{junk}{{\"agents\":[\"coder\"]}}");
    assert_eq!(error(&reply), NO_AGENTS);
}

#[test]
fn junk_inputs_never_panic() {
    let big_open = "{".repeat(100_000);
    let big_close = "}".repeat(100_000);
    let nested = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let quotes = "\"{".repeat(50_000);
    let fences = "```".repeat(50_000);
    let fenced_braces = "```json\n{".repeat(20_000);
    let escapes = format!("{{\"agents\":[\"{}", "\\".repeat(100_001));
    let huge = format!("{{\"agents\":[{}\"coder\"]}}", "\"x\",".repeat(50_000));
    let inputs: Vec<&str> = vec![
        "",
        " ",
        "{",
        "}",
        "{}",
        "}{",
        "{{}}",
        "```",
        "```json",
        "```json\n```",
        "\"",
        "{\"",
        "{\"agents\":[\"researcher",
        "{\"agents\":[\"researcher\\",
        "{\"agents\": [\"😀\", \"\u{202E}analyst\u{202C}\", \"ана́лиз\"]}",
        "\u{200F}\u{202B}{\"agents\":[\"coder\"]}\u{202C} ✨🚀",
        "\u{FEFF}{\"agents\":[\"coder\"]}",
        "{\"agents\":[\"\u{0}\"]}",
        "{\"agents\":[\"\\ud800\"]}",
        "ǅ{ǅ\"ǅ}ǅ",
        &big_open,
        &big_close,
        &nested,
        &quotes,
        &fences,
        &fenced_braces,
        &escapes,
        &huge,
    ];
    for input in inputs {
        check_invariants(input, ROSTER);
        check_invariants(input, &[]);
    }
    // The huge list is within the cap, so its one known name is still found.
    let plan = parse(&huge).unwrap();
    assert_eq!(plan.agents, ["coder"]);
    assert_eq!(plan.dropped, ["x"]);
}

#[test]
fn unicode_around_a_plan() {
    assert_eq!(
        agents("\u{200F}\u{202B}{\"agents\":[\"coder\"]}\u{202C} ✨🚀"),
        ["coder"]
    );
    assert_eq!(agents("\u{FEFF}{\"agents\":[\"coder\"]}"), ["coder"]);
    let plan = parse("{\"agents\": [\"😀\", \"\u{202E}analyst\", \"critic\"]}").unwrap();
    assert_eq!(plan.agents, ["critic"]);
    assert_eq!(plan.dropped, ["😀", "\u{202E}analyst"]);
}

/// A tiny deterministic fuzzer: random mixes of JSON-ish fragments, checked for
/// panics and for the contract's invariants on every success.
#[test]
fn random_fragments_never_break_invariants() {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        "\\",
        ":",
        ",",
        " ",
        "\n",
        "```",
        "```json",
        "agents",
        "\"agents\"",
        "\"team\"",
        "\"tasks\"",
        "\"researcher\"",
        "\"Coder\"",
        "\"x\"",
        "{\"name\":",
        "\"task\"",
        "null",
        "1",
        "'",
        "é",
        "😀",
        "\u{202E}",
        "\\u00e9",
        "{\"agents\":[\"analyst\"]}",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut found = 0;
    for _ in 0..3_000 {
        let len = (next() % 40) as usize;
        let reply: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        check_invariants(&reply, ROSTER);
        if parse(&reply).is_ok() {
            found += 1;
        }
    }
    assert!(
        found > 0,
        "the fuzzer never produced a plan; its pieces are wrong"
    );
}
