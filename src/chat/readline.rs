//! The terminal [`LineSource`]: rustyline with Ollama's placeholder text, a history file
//! (`~/.ollama/history` in Ollama), written line by line while history is on, and Ctrl+G,
//! which opens an editor on the line being typed and puts what was written back on the prompt.

use super::{LineSource, ReadResult};
use rustyline::completion::Completer;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Context, Editor, Event, EventContext, EventHandler, Helper,
    KeyEvent, RepeatCount,
};
use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    /// Set by Ctrl+G, which ends the line being read so that the editor can open on it.
    edit_requested: Arc<AtomicBool>,
}

/// Ctrl+G: accepts the line as it is and marks it for the external editor.
struct EditPrompt(Arc<AtomicBool>);

impl ConditionalEventHandler for EditPrompt {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.0.store(true, Ordering::SeqCst);
        Some(Cmd::AcceptLine)
    }
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
        let edit_requested = Arc::new(AtomicBool::new(false));
        editor.bind_sequence(
            KeyEvent::ctrl('G'),
            EventHandler::Conditional(Box::new(EditPrompt(edit_requested.clone()))),
        );
        if let Some(path) = &history_path {
            // A history that cannot be read (first run, or unreadable) starts empty.
            let _ = editor.load_history(path);
        }
        Ok(Self {
            editor,
            history_path,
            history_enabled: true,
            edit_requested,
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
        let mut initial = String::new();
        loop {
            let read = self.editor.readline_with_initial(prompt, (&initial, ""));
            if !self.edit_requested.swap(false, Ordering::SeqCst) {
                return match read {
                    Ok(line) => Ok(ReadResult::Line(line)),
                    Err(ReadlineError::Interrupted) => Ok(ReadResult::Interrupted),
                    Err(ReadlineError::Eof) => Ok(ReadResult::Eof),
                    Err(error) => Err(to_io(error)),
                };
            }
            // Ctrl+G: compose in the editor, then the text waits on the prompt to be sent
            // (Enter) or changed, as in Ollama.
            let line = read.unwrap_or_default();
            initial = match edit_in_external_editor(&line) {
                Ok(text) if !text.trim().is_empty() => text,
                Ok(_) => line,
                Err(error) => {
                    eprintln!("error: {error}");
                    line
                }
            };
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

/// The editor command: `OLLAMA_EDITOR`, else `VISUAL`, else `EDITOR`, else `vi` (Ollama's
/// order), split on whitespace into the program and its arguments.
fn editor_command() -> Vec<String> {
    [crate::env::OLLAMA_EDITOR, "VISUAL", "EDITOR"]
        .into_iter()
        .map(crate::env::var)
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Whether `program` can be run: a path to a file, or a name found on `PATH`.
fn is_runnable(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Opens the editor on `content` in a temporary file (the terminal handed over until it
/// exits) and returns the file's text without its trailing newlines.
pub fn edit_in_external_editor(content: &str) -> io::Result<String> {
    let command = editor_command();
    let (program, arguments) = command
        .split_first()
        .ok_or_else(|| io::Error::other("no editor"))?;
    if !is_runnable(program) {
        return Err(io::Error::other(format!(
            "editor \"{program}\" not found, set OLLAMA_EDITOR to the path of your preferred editor"
        )));
    }
    let file = tempfile::Builder::new()
        .prefix("ollama-prompt-")
        .suffix(".txt")
        .tempfile()?;
    std::fs::write(file.path(), content)?;
    let status = std::process::Command::new(program)
        .args(arguments)
        .arg(file.path())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "editor exited with error: {status}"
        )));
    }
    let text = std::fs::read_to_string(file.path())?;
    Ok(text.trim_end_matches('\n').to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in editor: a script that appends to the file it is given.
    fn fake_editor(dir: &Path, script: &str) -> PathBuf {
        let path = dir.join("editor.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    // One test, because the editor is found through the process's environment.
    #[test]
    fn ctrl_g_editor_edits_the_line_and_reports_a_missing_or_failing_editor() {
        let dir = tempfile::tempdir().unwrap();
        let editor = fake_editor(dir.path(), "printf ' and more\\n\\n' >> \"$1\"");
        std::env::set_var(crate::env::OLLAMA_EDITOR, &editor);
        assert_eq!(
            edit_in_external_editor("why is the sky blue").unwrap(),
            "why is the sky blue and more"
        );

        let failing = fake_editor(dir.path(), "exit 3");
        std::env::set_var(crate::env::OLLAMA_EDITOR, &failing);
        let error = edit_in_external_editor("x").unwrap_err().to_string();
        assert!(error.starts_with("editor exited with error"), "{error}");

        std::env::set_var(crate::env::OLLAMA_EDITOR, "no-such-editor-here --wait");
        assert_eq!(
            edit_in_external_editor("x").unwrap_err().to_string(),
            "editor \"no-such-editor-here\" not found, set OLLAMA_EDITOR to the path of your \
             preferred editor"
        );
        std::env::remove_var(crate::env::OLLAMA_EDITOR);
    }
}
