//! Status lines on stderr for long operations, drawn as Ollama draws them: a spinner per
//! status while it is current, left in place when the next one starts. When stderr is not a
//! terminal each status is printed once as a plain line, with no escape codes.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct StatusPrinter {
    interactive: bool,
    current: Option<(String, ProgressBar)>,
    last_plain: Option<String>,
}

impl StatusPrinter {
    pub fn new() -> StatusPrinter {
        StatusPrinter {
            interactive: std::io::stderr().is_terminal(),
            current: None,
            last_plain: None,
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
        let bar = ProgressBar::new_spinner();
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
