//! Typing of `/set parameter NAME VALUE...` as Ollama's `api.FormatParams` does it, and the
//! Go `%v`/`%q` renderings the REPL prints around it.
//!
//! The main crate's `modelfile::format_parameters` does the same for Modelfiles; this copy
//! keeps the REPL free of other modules, and covers just one parameter at a time.

use serde_json::Value;

/// The Go type of an `api.Options` field, which decides how its text is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Bool,
    Strings,
}

/// Every JSON name of `api.Options` (with its embedded `api.Runner`), by type.
const PARAMETERS: &[(&str, Kind)] = &[
    ("num_ctx", Kind::Int),
    ("num_batch", Kind::Int),
    ("num_gpu", Kind::Int),
    ("main_gpu", Kind::Int),
    ("use_mmap", Kind::Bool),
    ("num_thread", Kind::Int),
    ("draft_num_predict", Kind::Int),
    ("num_keep", Kind::Int),
    ("seed", Kind::Int),
    ("num_predict", Kind::Int),
    ("top_k", Kind::Int),
    ("top_p", Kind::Float),
    ("min_p", Kind::Float),
    ("typical_p", Kind::Float),
    ("repeat_last_n", Kind::Int),
    ("temperature", Kind::Float),
    ("repeat_penalty", Kind::Float),
    ("presence_penalty", Kind::Float),
    ("frequency_penalty", Kind::Float),
    ("stop", Kind::Strings),
];

/// Types the words after `/set parameter NAME` into the JSON value Ollama would send.
///
/// Scalars read the first word only; `stop` keeps all words (one `/set parameter stop a b`
/// sets both, and a later `/set parameter stop c` replaces them, as in Ollama). The error is
/// Ollama's text, e.g. `unknown parameter 'foo'` or `invalid int value [abc]`.
pub fn format_parameter(name: &str, values: &[String]) -> Result<Value, String> {
    let Some(&(_, kind)) = PARAMETERS.iter().find(|(known, _)| *known == name) else {
        return Err(format!("unknown parameter '{name}'"));
    };
    let first = values.first().map(String::as_str).unwrap_or_default();
    let invalid = |what: &str| format!("invalid {what} value [{}]", values.join(" "));
    match kind {
        Kind::Int => first
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| invalid("int")),
        Kind::Float => parse_float32(first).ok_or_else(|| invalid("float")),
        Kind::Bool => parse_go_bool(first)
            .map(Value::Bool)
            .ok_or_else(|| invalid("bool")),
        Kind::Strings => Ok(Value::from(values.to_vec())),
    }
}

/// Go's `strconv.ParseFloat(s, 32)` stored as a JSON number with the float32's shortest
/// digits, so `0.7` goes out as `0.7` (not `0.699999988079071`) like Go's encoder writes it.
/// Non-finite values are refused: Go accepts them here, then fails to encode the request.
fn parse_float32(text: &str) -> Option<Value> {
    let single: f32 = text.parse().ok()?;
    if !single.is_finite() {
        return None;
    }
    let double: f64 = single.to_string().parse().ok()?;
    serde_json::Number::from_f64(double).map(Value::Number)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A JSON value as Go's `%v` prints the decoded value: strings bare, lists as `[a b]`,
/// floats in `%g` style with the shortest digits.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or_default()),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Go's `%v` of a float: the shortest digits, in exponent form when the decimal exponent is
/// below -4 or at least 6 (`1e+06`, `1.5e-05`), else plain (`0.7`, `123456`).
fn go_float(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or_default();
    if (-4..6).contains(&exponent) {
        return value.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Go's `%q` of a string: double-quoted with Go escapes.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let code = c as u32;
                if code < 0x80 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn integers_floats_and_stop_words_get_their_go_types() {
        assert_eq!(format_parameter("seed", &words(&["42"])), Ok(json!(42)));
        assert_eq!(
            format_parameter("num_ctx", &words(&["+8192"])),
            Ok(json!(8192))
        );
        assert_eq!(
            format_parameter("temperature", &words(&["0.7"])),
            Ok(json!(0.7))
        );
        assert_eq!(format_parameter("top_p", &words(&["1"])), Ok(json!(1.0)));
        assert_eq!(
            format_parameter("stop", &words(&["<|end|>", "###"])),
            Ok(json!(["<|end|>", "###"]))
        );
        assert_eq!(
            format_parameter("use_mmap", &words(&["F"])),
            Ok(json!(false))
        );
    }

    #[test]
    fn float32_values_serialize_with_their_short_digits() {
        let value = format_parameter("temperature", &words(&["0.1"])).unwrap_or_default();
        assert_eq!(value.to_string(), "0.1");
    }

    #[test]
    fn bad_values_give_ollamas_messages() {
        assert_eq!(
            format_parameter("foo", &words(&["1"])),
            Err("unknown parameter 'foo'".to_string())
        );
        assert_eq!(
            format_parameter("seed", &words(&["abc", "d"])),
            Err("invalid int value [abc d]".to_string())
        );
        assert_eq!(
            format_parameter("temperature", &words(&["hot"])),
            Err("invalid float value [hot]".to_string())
        );
        assert_eq!(
            format_parameter("temperature", &words(&["1e99"])),
            Err("invalid float value [1e99]".to_string())
        );
        assert_eq!(
            format_parameter("use_mmap", &words(&["yes"])),
            Err("invalid bool value [yes]".to_string())
        );
    }

    #[test]
    fn go_value_prints_like_percent_v() {
        assert_eq!(go_value(&json!(0.7)), "0.7");
        assert_eq!(go_value(&json!(42)), "42");
        assert_eq!(go_value(&json!(["a", "b"])), "[a b]");
        assert_eq!(go_value(&json!(1000000.0)), "1e+06");
        assert_eq!(go_value(&json!(123456.0)), "123456");
        assert_eq!(go_value(&json!(0.000015)), "1.5e-05");
        assert_eq!(go_value(&json!(0.0001)), "0.0001");
        assert_eq!(go_value(&json!(true)), "true");
    }

    #[test]
    fn go_quote_escapes_quotes_and_control_characters() {
        assert_eq!(
            go_quote("unknown parameter 'x'"),
            "\"unknown parameter 'x'\""
        );
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
