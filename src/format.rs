//! Human-readable numbers, sizes, times and borderless tables, printed exactly as Ollama's
//! `format` package and its tablewriter settings print them, so scripts that parse
//! `ollama list` keep working.

use chrono::{DateTime, Utc};
use std::time::Duration;

const KILO: f64 = 1000.0;
const MEGA: f64 = KILO * 1000.0;
const GIGA: f64 = MEGA * 1000.0;
const TERA: f64 = GIGA * 1000.0;

/// Ollama's `format.HumanBytes`: decimal units, integers at 10 and above, one decimal below.
pub fn human_bytes(bytes: i64) -> String {
    let b = bytes as f64;
    let (value, unit) = if b >= TERA {
        (b / TERA, "TB")
    } else if b >= GIGA {
        (b / GIGA, "GB")
    } else if b >= MEGA {
        (b / MEGA, "MB")
    } else if b >= KILO {
        (b / KILO, "KB")
    } else {
        return format!("{bytes} B");
    };
    if value >= 10.0 || value == value.trunc() {
        format!("{} {unit}", value as i64)
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Ollama's `format.HumanTime` relative to `now`: "2 minutes ago", "4 minutes from now",
/// "Forever" more than 20 years ahead.
pub fn human_time_at(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = now.signed_duration_since(time);
    if delta.num_hours() / 24 / 365 < -20 {
        return "Forever".to_string();
    }
    if delta < chrono::TimeDelta::zero() {
        let ahead = (-delta).to_std().unwrap_or_default();
        return format!("{} from now", human_duration(ahead));
    }
    format!("{} ago", human_duration(delta.to_std().unwrap_or_default()))
}

/// [`human_time_at`] relative to the current time.
pub fn human_time(time: DateTime<Utc>) -> String {
    human_time_at(time, Utc::now())
}

/// Ollama's `format.humanDuration`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    match seconds {
        0 => return "Less than a second".to_string(),
        1 => return "1 second".to_string(),
        2..=59 => return format!("{seconds} seconds"),
        _ => {}
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    match hours {
        1 => "About an hour".to_string(),
        h if h < 48 => format!("{h} hours"),
        h if h < 24 * 7 * 2 => format!("{} days", h / 24),
        h if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", (d.as_secs_f64() / 3600.0 / 24.0 / 365.0) as u64),
    }
}

/// A borderless table as Ollama's CLI configures tablewriter: every cell padded to its
/// column's width and followed by four spaces. The header's last cell is the exception:
/// tablewriter ends it with one space plus the padding instead of the column width
/// (`cmd/cmd_test.go`, `TestListHandler`).
pub fn table(header: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    const PADDING: &str = "    ";
    let columns = header
        .map(|h| h.len())
        .unwrap_or(0)
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0usize; columns];
    let mut measure = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    };
    if let Some(h) = header {
        measure(&mut h.iter().copied());
    }
    for row in rows {
        measure(&mut row.iter().map(String::as_str));
    }
    let mut out = String::new();
    if let Some(h) = header {
        for (i, cell) in h.iter().enumerate() {
            out.push_str(cell);
            if i + 1 == h.len() {
                out.push(' ');
            } else {
                pad(&mut out, cell, widths[i]);
            }
            out.push_str(PADDING);
        }
        out.push('\n');
    }
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            pad(&mut out, cell, widths[i]);
            out.push_str(PADDING);
        }
        out.push('\n');
    }
    out
}

fn pad(out: &mut String, cell: &str, width: usize) {
    for _ in cell.chars().count()..width {
        out.push(' ');
    }
}

/// RFC 3339 with nanoseconds and trailing zeros trimmed, in the server's local offset, as Go
/// marshals `time.Time` (`"2025-05-10T08:06:48.639712648-07:00"`, `Z` for UTC).
pub fn go_time(time: std::time::SystemTime) -> String {
    let local: DateTime<chrono::Local> = time.into();
    go_time_of(&local)
}

/// The current time in UTC as Go marshals it (`created_at`).
pub fn go_time_utc_now() -> String {
    go_time_of(&Utc::now())
}

fn go_time_of<Tz: chrono::TimeZone>(time: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = time.timestamp_subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    if chrono::Offset::fix(time.offset()).local_minus_utc() == 0 {
        out.push('Z');
    } else {
        out.push_str(&time.format("%:z").to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_matches_ollama() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1 KB"),
            (1024, "1.0 KB"),
            (2048, "2.0 KB"),
            (1500, "1.5 KB"),
            (10_500, "10 KB"),
            (98_000_000, "98 MB"),
            (4_700_000_000, "4.7 GB"),
            (2_000_000_000, "2 GB"),
            (42_000_000_000, "42 GB"),
            (1_000_000_000_000, "1 TB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(human_bytes(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn human_time_matches_ollama() {
        let now = Utc::now();
        let ago = |secs: i64| human_time_at(now - chrono::TimeDelta::seconds(secs), now);
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(30), "30 seconds ago");
        assert_eq!(ago(60), "About a minute ago");
        assert_eq!(ago(120), "2 minutes ago");
        assert_eq!(ago(3600), "About an hour ago");
        assert_eq!(ago(24 * 3600), "24 hours ago");
        assert_eq!(ago(48 * 3600), "2 days ago");
        assert_eq!(ago(15 * 24 * 3600), "2 weeks ago");
        assert_eq!(ago(90 * 24 * 3600), "3 months ago");
        assert_eq!(ago(800 * 24 * 3600), "2 years ago");
        assert_eq!(ago(-4 * 60 - 30), "4 minutes from now");
        assert_eq!(ago(-30 * 365 * 24 * 3600), "Forever");
    }

    #[test]
    fn table_matches_ollama_list_output() {
        let rows = vec![
            vec![
                "model1".to_string(),
                "sha256:abc12".to_string(),
                "1.0 KB".to_string(),
                "24 hours ago".to_string(),
            ],
            vec![
                "model2".to_string(),
                "sha256:def45".to_string(),
                "2.0 KB".to_string(),
                "2 days ago".to_string(),
            ],
        ];
        let got = table(Some(&["NAME", "ID", "SIZE", "MODIFIED"]), &rows);
        assert_eq!(
            got,
            "NAME      ID              SIZE      MODIFIED     \n\
             model1    sha256:abc12    1.0 KB    24 hours ago    \n\
             model2    sha256:def45    2.0 KB    2 days ago      \n"
        );
    }

    #[test]
    fn go_time_trims_trailing_zeros_like_rfc3339nano() {
        let t = DateTime::parse_from_rfc3339("2025-05-10T08:06:48.639710000-07:00").unwrap();
        assert_eq!(go_time_of(&t), "2025-05-10T08:06:48.63971-07:00");
        let t = DateTime::parse_from_rfc3339("2025-05-10T08:06:48Z").unwrap();
        assert_eq!(go_time_of(&t.with_timezone(&Utc)), "2025-05-10T08:06:48Z");
    }

    #[test]
    fn table_without_header_indents_rows_with_an_empty_first_cell() {
        let rows = vec![
            vec![
                "".to_string(),
                "architecture".to_string(),
                "test".to_string(),
            ],
            vec![
                "".to_string(),
                "embedding length".to_string(),
                "0".to_string(),
            ],
        ];
        assert_eq!(
            table(None, &rows),
            "    architecture        test    \n    embedding length    0       \n"
        );
    }
}
