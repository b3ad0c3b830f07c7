//! Status lines on stderr for long operations, drawn as Ollama draws them: a spinner per
//! status while it is current, left in place when the next one starts. When stderr is not a
//! terminal each status is printed once as a plain line, with no escape codes.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct StatusPrinter {
    interactive: bool,
    lines: MultiProgress,
    current: Option<(String, ProgressBar)>,
    last_plain: Option<String>,
    /// Transfer bars by digest; for plain output, the last tenth printed.
    bars: Vec<(String, ProgressBar, u64)>,
}

impl StatusPrinter {
    pub fn new() -> StatusPrinter {
        StatusPrinter {
            interactive: std::io::stderr().is_terminal(),
            lines: MultiProgress::new(),
            current: None,
            last_plain: None,
            bars: Vec::new(),
        }
    }

    /// Shows `status`, finishing the previous line if it differs.
    pub fn status(&mut self, status: &str) {
        if !self.interactive {
            if self.last_plain.as_deref() != Some(status) {
                eprintln!("{status}");
                self.last_plain = Some(status.to_string());
            }
            return;
        }
        if let Some((current, bar)) = &self.current {
            if current == status {
                return;
            }
            bar.finish();
        }
        let bar = self.lines.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{msg} {spinner}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        bar.set_message(status.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.current = Some((status.to_string(), bar));
    }

    /// Updates the text of the current line in place (e.g. a percentage).
    pub fn update(&mut self, status: &str) {
        match &self.current {
            Some((_, bar)) if self.interactive => bar.set_message(status.to_string()),
            _ => self.status(status),
        }
    }

    /// A transfer's bar, as Ollama draws it: `pulling 6a0746a1ec1a: 42% ▕███     ▏ 41 MB/98 MB
    /// 12 MB/s 4s`; on a plain stderr, a line per tenth done.
    pub fn transfer(&mut self, key: &str, title: &str, completed: u64, total: u64) {
        let index = match self.bars.iter().position(|(k, _, _)| k == key) {
            Some(index) => index,
            None => {
                if let Some((_, spinner)) = self.current.take() {
                    spinner.finish();
                }
                let bar = if self.interactive {
                    let bar = self.lines.add(ProgressBar::new(total));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} {percent:>3}% ▕{wide_bar}▏ {decimal_bytes:>8}/{decimal_total_bytes:>8}  {decimal_bytes_per_sec:>10}  {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("█▉▊▋▌▍▎▏ "),
                    );
                    bar.set_message(format!("{title}:"));
                    bar
                } else {
                    ProgressBar::hidden()
                };
                self.bars.push((key.to_string(), bar, u64::MAX));
                self.bars.len() - 1
            }
        };
        let (_, bar, last_tenth) = &mut self.bars[index];
        bar.set_length(total);
        bar.set_position(completed.min(total));
        let done = total > 0 && completed >= total;
        if self.interactive {
            if done && !bar.is_finished() {
                bar.set_style(
                    ProgressStyle::with_template("{msg} 100% ▕{wide_bar}▏ {decimal_total_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("█▉▊▋▌▍▎▏ "),
                );
                bar.finish();
            }
            return;
        }
        let tenth = (completed * 10).checked_div(total).unwrap_or(10);
        if tenth != *last_tenth {
            *last_tenth = tenth;
            eprintln!(
                "{title}: {:>3}% {}/{}",
                tenth * 10,
                crate::format::human_bytes(completed as i64),
                crate::format::human_bytes(total as i64)
            );
        }
    }

    /// Leaves the last line on screen.
    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish();
        }
    }
}

impl Default for StatusPrinter {
    fn default() -> Self {
        StatusPrinter::new()
    }
}

impl Drop for StatusPrinter {
    fn drop(&mut self) {
        self.finish();
    }
}
