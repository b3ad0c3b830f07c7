//! The values a template sees, modelled on the Go types Ollama hands to `text/template`.
//!
//! Go prints, compares and JSON-encodes values by their dynamic type, so a value here keeps
//! just enough of that type: lists and maps remember whether they are nil and whether their Go
//! type has a `String()` method (Ollama's `templateArgs`, `templateProperties` and
//! `templateTools` print as JSON, `api.PropertyType` prints its single type name), and structs
//! keep their Go field names and JSON tags.

use std::fmt::Write as _;
use std::rc::Rc;

/// A dynamically typed template value (Go's `reflect.Value`, reduced to what Ollama passes).
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// An invalid value or a nil interface: Go prints it as `<no value>` at the top level.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(Rc<List>),
    Map(Rc<Map>),
    Struct(Rc<Struct>),
}

/// What a list or map prints as, standing for the Go type's `String()` method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stringer {
    /// No `String()` method: Go's `fmt` formatting (`[a b]`, `map[k:v]`).
    None,
    /// `String()` returns the JSON encoding; a nil map prints `{}`.
    Json,
    /// `api.PropertyType`: one name prints bare, several print as `[a b]`.
    PropertyType,
}

#[derive(Debug)]
pub(crate) struct List {
    pub items: Vec<Value>,
    pub is_nil: bool,
    pub stringer: Stringer,
    pub type_name: &'static str,
}

/// A map with string keys; entries are kept sorted by key for Go maps (Go ranges over and
/// prints maps in key order) and in insertion order for Ollama's ordered maps.
#[derive(Debug)]
pub(crate) struct Map {
    pub entries: Vec<(String, Value)>,
    pub is_nil: bool,
    pub stringer: Stringer,
    pub type_name: &'static str,
}

#[derive(Debug)]
pub(crate) struct Struct {
    pub type_name: &'static str,
    /// Go passes messages as `*templateMessage`: `fmt` prints those as `&{…}`.
    pub pointer: bool,
    /// The Go type has a `String()` returning its JSON (Ollama's `templateTool`).
    pub prints_json: bool,
    pub fields: Vec<Field>,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    /// The JSON key (`json:"…"` tag), or `None` for the Go field name.
    pub json: Option<&'static str>,
    pub omit_empty: bool,
    pub value: Value,
}

impl Field {
    pub(crate) fn new(name: &'static str, value: Value) -> Self {
        Field {
            name,
            json: None,
            omit_empty: false,
            value,
        }
    }

    pub(crate) fn tagged(
        name: &'static str,
        json: &'static str,
        omit_empty: bool,
        value: Value,
    ) -> Self {
        Field {
            name,
            json: Some(json),
            omit_empty,
            value,
        }
    }
}

impl Value {
    pub(crate) fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub(crate) fn list(items: Vec<Value>, type_name: &'static str) -> Value {
        Value::List(Rc::new(List {
            items,
            is_nil: false,
            stringer: Stringer::None,
            type_name,
        }))
    }

    pub(crate) fn nil_list(type_name: &'static str) -> Value {
        Value::List(Rc::new(List {
            items: Vec::new(),
            is_nil: true,
            stringer: Stringer::None,
            type_name,
        }))
    }

    /// A Go map: entries end up sorted by key, the last of duplicate keys winning.
    pub(crate) fn sorted_map(
        mut entries: Vec<(String, Value)>,
        stringer: Stringer,
        type_name: &'static str,
    ) -> Value {
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        Value::Map(Rc::new(Map {
            entries,
            is_nil: false,
            stringer,
            type_name,
        }))
    }

    pub(crate) fn record(type_name: &'static str, fields: Vec<Field>) -> Value {
        Value::Struct(Rc::new(Struct {
            type_name,
            pointer: false,
            prints_json: false,
            fields,
        }))
    }

    /// Converts decoded JSON the way Go's `encoding/json` fills an `any`: objects become
    /// `map[string]any`, arrays `[]any`, and every number a `float64`.
    pub(crate) fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(items) => Value::list(
                items.iter().map(Value::from_json).collect(),
                "[]interface {}",
            ),
            serde_json::Value::Object(object) => Value::sorted_map(
                object
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
                Stringer::None,
                "map[string]interface {}",
            ),
        }
    }

    /// Go's `text/template` truth: false, 0, nil, and empty strings, lists and maps are false;
    /// structs are always true.
    pub(crate) fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The Go type name, as Go's error messages spell it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(l) => l.type_name,
            Value::Map(m) => m.type_name,
            Value::Struct(s) => s.type_name,
        }
    }

    /// Formats the value as the template prints an action's result (`fmt.Fprint`), where an
    /// invalid value reads `<no value>`.
    pub(crate) fn to_output(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_owned(),
            other => {
                let mut out = String::new();
                other.write_go(&mut out);
                out
            }
        }
    }

    /// Writes the value as Go's `%v` does, calling `String()` where the Go type has one.
    pub(crate) fn write_go(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float_g(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(list) => match list.stringer {
                Stringer::Json => out.push_str(&self.to_json()),
                Stringer::PropertyType if list.items.len() == 1 => list.items[0].write_go(out),
                Stringer::PropertyType if list.items.is_empty() => {}
                _ => {
                    out.push('[');
                    for (i, item) in list.items.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        item.write_go(out);
                    }
                    out.push(']');
                }
            },
            Value::Map(map) => match map.stringer {
                Stringer::Json if map.is_nil => out.push_str("{}"),
                Stringer::Json => out.push_str(&self.to_json()),
                _ => {
                    out.push_str("map[");
                    for (i, (key, value)) in map.entries.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        out.push_str(key);
                        out.push(':');
                        value.write_go(out);
                    }
                    out.push(']');
                }
            },
            Value::Struct(record) if record.prints_json => out.push_str(&self.to_json()),
            Value::Struct(record) => {
                if record.pointer {
                    out.push('&');
                }
                out.push('{');
                for (i, field) in record.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    field.value.write_go(out);
                }
                out.push('}');
            }
        }
    }

    /// Go's `json.Marshal`: sorted map keys, struct fields in declaration order under their
    /// tags, `omitempty` honoured, `<`, `>` and `&` escaped. Like Ollama, an error (a NaN)
    /// yields an empty string.
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::new();
        if self.write_json(&mut out).is_err() {
            return String::new();
        }
        out
    }

    fn write_json(&self, out: &mut String) -> Result<(), ()> {
        match self {
            Value::Nil => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float_json(*f).ok_or(())?),
            Value::Str(s) => write_json_string(s, out),
            Value::List(list) => {
                if list.is_nil {
                    out.push_str("null");
                } else if list.stringer == Stringer::PropertyType && list.items.len() == 1 {
                    list.items[0].write_json(out)?;
                } else {
                    out.push('[');
                    for (i, item) in list.items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        item.write_json(out)?;
                    }
                    out.push(']');
                }
            }
            Value::Map(map) => {
                if map.is_nil {
                    out.push_str("null");
                } else {
                    out.push('{');
                    for (i, (key, value)) in map.entries.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write_json_string(key, out);
                        out.push(':');
                        value.write_json(out)?;
                    }
                    out.push('}');
                }
            }
            Value::Struct(record) => {
                out.push('{');
                let mut first = true;
                for field in &record.fields {
                    if field.omit_empty && field.value.is_empty_for_json() {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_json_string(field.json.unwrap_or(field.name), out);
                    out.push(':');
                    field.value.write_json(out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }

    /// `omitempty`: false, 0, "", nil, and empty lists and maps are left out; structs never.
    fn is_empty_for_json(&self) -> bool {
        match self {
            Value::Struct(_) => false,
            other => !other.is_true(),
        }
    }
}

/// Go's `encoding/json` string encoding with its default HTML escaping.
fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `%v` for a `float64` (`strconv.FormatFloat(f, 'g', -1, 64)`): shortest digits, in
/// exponent form when the decimal exponent is below -4 or at least 6 (so a JSON number such as
/// 1234567 prints as `1.234567e+06`, as it does in Ollama).
pub(crate) fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".to_owned()
        } else {
            "0".to_owned()
        };
    }
    let exponent = f.abs().log10().floor() as i32;
    // `{:e}` gives the shortest digits; its exponent is the exact decimal one.
    let sci = format!("{f:e}");
    let exponent = sci
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(exponent);
    if !(-4..6).contains(&exponent) {
        go_exponent(&sci)
    } else {
        format!("{f}")
    }
}

/// Go's `encoding/json` float encoding: plain digits unless the magnitude is below 1e-6 or at
/// least 1e21. NaN and infinities are errors in Go.
pub(crate) fn format_float_json(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        Some(go_exponent(&format!("{f:e}")).replace("e-0", "e-"))
    } else {
        Some(format!("{f}"))
    }
}

/// Turns Rust's `1.5e7` into Go's `1.5e+07` (a sign and at least two exponent digits).
fn go_exponent(sci: &str) -> String {
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return sci.to_owned();
    };
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go_fmt() {
        assert_eq!(format_float_g(5.0), "5");
        assert_eq!(format_float_g(0.5), "0.5");
        assert_eq!(format_float_g(1e21), "1e+21");
        assert_eq!(format_float_g(123456.0), "123456");
        assert_eq!(format_float_g(1234567.0), "1.234567e+06");
        assert_eq!(format_float_g(0.00001), "1e-05");
    }

    #[test]
    fn floats_encode_like_go_json() {
        assert_eq!(format_float_json(5.0).as_deref(), Some("5"));
        assert_eq!(format_float_json(1e21).as_deref(), Some("1e+21"));
        assert_eq!(format_float_json(1e-7).as_deref(), Some("1e-7"));
        assert_eq!(format_float_json(f64::NAN), None);
    }

    #[test]
    fn json_escapes_html_characters_like_go() {
        assert_eq!(
            Value::str("<a & b>\n").to_json(),
            r#""\u003ca \u0026 b\u003e\n""#
        );
    }

    #[test]
    fn maps_print_sorted_like_go_fmt() {
        let map = Value::sorted_map(
            vec![("b".into(), Value::Int(2)), ("a".into(), Value::str("x"))],
            Stringer::None,
            "map[string]interface {}",
        );
        assert_eq!(map.to_output(), "map[a:x b:2]");
        assert_eq!(map.to_json(), r#"{"a":"x","b":2}"#);
    }
}
