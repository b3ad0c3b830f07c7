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

/// `/show info` (Ollama's `showInfo` without `--verbose`): sectioned tables for the model,
/// its capabilities and parameters, and the first lines of its system message and license.
/// The CLI can pass its own renderer through `Options::show_info` to share one copy.
pub fn info(response: &Value) -> String {
    let details = &response["details"];
    let mut out = String::new();
    let mut rows = Vec::new();
    if let Some(remote) = response["remote_model"].as_str().filter(|r| !r.is_empty()) {
        rows.push(row(&["Remote model", remote]));
        rows.push(row(&["Remote URL", text_field(response, "remote_host")]));
    }
    if let Some(model_info) = response["model_info"].as_object() {
        let arch = model_info
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !arch.is_empty() {
            rows.push(row(&["architecture", arch]));
        }
        let parameters = match text_field(details, "parameter_size") {
            "" => model_info
                .get("general.parameter_count")
                .and_then(Value::as_f64)
                .map(|n| human_number(n as u64))
                .unwrap_or_default(),
            size => size.to_string(),
        };
        if !parameters.is_empty() {
            rows.push(row(&["parameters", &parameters]));
        }
        for (label, key) in [
            ("context length", "context_length"),
            ("embedding length", "embedding_length"),
        ] {
            if let Some(n) = model_info
                .get(&format!("{arch}.{key}"))
                .and_then(Value::as_f64)
            {
                rows.push(row(&[label, &n.to_string()]));
            }
        }
    } else {
        rows.push(row(&["architecture", text_field(details, "family")]));
        rows.push(row(&["parameters", text_field(details, "parameter_size")]));
    }
    rows.push(row(&[
        "quantization",
        text_field(details, "quantization_level"),
    ]));
    if let Some(requires) = response["requires"].as_str().filter(|r| !r.is_empty()) {
        rows.push(row(&["requires", requires]));
    }
    section(&mut out, "Model", &rows);

    if let Some(capabilities) = response["capabilities"].as_array() {
        if !capabilities.is_empty() {
            let rows: Vec<Vec<String>> = capabilities
                .iter()
                .map(|c| row(&[c.as_str().unwrap_or_default()]))
                .collect();
            section(&mut out, "Capabilities", &rows);
        }
    }
    let parameters = text_field(response, "parameters");
    if !parameters.is_empty() {
        let rows: Vec<Vec<String>> = parameters
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                std::iter::once(String::new())
                    .chain(l.split_whitespace().map(str::to_string))
                    .collect()
            })
            .collect();
        section(&mut out, "Parameters", &rows);
    }
    for (header, key) in [("System", "system"), ("License", "license")] {
        let text = text_field(response, key);
        if !text.is_empty() {
            section(&mut out, header, &head(text, 2));
        }
    }
    out
}

fn text_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

fn row(cells: &[&str]) -> Vec<String> {
    std::iter::once("")
        .chain(cells.iter().copied())
        .map(str::to_string)
        .collect()
}

/// The first `limit` non-blank lines, then `...` if there were more.
fn head(text: &str, limit: usize) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut rows: Vec<Vec<String>> = lines.iter().take(limit).map(|l| row(&[l])).collect();
    if lines.len() > limit {
        rows.push(row(&["..."]));
    }
    rows
}

/// A header line and a borderless table, as Ollama configures tablewriter: each cell padded
/// to its column's width and followed by four spaces.
fn section(out: &mut String, header: &str, rows: &[Vec<String>]) {
    out.push_str(&format!("  {header}\n"));
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(&format!("{cell:<width$}    "));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// Ollama's `format.HumanNumber`: `7B`, `3.2B`, `137M`, `1.5K`.
fn human_number(n: u64) -> String {
    for (scale, suffix) in [(1e9, "B"), (1e6, "M"), (1e3, "K")] {
        let value = n as f64 / scale;
        if value >= 1.0 {
            return if value.fract() == 0.0 {
                format!("{value:.0}{suffix}")
            } else {
                format!("{value:.1}{suffix}")
            };
        }
    }
    n.to_string()
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

    #[test]
    fn info_renders_model_and_capability_sections() {
        let response = json!({
            "details": {"parameter_size": "494.03M", "quantization_level": "Q4_K_M", "family": "qwen2"},
            "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
            "capabilities": ["completion"],
        });
        let expected = [
            "  Model",
            "    architecture      qwen2      ",
            "    parameters        494.03M    ",
            "    context length    32768      ",
            "    quantization      Q4_K_M     ",
            "",
            "  Capabilities",
            "    completion    ",
            "",
            "",
        ];
        assert_eq!(info(&response), expected.join("\n"));
    }

    #[test]
    fn human_numbers_use_one_decimal_unless_whole() {
        assert_eq!(human_number(7_000_000_000), "7B");
        assert_eq!(human_number(3_210_000_000), "3.2B");
        assert_eq!(human_number(999), "999");
    }
}
