//! The interactive REPL of `rollama run` (Ollama's `cmd/interactive.go`): read a line,
//! parse `/commands` with pure code, keep the conversation client-side and stream answers
//! from `POST /api/chat`.
//!
//! The loop only talks to two small traits, so it runs in tests without a terminal or a
//! server: [`LineSource`] (rustyline in [`Readline`], a script in tests) and [`Backend`]
//! (the HTTP client in the CLI, a fake in tests).
//!
//! Ctrl-C while an answer streams is a signal, not a key: the CLI installs a SIGINT handler
//! that sets the `cancel` flag given to [`run`], and the backend stops when it sees it.
//! At the prompt rustyline reads Ctrl-C as a key and reports [`ReadResult::Interrupted`].

mod command;
mod display;
pub mod files;
mod help;
mod info;
mod parameters;
mod readline;
mod session;

pub use command::{parse_input, Composer, HelpTopic, Input, SetCommand, ShowCommand};
pub use display::{format_duration, metrics_summary, Wrapper};
pub use parameters::format_parameter;
pub use readline::Readline;
pub use session::run;

use serde_json::{Map, Value};
use std::sync::atomic::AtomicBool;

/// What one read from the terminal gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// A line, without its newline.
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D on an empty line.
    Eof,
}

/// Where typed lines come from.
pub trait LineSource {
    /// Shows `prompt` (`>>> ` or `... `) and reads one line.
    fn read_line(&mut self, prompt: &str) -> std::io::Result<ReadResult>;
    /// Records a line in the history (ignored while history is off).
    fn add_history(&mut self, _line: &str) {}
    /// `/set history` and `/set nohistory`.
    fn set_history_enabled(&mut self, _on: bool) {}
}

/// The server calls the REPL makes.
pub trait Backend {
    /// `POST /api/chat` with `request`, streaming: calls `on_chunk` for each NDJSON chunk and
    /// returns the final chunk, or the error message. Stops early with `Err("canceled")` once
    /// `cancel` is set (Ctrl-C during an answer).
    fn chat(
        &mut self,
        request: &Value,
        on_chunk: &mut dyn FnMut(&Value),
        cancel: &AtomicBool,
    ) -> Result<Value, String>;
    /// `POST /api/show`.
    fn show(&mut self, request: &Value) -> Result<Value, String>;
    /// `POST /api/create` (for `/save`).
    fn create(&mut self, request: &Value) -> Result<(), String>;
    /// The `list` table as `rollama list` prints it (for `/list`).
    fn list(&mut self) -> Result<String, String>;
    /// Loads a model with an empty generate request (at start and for `/load`).
    fn load(&mut self, model: &str) -> Result<(), String>;
}

/// The session's starting settings, resolved by the CLI from flags and `/api/show`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The model to chat with.
    pub model: String,
    /// A system message to start the conversation with.
    pub system: Option<String>,
    /// `json` (or a JSON schema as text) to constrain answers.
    pub format: Option<String>,
    /// Sent as `keep_alive` with every chat request.
    pub keep_alive: Option<String>,
    /// `true`, `false` or a level such as `"high"`; `None` leaves it to the server.
    pub think: Option<Value>,
    /// `--hidethinking`: thinking is neither shown nor kept in the history.
    pub hide_thinking: bool,
    /// `--verbose`: print the metrics summary on stderr after each answer.
    pub verbose: bool,
    /// Wrap answers between words at the terminal width.
    pub word_wrap: bool,
    /// Terminal width in columns; 0 means unknown, taken as 80 like Ollama.
    pub width: usize,
    /// Model options (`temperature`, `stop`, ...) sent with every request.
    pub parameters: Map<String, Value>,
    /// `details.parent_model` from `/api/show`: `/save` builds on it when present.
    pub parent_model: Option<String>,
    /// The model's stored `messages` from `/api/show`: printed at start and kept by `/save`.
    pub loaded_messages: Vec<Value>,
    /// Renders `/show info`; `None` uses this module's copy of Ollama's `showInfo`.
    pub show_info: Option<fn(&Value) -> String>,
    /// The model reads images (`vision`): image paths in messages are attached.
    pub multimodal: bool,
}

impl Options {
    /// Defaults for `model`: no wrapping, no verbose output, no parameters.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }
}
