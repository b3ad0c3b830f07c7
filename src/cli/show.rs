//! `rollama show`: one raw field with a flag, otherwise Ollama's sectioned tables.

use crate::cli::ShowArgs;
use crate::client::Client;
use crate::format::table;
use crate::gguf::human_number;
use anyhow::{bail, Result};
use serde_json::{json, Value};

pub async fn show(client: &Client, args: ShowArgs) -> Result<()> {
    let flags = [
        args.license,
        args.modelfile,
        args.parameters,
        args.system,
        args.template,
    ];
    if flags.iter().filter(|f| **f).count() > 1 {
        bail!("only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified");
    }
    let response: Value = client
        .post_json(
            "/api/show",
            &json!({"model": args.model, "verbose": args.verbose}),
        )
        .await?;
    let field = |key: &str| response[key].as_str().unwrap_or_default().to_string();
    if args.license {
        println!("{}", field("license"));
    } else if args.modelfile {
        println!("{}", field("modelfile"));
    } else if args.parameters {
        println!("{}", field("parameters"));
    } else if args.system {
        print!("{}", field("system"));
    } else if args.template {
        print!("{}", field("template"));
    } else {
        print!("{}", render(&response, args.verbose));
    }
    Ok(())
}

fn section(out: &mut String, header: &str, rows: Vec<Vec<String>>) {
    out.push_str("  ");
    out.push_str(header);
    out.push('\n');
    out.push_str(&table(None, &rows));
    out.push('\n');
}

fn row(cells: &[&str]) -> Vec<String> {
    std::iter::once("")
        .chain(cells.iter().copied())
        .map(str::to_string)
        .collect()
}

/// Ollama's `showInfo`.
pub fn render(response: &Value, verbose: bool) -> String {
    let mut out = String::new();
    let info = response["model_info"].as_object();
    let details = &response["details"];
    let mut rows = Vec::new();
    if let Some(remote) = response["remote_model"].as_str() {
        rows.push(row(&["Remote model", remote]));
        rows.push(row(&[
            "Remote URL",
            response["remote_host"].as_str().unwrap_or_default(),
        ]));
    }
    if let Some(info) = info {
        let arch = info
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !arch.is_empty() {
            rows.push(row(&["architecture", arch]));
        }
        let parameters = match details["parameter_size"].as_str() {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => info
                .get("general.parameter_count")
                .and_then(Value::as_f64)
                .map(|n| human_number(n as u64))
                .unwrap_or_default(),
        };
        if !parameters.is_empty() {
            rows.push(row(&["parameters", &parameters]));
        }
        for (label, key) in [
            ("context length", "context_length"),
            ("embedding length", "embedding_length"),
        ] {
            if let Some(n) = info.get(&format!("{arch}.{key}")).and_then(Value::as_f64) {
                rows.push(row(&[label, &n.to_string()]));
            }
        }
    } else {
        rows.push(row(&[
            "architecture",
            details["family"].as_str().unwrap_or_default(),
        ]));
        rows.push(row(&[
            "parameters",
            details["parameter_size"].as_str().unwrap_or_default(),
        ]));
    }
    rows.push(row(&[
        "quantization",
        details["quantization_level"].as_str().unwrap_or_default(),
    ]));
    if let Some(requires) = response["requires"].as_str().filter(|r| !r.is_empty()) {
        rows.push(row(&["requires", requires]));
    }
    section(&mut out, "Model", rows);

    if let Some(caps) = response["capabilities"]
        .as_array()
        .filter(|c| !c.is_empty())
    {
        let rows = caps
            .iter()
            .map(|c| row(&[c.as_str().unwrap_or_default()]))
            .collect();
        section(&mut out, "Capabilities", rows);
    }

    if let Some(translation) = response["translation"].as_object() {
        let layout = translation
            .get("layout")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let family = layout.strip_prefix("ollama/").unwrap_or(layout);
        let copy = match translation.get("derived_bytes").and_then(Value::as_i64) {
            Some(bytes) if bytes > 0 => format!("{} on disk", crate::format::human_bytes(bytes)),
            _ => "written at first load".to_string(),
        };
        let rows = vec![
            row(&[
                "layout",
                &format!("Ollama's {family}, translated for llama.cpp"),
            ]),
            row(&["copy", &copy]),
        ];
        section(&mut out, "Translation", rows);
    }

    if let Some(projector) = response["projector_info"].as_object() {
        let mut rows = Vec::new();
        let arch = projector
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !arch.is_empty() {
            rows.push(row(&["architecture", arch]));
        }
        if let Some(n) = projector
            .get("general.parameter_count")
            .and_then(Value::as_f64)
        {
            rows.push(row(&["parameters", &human_number(n as u64)]));
        }
        for (label, suffix) in [
            ("embedding length", "embedding_length"),
            ("dimensions", "projection_dim"),
        ] {
            let value = ["vision", "audio"].iter().find_map(|modality| {
                projector
                    .get(&format!("{arch}.{modality}.{suffix}"))
                    .and_then(Value::as_f64)
            });
            if let Some(n) = value {
                rows.push(row(&[label, &n.to_string()]));
            }
        }
        section(&mut out, "Projector", rows);
    }

    if let Some(parameters) = response["parameters"].as_str().filter(|p| !p.is_empty()) {
        let rows = parameters
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                std::iter::once(String::new())
                    .chain(l.split_whitespace().map(str::to_string))
                    .collect()
            })
            .collect();
        section(&mut out, "Parameters", rows);
    }

    if verbose {
        if let Some(info) = info {
            let mut keys: Vec<&String> = info.keys().collect();
            keys.sort();
            let rows = keys
                .into_iter()
                .map(|k| row(&[k, &metadata_value(&info[k])]))
                .collect();
            section(&mut out, "Metadata", rows);
        }
        if let Some(tensors) = response["tensors"].as_array().filter(|t| !t.is_empty()) {
            let rows = tensors
                .iter()
                .map(|t| {
                    row(&[
                        t["name"].as_str().unwrap_or_default(),
                        t["type"].as_str().unwrap_or_default(),
                        &go_list(&t["shape"]),
                    ])
                })
                .collect();
            section(&mut out, "Tensors", rows);
        }
    }

    for (header, key) in [("System", "system"), ("License", "license")] {
        if let Some(text) = response[key].as_str().filter(|t| !t.is_empty()) {
            section(&mut out, header, head(text, 2));
        }
    }
    out
}

/// The first `n` non-empty lines, then `...` if there were more.
fn head(text: &str, n: usize) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut rows: Vec<Vec<String>> = lines.iter().take(n).map(|l| row(&[l])).collect();
    if lines.len() > n {
        rows.push(row(&["..."]));
    }
    rows
}

/// A metadata value as Ollama prints it: `%g` numbers, `%t` bools, arrays cut to ~10 columns.
fn metadata_value(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_g(n.as_f64().unwrap_or(0.0)),
        Value::Array(items) => {
            const TARGET_WIDTH: usize = 10;
            let mut shown = 0;
            let mut width = 1;
            for (i, item) in items.iter().enumerate() {
                let mut w = go_v(item).chars().count();
                if i > 0 {
                    w += 2;
                }
                if width + w > TARGET_WIDTH && i > 0 {
                    break;
                }
                width += w;
                shown += 1;
            }
            let listed: Vec<String> = items.iter().take(shown).map(go_v).collect();
            if shown < items.len() {
                format!("[{} ...+{} more]", listed.join(" "), items.len() - shown)
            } else {
                format!("[{}]", listed.join(" "))
            }
        }
        Value::Null => "<nil>".to_string(),
        Value::Object(_) => "map[string]interface {}".to_string(),
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_v(value: &Value) -> String {
    match value {
        Value::Number(n) => go_g(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(_) => go_list(value),
        other => other.to_string(),
    }
}

fn go_list(value: &Value) -> String {
    let items: Vec<String> = value.as_array().into_iter().flatten().map(go_v).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%g` for a float64: shortest digits, exponent form when the exponent is below -4
/// or at least 6 (`strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_g(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".to_string();
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_matches_go_formatting() {
        assert_eq!(go_g(8192.0), "8192");
        assert_eq!(go_g(100000.0), "100000");
        assert_eq!(go_g(1e-5), "1e-05");
        assert_eq!(go_g(0.5), "0.5");
        assert_eq!(go_g(1_000_000.0), "1e+06");
        assert_eq!(go_g(134_515_008.0), "1.34515008e+08");
    }

    #[test]
    fn arrays_are_abbreviated_to_about_ten_columns() {
        let value = json!(["a", "b", "c", "d", "e", "f"]);
        assert_eq!(metadata_value(&value), "[a b c ...+3 more]");
        assert_eq!(metadata_value(&json!([1, 2])), "[1 2]");
    }

    #[test]
    fn renders_the_model_section_like_ollama() {
        let response = json!({
            "details": {"parameter_size": "7B", "quantization_level": "FP16"},
            "model_info": {
                "general.architecture": "test",
                "test.context_length": 0,
                "test.embedding_length": 0
            }
        });
        assert_eq!(
            render(&response, false),
            "  Model\n\
             \x20   architecture        test    \n\
             \x20   parameters          7B      \n\
             \x20   context length      0       \n\
             \x20   embedding length    0       \n\
             \x20   quantization        FP16    \n\n"
        );
    }
}
