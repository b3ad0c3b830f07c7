//! Tool calls in model output. When a chat request carries `tools`, text that may be a tool
//! call is held back; at the end, JSON objects naming a requested tool (`{"name": …,
//! "arguments"|"parameters": {…}}`, alone, in a list, inside `<tool_call>…</tool_call>` or a
//! code fence) become `message.tool_calls`, as Ollama's parser returns them.

use rand::Rng;
use serde_json::{json, Value};

/// Whether `text` so far could still turn into a tool call (so it must not be streamed yet).
pub fn may_be_tool_call(text: &str) -> bool {
    let t = text.trim_start();
    t.is_empty()
        || t.starts_with('{')
        || t.starts_with('[')
        || "<tool_call>".starts_with(t)
        || t.starts_with("<tool_call>")
        || "```".starts_with(t)
        || t.starts_with("```")
}

/// Tool calls found in a complete answer, for tools named in the request.
pub fn parse_tool_calls(text: &str, tool_names: &[String]) -> Vec<Value> {
    let mut body = text.trim();
    if let Some(rest) = body.strip_prefix("```") {
        body = rest.trim_start_matches("json").trim();
        body = body.strip_suffix("```").unwrap_or(body).trim();
    }
    let mut candidates: Vec<Value> = Vec::new();
    if body.contains("<tool_call>") {
        for part in body.split("<tool_call>").skip(1) {
            let inner = part.split("</tool_call>").next().unwrap_or("").trim();
            if let Ok(value) = serde_json::from_str::<Value>(inner) {
                candidates.push(value);
            }
        }
    } else {
        let mut stream = serde_json::Deserializer::from_str(body).into_iter::<Value>();
        while let Some(Ok(value)) = stream.next() {
            match value {
                Value::Array(items) => candidates.extend(items),
                other => candidates.push(other),
            }
        }
    }
    let mut calls = Vec::new();
    for candidate in candidates {
        let Some(name) = candidate.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !tool_names.iter().any(|t| t == name) {
            continue;
        }
        let arguments = candidate
            .get("arguments")
            .or_else(|| candidate.get("parameters"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        // Some models write the arguments as a JSON string.
        let arguments = match arguments {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            other => other,
        };
        calls.push(json!({
            "id": call_id(),
            "function": {"index": calls.len(), "name": name, "arguments": arguments},
        }));
    }
    calls
}

/// Ollama's tool call IDs: `call_` and eight characters of `[a-z0-9]`.
fn call_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("call_{suffix}")
}

/// The names of the tools in a request.
pub fn tool_names(tools: &[Value]) -> Vec<String> {
    tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["get_weather".to_string(), "add".to_string()]
    }

    #[test]
    fn a_bare_json_call_is_parsed() {
        let calls = parse_tool_calls(
            r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
            &names(),
        );
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(calls[0]["function"]["arguments"], json!({"city": "Paris"}));
        assert_eq!(calls[0]["function"]["index"], 0);
        let id = calls[0]["id"].as_str().unwrap();
        assert!(id.starts_with("call_") && id.len() == 13);
    }

    #[test]
    fn tagged_listed_fenced_and_stringified_calls_are_parsed() {
        let tagged = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>{\"name\": \"get_weather\", \"parameters\": {}}</tool_call>";
        let calls = parse_tool_calls(tagged, &names());
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["function"]["index"], 1);
        let listed = r#"[{"name": "add", "arguments": "{\"a\": 2}"}]"#;
        assert_eq!(
            parse_tool_calls(listed, &names())[0]["function"]["arguments"],
            json!({"a": 2})
        );
        let fenced = "```json\n{\"name\": \"add\", \"arguments\": {}}\n```";
        assert_eq!(parse_tool_calls(fenced, &names()).len(), 1);
    }

    #[test]
    fn prose_and_unknown_tools_are_not_calls() {
        assert!(parse_tool_calls("The weather is nice.", &names()).is_empty());
        assert!(parse_tool_calls(r#"{"name": "rm_rf", "arguments": {}}"#, &names()).is_empty());
        assert!(parse_tool_calls(r#"{"city": "Paris"}"#, &names()).is_empty());
    }

    #[test]
    fn only_text_that_could_start_a_call_is_held_back() {
        assert!(may_be_tool_call("  {\"na"));
        assert!(may_be_tool_call("<tool"));
        assert!(may_be_tool_call("``"));
        assert!(!may_be_tool_call("Hello"));
        assert!(!may_be_tool_call("<b>"));
    }
}
