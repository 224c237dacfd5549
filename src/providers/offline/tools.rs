//! The offline provider's one tool call: which offered tool it calls (the first whose
//! required arguments it can fill from the input schema) and the arguments it sends.
//!
//! Only required arguments are filled, with the plainest value the schema allows: a
//! `const`, a `default` or an enum's first value when there is one; else the task's
//! text for free-text strings and a short placeholder for other strings, small counting
//! numbers, `false`, empty arrays, and objects filled the same way. A string it cannot
//! make up honestly (an address, a pattern, an unknown format) makes the tool skipped:
//! the offline provider never invents a URL or a path it would then fetch or touch.

use crate::providers::call::ToolSpec;
use serde_json::{Map, Value};

/// How deep nested objects and arrays are filled before a tool is skipped.
const MAX_DEPTH: usize = 4;
/// The longest task text put in one argument.
const MAX_TEXT_CHARS: usize = 200;
/// An array that must hold more items than this is not filled.
const MAX_MIN_ITEMS: u64 = 3;
/// Property names whose strings take the task's text (a search, a message, a prompt).
const FREE_TEXT_NAMES: &[&str] = &[
    "message", "text", "query", "q", "prompt", "input", "content", "question", "search", "topic",
    "task", "term", "keywords", "body",
];
/// What other strings get.
const PLACEHOLDER: &str = "example";

/// The first tool whose required arguments can be filled, with those arguments.
pub(super) fn first_callable<'t>(
    tools: &'t [ToolSpec],
    task: &str,
) -> Option<(&'t ToolSpec, Value)> {
    tools
        .iter()
        .find_map(|tool| fill_arguments(&tool.input_schema, task).map(|args| (tool, args)))
}

/// The arguments for a tool with this input schema, or `None` when a required one
/// cannot be filled. The schema must describe an object (MCP requires it).
pub(super) fn fill_arguments(schema: &Value, task: &str) -> Option<Value> {
    let mut filler = Filler {
        task: task.trim(),
        numbers: 0,
    };
    match filler.fill(schema, None, 0)? {
        object @ Value::Object(_) => Some(object),
        _ => None,
    }
}

struct Filler<'a> {
    task: &'a str,
    /// Numbers filled so far: each gets the next count (1, 2, …), so `a + b` shows.
    numbers: u32,
}

impl Filler<'_> {
    /// A value for `schema`; `key` is the property's name when it is one.
    fn fill(&mut self, schema: &Value, key: Option<&str>, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        // `true` (anything goes) has no type to fill from; `false` admits nothing.
        let schema = schema.as_object()?;
        if let Some(value) = schema.get("const") {
            return Some(value.clone());
        }
        if let Some(value) = schema.get("default") {
            return Some(value.clone());
        }
        if let Some(first) = schema.get("enum").and_then(Value::as_array) {
            return first.first().cloned();
        }
        for alternatives in ["anyOf", "oneOf"] {
            if let Some(list) = schema.get(alternatives).and_then(Value::as_array) {
                return list.iter().find_map(|s| self.fill(s, key, depth + 1));
            }
        }
        match schema.get("type") {
            Some(Value::String(t)) => self.fill_type(t, schema, key, depth),
            // `["null", "string"]`: a value of the first type that can be filled,
            // null only when nothing else can.
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .chain(
                    types
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|t| *t == "null"),
                )
                .find_map(|t| self.fill_type(t, schema, key, depth)),
            // No type but properties: an object, as MCP's input schemas often say.
            None if schema.contains_key("properties") => {
                self.fill_type("object", schema, key, depth)
            }
            _ => None,
        }
    }

    fn fill_type(
        &mut self,
        kind: &str,
        schema: &Map<String, Value>,
        key: Option<&str>,
        depth: usize,
    ) -> Option<Value> {
        match kind {
            "string" => self.string(schema, key).map(Value::String),
            "integer" => self.number(schema, true),
            "number" => self.number(schema, false),
            "boolean" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            "array" => self.array(schema, depth),
            "object" => self.object(schema, depth),
            _ => None,
        }
    }

    fn string(&self, schema: &Map<String, Value>, key: Option<&str>) -> Option<String> {
        if schema.contains_key("pattern") {
            return None;
        }
        let text = match schema.get("format").and_then(Value::as_str) {
            None => {
                let free_text = key.is_some_and(|k| {
                    FREE_TEXT_NAMES
                        .iter()
                        .any(|name| k.eq_ignore_ascii_case(name))
                });
                if free_text && !self.task.is_empty() {
                    self.task.chars().take(MAX_TEXT_CHARS).collect()
                } else {
                    PLACEHOLDER.to_string()
                }
            }
            Some("date") => "2026-01-01".to_string(),
            Some("date-time") => "2026-01-01T00:00:00Z".to_string(),
            Some("time") => "00:00:00Z".to_string(),
            Some("email") => "user@example.com".to_string(),
            // Addresses, paths and the rest are not made up.
            Some(_) => return None,
        };
        let length = |name: &str| schema.get(name).and_then(Value::as_u64);
        let max = length("maxLength").map_or(usize::MAX, |n| n as usize);
        let text: String = text.chars().take(max).collect();
        let long_enough = length("minLength").is_none_or(|min| text.chars().count() as u64 >= min);
        long_enough.then_some(text)
    }

    /// The next count, moved into the schema's bounds and onto its `multipleOf`; a
    /// `number` whose bounds hold no whole one gets their midpoint. `None` when nothing
    /// fits.
    fn number(&mut self, schema: &Map<String, Value>, integer: bool) -> Option<Value> {
        self.numbers += 1;
        let bound = |name: &str| schema.get(name).and_then(Value::as_f64);
        let onto_step = |value: f64| match bound("multipleOf").filter(|m| *m > 0.0) {
            Some(step) => (value / step).ceil() * step,
            None => value,
        };
        let fits = |value: f64| {
            value.is_finite()
                && bound("minimum").is_none_or(|m| value >= m)
                && bound("exclusiveMinimum").is_none_or(|m| value > m)
                && bound("maximum").is_none_or(|m| value <= m)
                && bound("exclusiveMaximum").is_none_or(|m| value < m)
        };
        let mut whole = f64::from(self.numbers);
        if let Some(min) = bound("minimum") {
            whole = whole.max(min.ceil());
        }
        if let Some(min) = bound("exclusiveMinimum") {
            whole = whole.max(min.floor() + 1.0);
        }
        if let Some(max) = bound("maximum") {
            whole = whole.min(max.floor());
        }
        if let Some(max) = bound("exclusiveMaximum") {
            whole = whole.min(max.ceil() - 1.0);
        }
        let whole = onto_step(whole);
        if fits(whole) && whole.fract() == 0.0 {
            return Some(Value::from(whole as i64));
        }
        let low = bound("minimum").or(bound("exclusiveMinimum"))?;
        let high = bound("maximum").or(bound("exclusiveMaximum"))?;
        let middle = onto_step((low + high) / 2.0);
        (!integer && fits(middle)).then(|| Value::from(middle))
    }

    fn array(&mut self, schema: &Map<String, Value>, depth: usize) -> Option<Value> {
        let min_items = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        if min_items == 0 {
            return Some(Value::Array(Vec::new()));
        }
        if min_items > MAX_MIN_ITEMS {
            return None;
        }
        let items = schema.get("items")?;
        (0..min_items)
            .map(|_| self.fill(items, None, depth + 1))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array)
    }

    /// Only the required properties, in the order `required` names them.
    fn object(&mut self, schema: &Map<String, Value>, depth: usize) -> Option<Value> {
        let properties = schema.get("properties").and_then(Value::as_object);
        let mut object = Map::new();
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten() {
            let name = name.as_str()?;
            let property = properties.and_then(|p| p.get(name))?;
            let value = self.fill(property, Some(name), depth + 1)?;
            object.insert(name.to_string(), value);
        }
        Some(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TASK: &str = "Why is the sky blue?";

    fn spec(name: &str, schema: Value) -> ToolSpec {
        ToolSpec {
            name: name.to_string(),
            description: String::new(),
            input_schema: schema,
        }
    }

    /// Schemas as server-everything (2026.8.31) lists them.
    fn echo() -> Value {
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"message": {"type": "string", "description": "Message to echo"}},
            "required": ["message"]})
    }
    fn get_sum() -> Value {
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"a": {"type": "number", "description": "First number"},
                           "b": {"type": "number", "description": "Second number"}},
            "required": ["a", "b"]})
    }

    #[test]
    fn server_everything_tools_get_filled_from_the_task_and_the_schema() {
        assert_eq!(
            fill_arguments(&echo(), TASK),
            Some(json!({"message": TASK}))
        );
        assert_eq!(
            fill_arguments(&get_sum(), TASK),
            Some(json!({"a": 1, "b": 2}))
        );
        let annotated = json!({"type": "object", "properties": {
            "messageType": {"type": "string", "enum": ["error", "success", "debug"]},
            "includeImage": {"default": false, "type": "boolean"}},
            "required": ["messageType"]});
        assert_eq!(
            fill_arguments(&annotated, TASK),
            Some(json!({"messageType": "error"}))
        );
        let structured = json!({"type": "object", "properties": {
            "location": {"type": "string", "enum": ["New York", "Chicago", "Los Angeles"]}},
            "required": ["location"]});
        assert_eq!(
            fill_arguments(&structured, TASK),
            Some(json!({"location": "New York"}))
        );
        // Optional arguments are left to the server's defaults.
        let long_running = json!({"type": "object", "properties": {
            "duration": {"default": 10, "type": "number"}, "steps": {"default": 5, "type": "number"}}});
        assert_eq!(fill_arguments(&long_running, TASK), Some(json!({})));
        let research = json!({"type": "object", "properties": {
            "topic": {"type": "string"}, "ambiguous": {"default": false, "type": "boolean"}},
            "required": ["topic"]});
        assert_eq!(
            fill_arguments(&research, TASK),
            Some(json!({"topic": TASK}))
        );
        assert_eq!(
            fill_arguments(&json!({"type": "object", "properties": {}}), TASK),
            Some(json!({}))
        );
    }

    #[test]
    fn the_first_tool_that_can_be_filled_is_chosen() {
        let url_only = json!({"type": "object",
            "properties": {"url": {"type": "string", "format": "uri"}}, "required": ["url"]});
        let tools = [
            spec("fetch__fetch", url_only),
            spec("everything__get-sum", get_sum()),
            spec("everything__echo", echo()),
        ];
        let (tool, args) = first_callable(&tools, TASK).unwrap();
        assert_eq!(tool.name, "everything__get-sum");
        assert_eq!(args, json!({"a": 1, "b": 2}));
        assert!(first_callable(&tools[..1], TASK).is_none());
        assert!(first_callable(&[], TASK).is_none());
    }

    #[test]
    fn strings_follow_their_names_bounds_and_formats() {
        let one = |property: Value| {
            fill_arguments(
                &json!({"type": "object", "properties": {"x": property}, "required": ["x"]}),
                TASK,
            )
            .map(|v| v["x"].clone())
        };
        // A string not named like free text gets the placeholder, cut to its bound.
        assert_eq!(one(json!({"type": "string"})), Some(json!("example")));
        assert_eq!(
            one(json!({"type": "string", "maxLength": 3})),
            Some(json!("exa"))
        );
        assert_eq!(one(json!({"type": "string", "minLength": 10})), None);
        assert_eq!(one(json!({"type": "string", "pattern": "^[0-9]+$"})), None);
        assert_eq!(one(json!({"type": "string", "format": "uri"})), None);
        assert_eq!(
            one(json!({"type": "string", "format": "date"})),
            Some(json!("2026-01-01"))
        );
        assert_eq!(
            one(json!({"type": "string", "default": "README.md"})),
            Some(json!("README.md"))
        );
        assert_eq!(one(json!({"const": "v1"})), Some(json!("v1")));
        assert_eq!(
            one(json!({"type": ["null", "string"]})),
            Some(json!("example"))
        );
        assert_eq!(
            one(json!({"type": ["null", "object"], "required": ["y"]})),
            Some(json!(null))
        );
        assert_eq!(
            one(json!({"anyOf": [{"type": "string", "format": "uri"}, {"type": "boolean"}]})),
            Some(json!(false))
        );
        // The task text is cut to a bound, and to the argument's own maximum.
        let long = "word ".repeat(100);
        let query = json!({"type": "object",
            "properties": {"Query": {"type": "string"}, "q": {"type": "string", "maxLength": 9}},
            "required": ["Query", "q"]});
        let filled = fill_arguments(&query, &long).unwrap();
        assert_eq!(
            filled["Query"].as_str().unwrap().chars().count(),
            MAX_TEXT_CHARS
        );
        assert_eq!(filled["q"], json!("word word"));
    }

    #[test]
    fn numbers_count_up_inside_their_bounds() {
        let schema = json!({"type": "object", "properties": {
            "page": {"type": "integer", "minimum": 5},
            "ratio": {"type": "number", "exclusiveMaximum": 1},
            "id": {"type": "integer", "exclusiveMinimum": 0, "maximum": 100},
            "step": {"type": "integer", "multipleOf": 4}},
            "required": ["page", "ratio", "id"]});
        assert_eq!(
            fill_arguments(&schema, TASK),
            Some(json!({"page": 5, "ratio": 0, "id": 3}))
        );
        let impossible = json!({"type": "object",
            "properties": {"n": {"type": "integer", "minimum": 2, "maximum": 1}}, "required": ["n"]});
        assert_eq!(fill_arguments(&impossible, TASK), None);
        let multiple = json!({"type": "object", "properties": {
            "n": {"type": "integer", "multipleOf": 4},
            "half": {"type": "number", "minimum": 0.2, "maximum": 0.6, "multipleOf": 0.5}},
            "required": ["n", "half"]});
        assert_eq!(
            fill_arguments(&multiple, TASK),
            Some(json!({"n": 4, "half": 0.5}))
        );
        let no_multiple = json!({"type": "object", "properties": {
            "n": {"type": "integer", "maximum": 3, "multipleOf": 4}}, "required": ["n"]});
        assert_eq!(fill_arguments(&no_multiple, TASK), None);
    }

    #[test]
    fn arrays_and_nested_objects_are_filled_or_the_tool_is_skipped() {
        let schema = json!({"type": "object", "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "pair": {"type": "array", "minItems": 2, "items": {"type": "boolean"}},
            "filter": {"properties": {"text": {"type": "string"}, "limit": {"type": "integer"}},
                       "required": ["text"]}},
            "required": ["tags", "pair", "filter"]});
        assert_eq!(
            fill_arguments(&schema, TASK),
            Some(json!({"tags": [], "pair": [false, false], "filter": {"text": TASK}}))
        );
        let many = json!({"type": "object", "properties": {
            "xs": {"type": "array", "minItems": 50, "items": {"type": "string"}}}, "required": ["xs"]});
        assert_eq!(fill_arguments(&many, TASK), None);
        // A required name with no schema, a $ref, and an unbounded nesting are skipped.
        let undeclared = json!({"type": "object", "properties": {}, "required": ["x"]});
        assert_eq!(fill_arguments(&undeclared, TASK), None);
        let reference = json!({"type": "object",
            "properties": {"x": {"$ref": "#/$defs/X"}}, "required": ["x"]});
        assert_eq!(fill_arguments(&reference, TASK), None);
        let mut deep = json!({"type": "object", "properties": {}});
        for _ in 0..10 {
            deep = json!({"type": "object", "properties": {"x": deep}, "required": ["x"]});
        }
        assert_eq!(fill_arguments(&deep, TASK), None);
        // The input schema itself must be an object.
        assert_eq!(fill_arguments(&json!({"type": "string"}), TASK), None);
        assert_eq!(fill_arguments(&json!(true), TASK), None);
    }
}
