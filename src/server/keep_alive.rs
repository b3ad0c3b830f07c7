//! `keep_alive` values: JSON numbers are seconds, strings are Go durations (`"5m"`, `"1h30m"`,
//! `"-1"` is a missing unit), negative means forever, zero means unload right away.

use super::error::ApiError;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    Forever,
    For(Duration),
}

impl KeepAlive {
    pub const DEFAULT: KeepAlive = KeepAlive::For(Duration::from_secs(300));

    /// A request's `keep_alive` (None when absent or null).
    pub fn from_json(value: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                let seconds = n.as_f64().unwrap_or(0.0);
                Ok(Some(KeepAlive::from_seconds(seconds)))
            }
            Some(Value::String(s)) => parse_go_duration(s)
                .map(|d| Some(KeepAlive::from_signed(d)))
                .map_err(ApiError::bad_request),
            Some(other) => Err(ApiError::bad_request(format!(
                "Unsupported type: '{}'",
                match other {
                    Value::Bool(_) => "bool",
                    Value::Array(_) => "[]interface {}",
                    _ => "map[string]interface {}",
                }
            ))),
        }
    }

    /// `OLLAMA_KEEP_ALIVE`: a Go duration or bare seconds; invalid values mean 5 minutes.
    pub fn from_env() -> KeepAlive {
        let value = crate::env::var(crate::env::OLLAMA_KEEP_ALIVE);
        if value.is_empty() {
            return KeepAlive::DEFAULT;
        }
        if let Ok(d) = parse_go_duration(&value) {
            return KeepAlive::from_signed(d);
        }
        match value.parse::<i64>() {
            Ok(seconds) => KeepAlive::from_seconds(seconds as f64),
            Err(_) => KeepAlive::DEFAULT,
        }
    }

    fn from_seconds(seconds: f64) -> KeepAlive {
        if seconds < 0.0 {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_secs_f64(seconds.min(1e12)))
        }
    }

    fn from_signed(nanos: i128) -> KeepAlive {
        if nanos < 0 {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_nanos(nanos.min(u64::MAX as i128) as u64))
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == KeepAlive::For(Duration::ZERO)
    }
}

/// Go's `time.ParseDuration`, in signed nanoseconds, with Go's error messages.
pub fn parse_go_duration(input: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration \"{input}\"");
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let number_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let number = &s[..number_len];
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        s = &s[number_len..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{input}\""));
        }
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit \"{unit}\" in duration \"{input}\""
                ))
            }
        };
        total += value * scale;
        s = &s[unit_len..];
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(if negative {
        -(total as i128)
    } else {
        total as i128
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("-1m"), Ok(-60_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(
            parse_go_duration("300"),
            Err("time: missing unit in duration \"300\"".into())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("m").is_err());
    }

    #[test]
    fn keep_alive_json_follows_ollama() {
        let parse = |v: Value| KeepAlive::from_json(Some(&v));
        assert_eq!(
            parse(json!(0)).unwrap(),
            Some(KeepAlive::For(Duration::ZERO))
        );
        assert_eq!(parse(json!(-1)).unwrap(), Some(KeepAlive::Forever));
        assert_eq!(
            parse(json!("10m")).unwrap(),
            Some(KeepAlive::For(Duration::from_secs(600)))
        );
        assert_eq!(parse(json!("-1s")).unwrap(), Some(KeepAlive::Forever));
        assert_eq!(
            parse(json!("300")).unwrap_err().message(),
            "time: missing unit in duration \"300\""
        );
        assert_eq!(
            parse(json!(true)).unwrap_err().message(),
            "Unsupported type: 'bool'"
        );
        assert_eq!(KeepAlive::from_json(Some(&Value::Null)).unwrap(), None);
    }
}
