//! The terminal [`LineSource`]: rustyline with Ollama's placeholder text and a history file
//! (`~/.ollama/history` in Ollama), written line by line while history is on.

use super::{LineSource, ReadResult};
use rustyline::completion::Completer;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

/// Most lines kept in the history file.
const HISTORY_SIZE: usize = 1000;

/// Grey, then back to the default colour: how the placeholder is drawn.
const GREY: &str = "\x1b[38;5;245m";
const RESET: &str = "\x1b[0m";

/// rustyline reading from the terminal.
pub struct Readline {
    editor: Editor<Placeholder, DefaultHistory>,
    history_path: Option<PathBuf>,
    history_enabled: bool,
}

impl Readline {
    /// A terminal editor; with `history_path`, earlier lines are loaded from that file and
    /// new ones appended to it (a missing file is created on the first line).
    pub fn new(history_path: Option<PathBuf>) -> io::Result<Self> {
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_dups(true)
            .map_err(to_io)?
            .max_history_size(HISTORY_SIZE)
            .map_err(to_io)?
            .build();
        let mut editor = Editor::with_config(config).map_err(to_io)?;
        editor.set_helper(Some(Placeholder::default()));
        if let Some(path) = &history_path {
            // A history that cannot be read (first run, or unreadable) starts empty.
            let _ = editor.load_history(path);
        }
        Ok(Self {
            editor,
            history_path,
            history_enabled: true,
        })
    }
}

impl LineSource for Readline {
    fn read_line(&mut self, prompt: &str) -> io::Result<ReadResult> {
        if let Some(helper) = self.editor.helper_mut() {
            helper.text = if prompt.starts_with("...") {
                "Press Enter to send"
            } else {
                "Send a message (/? for help)"
            };
        }
        match self.editor.readline(prompt) {
            Ok(line) => Ok(ReadResult::Line(line)),
            Err(ReadlineError::Interrupted) => Ok(ReadResult::Interrupted),
            Err(ReadlineError::Eof) => Ok(ReadResult::Eof),
            Err(error) => Err(to_io(error)),
        }
    }

    fn add_history(&mut self, line: &str) {
        if !self.history_enabled {
            return;
        }
        if self.editor.add_history_entry(line).unwrap_or(false) {
            if let Some(path) = &self.history_path {
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                // History is a convenience: failing to write it must not end the session.
                let _ = self.editor.history_mut().append(path);
            }
        }
    }

    fn set_history_enabled(&mut self, on: bool) {
        self.history_enabled = on;
    }
}

fn to_io(error: ReadlineError) -> io::Error {
    match error {
        ReadlineError::Io(error) => error,
        other => io::Error::other(other),
    }
}

/// Shows Ollama's grey placeholder while the line is empty.
#[derive(Default)]
struct Placeholder {
    text: &'static str,
}

/// A hint that is only shown: the right arrow must not type the placeholder in.
struct PlaceholderHint(&'static str);

impl Hint for PlaceholderHint {
    fn display(&self) -> &str {
        self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for Placeholder {
    type Hint = PlaceholderHint;

    fn hint(&self, line: &str, _pos: usize, _ctx: &Context<'_>) -> Option<PlaceholderHint> {
        (line.is_empty() && !self.text.is_empty()).then_some(PlaceholderHint(self.text))
    }
}

impl Highlighter for Placeholder {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("{GREY}{hint}{RESET}"))
    }
}

impl Completer for Placeholder {
    type Candidate = String;
}

impl Validator for Placeholder {}

impl Helper for Placeholder {}
