//! How an answer reaches the terminal: word wrapping of streamed text, Go-style durations
//! and the `--verbose` metrics summary (`api.Metrics.Summary` in Ollama's `api/types.go`).

use serde_json::Value;
use std::io::{self, Write};
use std::time::Duration;

/// Ollama wraps five columns before the terminal edge (`displayResponse` in `cmd/cmd.go`).
const RIGHT_MARGIN: usize = 5;

/// Below this width Ollama does not wrap at all.
const MIN_WRAP_WIDTH: usize = 10;

/// Streams text to a writer, breaking lines between words so none is longer than the
/// terminal width less a small margin.
///
/// Ollama prints each character at once and, when a word overflows, moves the cursor back
/// with escape codes to redraw it on the next line. Here the word being typed is held back
/// until a space or newline ends it, so no escape code is ever written and the output stays
/// clean when redirected; a word is never split, and one longer than the line goes out alone
/// on its own line.
#[derive(Debug)]
pub struct Wrapper {
    limit: Option<usize>,
    line_width: usize,
    spaces: String,
    word: String,
    word_width: usize,
}

impl Wrapper {
    /// A wrapper for a terminal `width` columns wide; `wrap == false` (or a width too small
    /// to wrap) passes text through untouched.
    pub fn new(wrap: bool, width: usize) -> Self {
        let limit = (wrap && width >= MIN_WRAP_WIDTH).then(|| width - RIGHT_MARGIN);
        Self {
            limit,
            line_width: 0,
            spaces: String::new(),
            word: String::new(),
            word_width: 0,
        }
    }

    /// Whether anything has been written on the current line (or is held back).
    pub fn mid_line(&self) -> bool {
        self.line_width > 0 || !self.word.is_empty() || !self.spaces.is_empty()
    }

    /// Tells the wrapper that something else ended the line (after `finish`).
    pub fn start_line(&mut self) {
        self.line_width = 0;
    }

    /// Writes `text`, wrapping if enabled.
    pub fn write(&mut self, out: &mut dyn Write, text: &str) -> io::Result<()> {
        let Some(limit) = self.limit else {
            if let Some(last) = text.chars().last() {
                out.write_all(text.as_bytes())?;
                self.line_width = usize::from(last != '\n');
            }
            return out.flush();
        };
        for ch in text.chars() {
            match ch {
                '\n' | '\r' => {
                    self.flush_word(out, limit)?;
                    out.write_all(self.spaces.as_bytes())?;
                    self.spaces.clear();
                    write!(out, "{ch}")?;
                    self.line_width = 0;
                }
                ' ' | '\t' => {
                    // Spaces wait for the next word: if it moves to a new line, they are
                    // dropped instead of trailing at the end of this one.
                    self.flush_word(out, limit)?;
                    self.spaces.push(ch);
                }
                c if char_width(c) >= 2 => {
                    // Wide (CJK) characters are words of their own, as in Ollama.
                    self.flush_word(out, limit)?;
                    self.word.push(c);
                    self.word_width = 2;
                    self.flush_word(out, limit)?;
                }
                c => {
                    self.word.push(c);
                    self.word_width += 1;
                }
            }
        }
        out.flush()
    }

    /// Writes out the text held back, at the end of a stream or before other output.
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(limit) = self.limit {
            self.flush_word(out, limit)?;
            out.write_all(self.spaces.as_bytes())?;
            self.line_width += self.spaces.chars().count();
            self.spaces.clear();
        }
        out.flush()
    }

    fn flush_word(&mut self, out: &mut dyn Write, limit: usize) -> io::Result<()> {
        if self.word.is_empty() {
            return Ok(());
        }
        let spaces_width = self.spaces.chars().count();
        if self.line_width > 0 && self.line_width + spaces_width + self.word_width > limit {
            out.write_all(b"\n")?;
            self.line_width = 0;
        } else {
            out.write_all(self.spaces.as_bytes())?;
            self.line_width += spaces_width;
        }
        self.spaces.clear();
        out.write_all(self.word.as_bytes())?;
        self.line_width += self.word_width;
        self.word.clear();
        self.word_width = 0;
        Ok(())
    }
}

/// Terminal columns of a character: 2 for the common East Asian wide and emoji blocks,
/// otherwise 1. (A full Unicode width table is more than this REPL needs.)
fn char_width(ch: char) -> usize {
    let wide = matches!(ch as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `1.5µs`, `356.2ms`, `1.2345s`, `1m2.5s`,
/// `1h0m0s`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 6));
    }
    let seconds = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&decimal(seconds * 1_000_000_000 + fraction, 9));
    out.push('s');
    out
}

/// `value / 10^digits` written with its fractional digits, trailing zeros dropped.
fn decimal(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let whole = value / scale;
    let fraction = format!("{:0width$}", value % scale, width = digits as usize);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// Ollama's `Metrics.Summary()` for the final chunk of an answer: one line per metric that
/// is above zero, durations in Go's format, rates with two decimals.
pub fn metrics_summary(final_chunk: &Value) -> String {
    let count = |key: &str| final_chunk[key].as_u64().unwrap_or(0);
    let duration = |key: &str| Duration::from_nanos(count(key));
    let rate = |tokens: u64, took: Duration| tokens as f64 / took.as_secs_f64();
    let mut out = String::new();
    let total = duration("total_duration");
    if !total.is_zero() {
        out.push_str(&format!(
            "total duration:       {}\n",
            format_duration(total)
        ));
    }
    let load = duration("load_duration");
    if !load.is_zero() {
        out.push_str(&format!(
            "load duration:        {}\n",
            format_duration(load)
        ));
    }
    for (label, count_key, duration_key) in [
        ("prompt eval", "prompt_eval_count", "prompt_eval_duration"),
        ("eval", "eval_count", "eval_duration"),
    ] {
        let tokens = count(count_key);
        let took = duration(duration_key);
        if tokens > 0 {
            let heading = format!("{label} count:");
            out.push_str(&format!("{heading:<22}{tokens} token(s)\n"));
        }
        if !took.is_zero() {
            let heading = format!("{label} duration:");
            out.push_str(&format!("{heading:<22}{}\n", format_duration(took)));
            let heading = format!("{label} rate:");
            out.push_str(&format!(
                "{heading:<22}{:.2} tokens/s\n",
                rate(tokens, took)
            ));
        }
    }
    let drafted = count("draft_count");
    if drafted > 0 {
        let accepted = count("draft_accepted_count");
        out.push_str(&format!(
            "{:<22}{:.1}% ({accepted}/{drafted} drafted tokens)\n",
            "draft acceptance:",
            100.0 * accepted as f64 / drafted as f64
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wrapped(width: usize, chunks: &[&str]) -> String {
        let mut out = Vec::new();
        let mut wrapper = Wrapper::new(true, width);
        for chunk in chunks {
            wrapper.write(&mut out, chunk).unwrap_or_default();
        }
        wrapper.finish(&mut out).unwrap_or_default();
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn go_durations_match_time_duration_string() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(850), "850ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_micros(356_200), "356.2ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_nanos(1_234_500_000), "1.2345s"),
            (Duration::from_millis(62_500), "1m2.5s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3723), "1h2m3s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_millis(1), "1ms"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_duration(duration), expected);
        }
    }

    #[test]
    fn metrics_summary_uses_ollamas_labels_and_rates() {
        let chunk = json!({
            "done": true,
            "total_duration": 1_234_500_000u64,
            "load_duration": 356_200_000u64,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 130_000_000u64,
            "eval_count": 300,
            "eval_duration": 1_500_000_000u64,
        });
        assert_eq!(
            metrics_summary(&chunk),
            "total duration:       1.2345s\n\
             load duration:        356.2ms\n\
             prompt eval count:    26 token(s)\n\
             prompt eval duration: 130ms\n\
             prompt eval rate:     200.00 tokens/s\n\
             eval count:           300 token(s)\n\
             eval duration:        1.5s\n\
             eval rate:            200.00 tokens/s\n"
        );
    }

    #[test]
    fn metrics_summary_skips_zero_metrics() {
        let chunk = json!({"eval_count": 3, "load_duration": 0});
        assert_eq!(
            metrics_summary(&chunk),
            "eval count:           3 token(s)\n"
        );
    }

    #[test]
    fn metrics_summary_gives_the_draft_acceptance_when_drafting_ran() {
        let chunk = json!({"eval_count": 3, "draft_count": 40, "draft_accepted_count": 35});
        assert_eq!(
            metrics_summary(&chunk),
            "eval count:           3 token(s)\n\
             draft acceptance:     87.5% (35/40 drafted tokens)\n"
        );
    }

    #[test]
    fn wrapping_breaks_between_words_within_the_width() {
        let text = "the quick brown fox jumps over the lazy dog and keeps running far away";
        let out = wrapped(20, &[text]);
        for line in out.lines() {
            assert!(line.trim_end().chars().count() <= 15, "{line:?} too long");
        }
        let words: Vec<&str> = out.split_whitespace().collect();
        let expected: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words, expected);
        assert!(out.contains('\n'));
    }

    #[test]
    fn wrapping_never_splits_a_word_streamed_in_pieces() {
        let out = wrapped(20, &["aaaa bbbb cc", "cc dd", "dd eeeeeeeeee"]);
        assert_eq!(out, "aaaa bbbb cccc\ndddd eeeeeeeeee");
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["aaaa", "bbbb", "cccc", "dddd", "eeeeeeeeee"]
        );
    }

    #[test]
    fn wrapping_restarts_the_count_after_newlines() {
        let out = wrapped(20, &["aaaaaaaaaa\nbbbbbbbbbb cccc"]);
        assert_eq!(out, "aaaaaaaaaa\nbbbbbbbbbb cccc");
    }

    #[test]
    fn a_word_longer_than_the_line_goes_out_whole() {
        let out = wrapped(20, &["hi supercalifragilisticexpialidocious yo"]);
        assert_eq!(out, "hi\nsupercalifragilisticexpialidocious\nyo");
    }

    #[test]
    fn without_wrapping_text_passes_through_untouched() {
        let mut out = Vec::new();
        let mut wrapper = Wrapper::new(false, 20);
        let text = "a very long line that would certainly wrap at twenty columns";
        wrapper.write(&mut out, text).unwrap_or_default();
        wrapper.finish(&mut out).unwrap_or_default();
        assert_eq!(String::from_utf8(out).unwrap_or_default(), text);
    }

    #[test]
    fn wrapped_output_has_no_escape_codes() {
        let out = wrapped(12, &["one two three four five six seven"]);
        assert!(!out.contains('\x1b'));
    }
}
