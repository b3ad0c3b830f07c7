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
pub fn call_id() -> String {
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

/// `tool_choice` (beyond Ollama, which ignores it): which tool calls the answer may or must
/// hold. The compatibility APIs translate theirs into OpenAI's form, which `/api/chat` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (the default).
    Auto,
    /// No tool calls: the tools are neither shown to the model nor parsed out.
    None,
    /// The answer is a call to one of the tools.
    Required,
    /// The answer is a call to this tool.
    Named(String),
}

impl ToolChoice {
    /// OpenAI's forms: `"auto"`, `"none"`, `"required"`,
    /// `{"type": "function", "function": {"name": …}}` (Chat Completions) or
    /// `{"type": "function", "name": …}` (Responses).
    pub fn parse(value: Option<&Value>) -> Result<ToolChoice, String> {
        match value {
            None | Some(Value::Null) => Ok(ToolChoice::Auto),
            Some(Value::String(s)) => match s.as_str() {
                "auto" | "" => Ok(ToolChoice::Auto),
                "none" => Ok(ToolChoice::None),
                "required" => Ok(ToolChoice::Required),
                other => Err(format!(
                    "invalid tool_choice: \"{other}\" (must be \"auto\", \"none\", \"required\" or a function)"
                )),
            },
            Some(object @ Value::Object(_)) => {
                let name = object["function"]["name"]
                    .as_str()
                    .or_else(|| object["name"].as_str());
                match (object["type"].as_str(), name) {
                    (Some("function") | None, Some(name)) => Ok(ToolChoice::Named(name.to_string())),
                    _ => Err(format!("invalid tool_choice: {object}")),
                }
            }
            Some(other) => Err(format!("invalid tool_choice: {other}")),
        }
    }

    /// The JSON schema the answer must satisfy for this choice: one call object,
    /// `{"name": <an allowed tool>, "arguments": <that tool's parameters>}`. `None` when
    /// the model is free to answer in prose.
    pub fn call_schema(&self, tools: &[Value]) -> Result<Option<Value>, String> {
        let allowed: Vec<&Value> = match self {
            ToolChoice::Auto | ToolChoice::None => return Ok(None),
            ToolChoice::Required => tools.iter().collect(),
            ToolChoice::Named(name) => tools
                .iter()
                .filter(|t| t["function"]["name"].as_str() == Some(name))
                .collect(),
        };
        if allowed.is_empty() {
            return Err(match self {
                ToolChoice::Named(name) => {
                    format!("tool_choice names the function \"{name}\", which is not in tools")
                }
                _ => "tool_choice requires a tool call but the request has no tools".to_string(),
            });
        }
        let mut options: Vec<Value> = allowed
            .iter()
            .filter_map(|tool| {
                let function = &tool["function"];
                let name = function["name"].as_str()?;
                let parameters = match &function["parameters"] {
                    Value::Object(p) if !p.is_empty() => {
                        let mut p = p.clone();
                        // A call names only the arguments the tool declares (OpenAI's strict
                        // mode), unless the schema says otherwise.
                        if p.contains_key("properties") && !p.contains_key("additionalProperties") {
                            p.insert("additionalProperties".into(), json!(false));
                        }
                        Value::Object(p)
                    }
                    _ => json!({"type": "object"}),
                };
                Some(json!({
                    "type": "object",
                    "properties": {"name": {"const": name}, "arguments": parameters},
                    "required": ["name", "arguments"],
                    "additionalProperties": false,
                }))
            })
            .collect();
        let schema = if options.len() == 1 {
            options.remove(0)
        } else {
            json!({"anyOf": options})
        };
        Ok(Some(schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_choice_takes_openai_forms() {
        assert_eq!(ToolChoice::parse(None).unwrap(), ToolChoice::Auto);
        assert_eq!(
            ToolChoice::parse(Some(&json!("none"))).unwrap(),
            ToolChoice::None
        );
        assert_eq!(
            ToolChoice::parse(Some(&json!("required"))).unwrap(),
            ToolChoice::Required
        );
        assert_eq!(
            ToolChoice::parse(Some(
                &json!({"type": "function", "function": {"name": "add"}})
            ))
            .unwrap(),
            ToolChoice::Named("add".into())
        );
        assert_eq!(
            ToolChoice::parse(Some(&json!({"type": "function", "name": "add"}))).unwrap(),
            ToolChoice::Named("add".into())
        );
        assert!(ToolChoice::parse(Some(&json!("sometimes"))).is_err());
        assert!(ToolChoice::parse(Some(&json!(3))).is_err());
    }

    #[test]
    fn a_required_call_is_constrained_to_the_allowed_tools() {
        let tools = json!([
            {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
            {"type": "function", "function": {"name": "now"}},
        ]);
        let tools = tools.as_array().unwrap();
        let named = ToolChoice::Named("add".into())
            .call_schema(tools)
            .unwrap()
            .unwrap();
        assert_eq!(named["properties"]["name"], json!({"const": "add"}));
        assert_eq!(
            named["properties"]["arguments"]["properties"]["a"]["type"],
            "integer"
        );
        let any = ToolChoice::Required.call_schema(tools).unwrap().unwrap();
        assert_eq!(any["anyOf"].as_array().unwrap().len(), 2);
        assert_eq!(
            any["anyOf"][1]["properties"]["arguments"],
            json!({"type": "object"})
        );
        assert!(ToolChoice::Auto.call_schema(tools).unwrap().is_none());
        assert!(ToolChoice::Named("rm".into()).call_schema(tools).is_err());
        assert!(ToolChoice::Required.call_schema(&[]).is_err());
    }

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
