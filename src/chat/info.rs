//! The texts of `/show ...` built from an `/api/show` response, as `generateInteractive`
//! and `showInfo` in Ollama's `cmd/` print them.

use super::parameters::go_value;
use serde_json::{Map, Value};

/// `/show parameters`: the model's own parameters, then the ones set in this session
/// (`%-30s %v` in Ollama).
pub fn parameters(response: &Value, session: &Map<String, Value>) -> String {
    let mut out = String::from("Model defined parameters:\n");
    match text_field(response, "parameters") {
        "" => out.push_str("  No additional parameters were specified for this model.\n"),
        text => {
            for line in text.split('\n') {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out.push('\n');
    if !session.is_empty() {
        out.push_str("User defined parameters:\n");
        for (name, value) in session {
            out.push_str(&format!("  {name:<30} {}\n", go_value(value)));
        }
        out.push('\n');
    }
    out
}

/// `/show system`: the session's system message, else the model's.
pub fn system(response: &Value, session_system: Option<&str>) -> String {
    match (
        session_system.filter(|s| !s.is_empty()),
        text_field(response, "system"),
    ) {
        (Some(system), _) => format!("{system}\n\n"),
        (None, "") => "No system message was specified for this model.\n".to_string(),
        (None, system) => format!("{system}\n\n"),
    }
}

/// `/show license`.
pub fn license(response: &Value) -> String {
    match text_field(response, "license") {
        "" => "No license was specified for this model.\n".to_string(),
        text => format!("{text}\n"),
    }
}

/// `/show template`.
pub fn template(response: &Value) -> String {
    match text_field(response, "template") {
        "" => "No prompt template was specified for this model.\n".to_string(),
        text => format!("{text}\n"),
    }
}

/// `/show modelfile`.
pub fn modelfile(response: &Value) -> String {
    format!("{}\n", text_field(response, "modelfile"))
}

/// `/show info`: the same sectioned tables as `rollama show` (Ollama's `showInfo`).
pub fn info(response: &Value) -> String {
    crate::cli::show::render(response, false)
}

fn text_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_list_model_then_session_values() {
        let response = json!({"parameters": "stop \"<|eot|>\"\ntemperature 0.6"});
        let mut session = Map::new();
        session.insert("temperature".into(), json!(0.7));
        assert_eq!(
            parameters(&response, &session),
            format!(
                "Model defined parameters:\n  stop \"<|eot|>\"\n  temperature 0.6\n\n\
                 User defined parameters:\n  temperature{} 0.7\n\n",
                " ".repeat(19)
            )
        );
    }

    #[test]
    fn parameters_say_when_the_model_defines_none() {
        assert_eq!(
            parameters(&json!({}), &Map::new()),
            "Model defined parameters:\n  No additional parameters were specified for this model.\n\n"
        );
    }
}
