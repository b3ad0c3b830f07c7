//! The session loop: the conversation state, what each input does to it, and the printing
//! of streamed answers (`generateInteractive` and `chat` in Ollama's `cmd/`).

use super::command::{Composer, HelpTopic, Input, SetCommand, ShowCommand};
use super::display::{metrics_summary, Wrapper};
use super::parameters::{format_parameter, go_quote};
use super::{help, info, Backend, LineSource, Options, ReadResult};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

const PROMPT: &str = ">>> ";
const CONTINUATION_PROMPT: &str = "... ";

/// Ollama's width when the terminal size is unknown.
const DEFAULT_WIDTH: usize = 80;

/// Runs the REPL until `/bye`, `/exit` or Ctrl-D.
///
/// Loads the model first and prints its stored conversation. An error the REPL cannot
/// recover from (the server failing a request other than with the messages Ollama handles
/// in place) ends the session with that error, as in Ollama.
pub fn run(
    options: Options,
    lines: &mut dyn LineSource,
    backend: &mut dyn Backend,
    out: &mut dyn Write,
    err: &mut dyn Write,
    cancel: &AtomicBool,
) -> io::Result<()> {
    backend.load(&options.model).map_err(io::Error::other)?;
    let mut session = Session::new(options);
    let mut io = Io {
        lines,
        backend,
        out,
        err,
        cancel,
    };
    session.print_loaded_messages(&mut io)?;
    let mut composer = Composer::new();
    loop {
        let prompt = if composer.is_continuing() {
            CONTINUATION_PROMPT
        } else {
            PROMPT
        };
        match io.lines.read_line(prompt)? {
            ReadResult::Eof => {
                writeln!(io.out)?;
                return Ok(());
            }
            ReadResult::Interrupted => {
                composer.reset();
                writeln!(io.out, "\nUse Ctrl + d or /bye to exit.")?;
            }
            ReadResult::Line(line) => {
                if !line.trim().is_empty() {
                    io.lines.add_history(&line);
                }
                // A line starting with an image path is a message, not a command.
                let input = if !composer.is_continuing()
                    && session.options.multimodal
                    && starts_with_file(&line)
                {
                    Some(Input::Message(line.clone()))
                } else {
                    composer.feed(&line)
                };
                if let Some(input) = input {
                    if session.handle(input, &mut io)? == Flow::Exit {
                        return Ok(());
                    }
                }
            }
        }
        io.out.flush()?;
    }
}

/// Whether `line` starts with the path of an image (`/tmp/cat.png what is this?`), which
/// Ollama sends as a message rather than reading as an unknown command.
fn starts_with_file(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or_default();
    line.starts_with('/')
        && super::files::file_names(line)
            .iter()
            .any(|path| path.starts_with(first))
}

/// The collaborators of one session, borrowed together.
struct Io<'a> {
    lines: &'a mut dyn LineSource,
    backend: &'a mut dyn Backend,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    cancel: &'a AtomicBool,
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

/// Everything a session changes: settings and the conversation so far.
#[derive(Debug, Clone)]
struct Session {
    options: Options,
    messages: Vec<Value>,
    /// Whether thinking was chosen by the user (flag or `/set think`), so `/load` must not
    /// infer it from the next model. Ollama counts a `think` present at start as explicit.
    think_explicit: bool,
}

impl Session {
    fn new(options: Options) -> Self {
        let messages = match options.system.as_deref() {
            Some(system) if !system.is_empty() => vec![message("system", system)],
            _ => Vec::new(),
        };
        let think_explicit = options.think.is_some();
        Self {
            options,
            messages,
            think_explicit,
        }
    }

    fn width(&self) -> usize {
        match self.options.width {
            0 => DEFAULT_WIDTH,
            width => width,
        }
    }

    fn print_loaded_messages(&self, io: &mut Io<'_>) -> io::Result<()> {
        for loaded in &self.options.loaded_messages {
            let content = loaded["content"].as_str().unwrap_or_default();
            match loaded["role"].as_str() {
                Some("user") => writeln!(io.out, "{PROMPT}{content}")?,
                Some("assistant") => {
                    let mut wrapper = Wrapper::new(self.options.word_wrap, self.width());
                    wrapper.write(io.out, content)?;
                    wrapper.finish(io.out)?;
                    writeln!(io.out, "\n")?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn handle(&mut self, input: Input, io: &mut Io<'_>) -> io::Result<Flow> {
        match input {
            Input::Message(text) if text.is_empty() => {}
            Input::Message(text) | Input::BeginMultiline(text) => self.send(text, io)?,
            Input::List(_) => {
                let table = io.backend.list().map_err(io::Error::other)?;
                write!(io.out, "{table}")?;
            }
            Input::Load(None) => writeln!(io.out, "Usage:\n  /load <modelname>")?,
            Input::Load(Some(model)) => self.load(&model, io)?,
            Input::Save(None) => writeln!(io.out, "Usage:\n  /save <modelname>")?,
            Input::Save(Some(model)) => self.save(&model, io)?,
            Input::Clear => {
                self.messages.clear();
                if let Some(system) = self.options.system.as_deref().filter(|s| !s.is_empty()) {
                    self.messages.push(message("system", system));
                }
                writeln!(io.out, "Cleared session context")?;
            }
            Input::Set(command) => self.set(command, io)?,
            Input::Show(command) => self.show(command, io)?,
            Input::Help(topic) => {
                let commands = help::commands(self.options.multimodal);
                let text = match topic {
                    HelpTopic::Commands => commands.as_str(),
                    HelpTopic::Set => help::SET,
                    HelpTopic::Show => help::SHOW,
                    HelpTopic::Shortcuts => help::SHORTCUTS,
                    HelpTopic::Other(_) => "",
                };
                write!(io.err, "{text}")?;
            }
            Input::Exit => return Ok(Flow::Exit),
            Input::Unknown(word) => writeln!(io.out, "Unknown command '{word}'. Type /? for help")?,
        }
        Ok(Flow::Continue)
    }

    /// The body of `POST /api/chat` for the conversation so far.
    fn chat_request(&self) -> Value {
        let mut request = json!({
            "model": self.options.model,
            "messages": self.messages,
            "options": self.options.parameters,
            "stream": true,
        });
        if let Some(format) = self.options.format.as_deref().filter(|f| !f.is_empty()) {
            request["format"] = Value::from(format);
        }
        if let Some(keep_alive) = &self.options.keep_alive {
            request["keep_alive"] = Value::from(keep_alive.as_str());
        }
        if let Some(think) = &self.options.think {
            request["think"] = think.clone();
        }
        request
    }

    /// One turn: the user's message, the streamed answer, and the answer kept for the next
    /// turn. On Ctrl-C or a handled error the user's message stays in the history without an
    /// answer, as in Ollama.
    fn send(&mut self, text: String, io: &mut Io<'_>) -> io::Result<()> {
        let mut user = message("user", &text);
        if self.options.multimodal {
            match super::files::extract_images(&text, io.err)? {
                Ok((text, images)) => {
                    user["content"] = Value::from(text);
                    if !images.is_empty() {
                        user["images"] = Value::from(images);
                    }
                }
                Err(error) => return Err(io::Error::other(error)),
            }
        }
        self.messages.push(user);
        let request = self.chat_request();
        io.cancel.store(false, Ordering::SeqCst);
        let mut printer = AnswerPrinter::new(
            Wrapper::new(self.options.word_wrap, self.width()),
            self.options.hide_thinking,
        );
        let mut write_error = None;
        let out = &mut *io.out;
        let cancel = io.cancel;
        let result = io.backend.chat(
            &request,
            &mut |chunk| {
                if write_error.is_none() {
                    if let Err(error) = printer.chunk(out, chunk) {
                        // Nobody is reading any more (a closed pipe): stop the answer too.
                        cancel.store(true, Ordering::SeqCst);
                        write_error = Some(error);
                    }
                }
            },
            cancel,
        );
        if let Some(error) = write_error {
            return Err(error);
        }
        printer.finish(io.out)?;
        match result {
            Ok(last) => {
                writeln!(io.out, "\n")?;
                if self.options.verbose {
                    write!(io.err, "{}", metrics_summary(&last))?;
                }
                self.messages.push(printer.into_message());
            }
            Err(error) => {
                if printer.mid_line() {
                    writeln!(io.out)?;
                }
                if error == "canceled" || io.cancel.load(Ordering::SeqCst) {
                    io.cancel.store(false, Ordering::SeqCst);
                } else if error.contains("upstream error") {
                    writeln!(
                        io.out,
                        "An error occurred while processing your message. Please try again.\n"
                    )?;
                } else if error.contains("does not support thinking")
                    || error.contains("invalid think value")
                {
                    writeln!(io.out, "error: {error}")?;
                } else {
                    return Err(io::Error::other(error));
                }
            }
        }
        Ok(())
    }

    fn set(&mut self, command: SetCommand, io: &mut Io<'_>) -> io::Result<()> {
        match command {
            SetCommand::Usage => write!(io.err, "{}", help::SET)?,
            SetCommand::ParameterUsage => write!(io.err, "{}", help::PARAMETERS)?,
            SetCommand::Parameter { name, values } => match format_parameter(&name, &values) {
                Ok(value) => {
                    writeln!(io.out, "Set parameter '{name}' to '{}'", values.join(", "))?;
                    self.options.parameters.insert(name, value);
                }
                Err(error) => writeln!(io.out, "Couldn't set parameter: {}", go_quote(&error))?,
            },
            SetCommand::System(text) => {
                self.options.system = Some(text.clone());
                let system = message("system", &text);
                match self.messages.last_mut() {
                    Some(last) if last["role"] == "system" => *last = system,
                    _ => self.messages.push(system),
                }
                writeln!(io.out, "Set system message.")?;
            }
            // The composer turns these into `System` once the closing quotes arrive.
            SetCommand::BeginSystem(_) => {}
            SetCommand::History(on) => io.lines.set_history_enabled(on),
            SetCommand::WordWrap(on) => {
                self.options.word_wrap = on;
                let mode = if on { "wordwrap" } else { "nowordwrap" };
                writeln!(io.out, "Set '{mode}' mode.")?;
            }
            SetCommand::Verbose(on) => {
                self.options.verbose = on;
                let mode = if on { "verbose" } else { "quiet" };
                writeln!(io.out, "Set '{mode}' mode.")?;
            }
            SetCommand::FormatJson => {
                self.options.format = Some("json".to_string());
                writeln!(io.out, "Set format to 'json' mode.")?;
            }
            SetCommand::FormatInvalid => writeln!(
                io.out,
                "Invalid or missing format. For 'json' mode use '/set format json'"
            )?,
            SetCommand::NoFormat => {
                self.options.format = None;
                writeln!(io.out, "Disabled format.")?;
            }
            SetCommand::Think(level) => {
                self.options.think = Some(match &level {
                    Some(level) => Value::from(level.as_str()),
                    None => Value::Bool(true),
                });
                self.think_explicit = true;
                self.warn_unless_thinking_capable(io)?;
                match level {
                    Some(level) => writeln!(io.out, "Set 'think' mode to '{level}'.")?,
                    None => writeln!(io.out, "Set 'think' mode.")?,
                }
            }
            SetCommand::NoThink => {
                self.options.think = Some(Value::Bool(false));
                self.think_explicit = true;
                self.warn_unless_thinking_capable(io)?;
                writeln!(io.out, "Set 'nothink' mode.")?;
            }
            SetCommand::Unknown(word) => {
                writeln!(io.out, "Unknown command '/set {word}'. Type /? for help")?
            }
        }
        Ok(())
    }

    /// Ollama's `ensureThinkingSupport`: a warning on stderr, never an error.
    fn warn_unless_thinking_capable(&self, io: &mut Io<'_>) -> io::Result<()> {
        let Ok(response) = io.backend.show(&json!({"model": self.options.model})) else {
            return Ok(());
        };
        if !has_capability(&response, "thinking") {
            writeln!(
                io.err,
                "warning: model {} does not support thinking output",
                go_quote(&self.options.model)
            )?;
        }
        Ok(())
    }

    fn show(&mut self, command: ShowCommand, io: &mut Io<'_>) -> io::Result<()> {
        if command == ShowCommand::Usage {
            return write!(io.err, "{}", help::SHOW);
        }
        let request = json!({
            "model": self.options.model,
            "system": self.options.system.clone().unwrap_or_default(),
            "options": self.options.parameters,
        });
        let response = match io.backend.show(&request) {
            Ok(response) => response,
            Err(error) => {
                writeln!(io.out, "error: couldn't get model")?;
                return Err(io::Error::other(error));
            }
        };
        match command {
            ShowCommand::Usage => {}
            ShowCommand::Info => {
                let render = self.options.show_info.unwrap_or(info::info);
                write!(io.err, "{}", render(&response))?;
            }
            ShowCommand::License => write!(io.out, "{}", info::license(&response))?,
            ShowCommand::Modelfile => write!(io.out, "{}", info::modelfile(&response))?,
            ShowCommand::Parameters => write!(
                io.out,
                "{}",
                info::parameters(&response, &self.options.parameters)
            )?,
            ShowCommand::System => write!(
                io.out,
                "{}",
                info::system(&response, self.options.system.as_deref())
            )?,
            ShowCommand::Template => write!(io.out, "{}", info::template(&response))?,
            ShowCommand::Unknown(word) => {
                writeln!(io.out, "Unknown command '/show {word}'. Type /? for help")?
            }
        }
        Ok(())
    }

    /// `/load MODEL`: switch models and start an empty conversation; an unknown model
    /// leaves the session as it was.
    fn load(&mut self, model: &str, io: &mut Io<'_>) -> io::Result<()> {
        let previous = self.clone();
        self.options.model = model.to_string();
        self.messages.clear();
        self.options.loaded_messages.clear();
        writeln!(io.out, "Loading model '{model}'")?;
        match io.backend.show(&json!({"model": model})) {
            Ok(response) => {
                self.options.parent_model = response["details"]["parent_model"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .map(str::to_string);
                self.options.loaded_messages =
                    response["messages"].as_array().cloned().unwrap_or_default();
                self.options.multimodal = has_capability(&response, "vision");
                if !self.think_explicit {
                    self.options.think =
                        has_capability(&response, "thinking").then_some(Value::Bool(true));
                }
            }
            Err(error) if error.contains("not found") => {
                *self = previous;
                return writeln!(io.out, "Couldn't find model '{model}'");
            }
            Err(error) => return Err(io::Error::other(error)),
        }
        match io.backend.load(model) {
            Ok(()) => Ok(()),
            Err(error) if error.contains("not found") => {
                *self = previous;
                writeln!(io.out, "Couldn't find model '{model}'")
            }
            Err(error) if error.contains("does not support thinking") => {
                writeln!(io.out, "error: {error}")
            }
            Err(error) => Err(io::Error::other(error)),
        }
    }

    /// `/save MODEL`: a new model from the current one with this session's system
    /// message, parameters and conversation (Ollama's `NewCreateRequest`).
    fn save(&mut self, model: &str, io: &mut Io<'_>) -> io::Result<()> {
        let from = self
            .options
            .parent_model
            .clone()
            .unwrap_or_else(|| self.options.model.clone());
        let mut request = json!({"model": model, "from": from});
        if let Some(system) = self.options.system.as_deref().filter(|s| !s.is_empty()) {
            request["system"] = Value::from(system);
        }
        if !self.options.parameters.is_empty() {
            request["parameters"] = Value::Object(self.options.parameters.clone());
        }
        let messages: Vec<Value> = self
            .options
            .loaded_messages
            .iter()
            .chain(&self.messages)
            .cloned()
            .collect();
        if !messages.is_empty() {
            request["messages"] = Value::Array(messages);
        }
        match io.backend.create(&request) {
            Ok(()) => writeln!(io.out, "Created new model '{model}'"),
            Err(error) if error.contains("invalid model name") => {
                writeln!(io.out, "error: The model name '{model}' is invalid")
            }
            Err(error) => Err(io::Error::other(error)),
        }
    }
}

fn message(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

fn has_capability(show_response: &Value, capability: &str) -> bool {
    show_response["capabilities"]
        .as_array()
        .is_some_and(|caps| caps.iter().any(|c| c == capability))
}

/// Prints the chunks of one answer and collects the assistant message from them.
struct AnswerPrinter {
    wrapper: Wrapper,
    hide_thinking: bool,
    thinking_open: bool,
    thinking_closed: bool,
    thinking: String,
    content: String,
    role: String,
}

impl AnswerPrinter {
    fn new(wrapper: Wrapper, hide_thinking: bool) -> Self {
        Self {
            wrapper,
            hide_thinking,
            thinking_open: false,
            thinking_closed: false,
            thinking: String::new(),
            content: String::new(),
            role: "assistant".to_string(),
        }
    }

    fn chunk(&mut self, out: &mut dyn Write, chunk: &Value) -> io::Result<()> {
        let message = &chunk["message"];
        if let Some(role) = message["role"].as_str().filter(|r| !r.is_empty()) {
            self.role = role.to_string();
        }
        let thinking = message["thinking"].as_str().unwrap_or_default();
        if !thinking.is_empty() && !self.hide_thinking {
            if !self.thinking_open {
                writeln!(out, "Thinking...")?;
                self.thinking_open = true;
                self.thinking_closed = false;
            }
            self.thinking.push_str(thinking);
            self.wrapper.write(out, thinking)?;
        }
        let content = message["content"].as_str().unwrap_or_default();
        let tool_calls = message["tool_calls"].as_array().filter(|t| !t.is_empty());
        if self.thinking_open
            && !self.thinking_closed
            && (!content.is_empty() || tool_calls.is_some())
        {
            self.wrapper.finish(out)?;
            if !self.thinking.ends_with('\n') {
                writeln!(out)?;
            }
            write!(out, "...done thinking.\n\n")?;
            self.thinking_open = false;
            self.thinking_closed = true;
            self.wrapper.start_line();
        }
        self.content.push_str(content);
        if let Some(calls) = tool_calls {
            // The CLI registers no tools, so any call is to a function that does not exist.
            let rendered: Vec<String> = calls
                .iter()
                .map(|call| {
                    format!(
                        "  Model called a non-existent function '{}()' with arguments: {}",
                        call["function"]["name"].as_str().unwrap_or_default(),
                        call["function"]["arguments"]
                    )
                })
                .collect();
            self.wrapper.finish(out)?;
            write!(out, "{}", rendered.join("\n"))?;
            self.wrapper.start_line();
        }
        self.wrapper.write(out, content)
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.wrapper.finish(out)
    }

    fn mid_line(&self) -> bool {
        self.wrapper.mid_line()
    }

    fn into_message(self) -> Value {
        let mut message = message(&self.role, &self.content);
        if !self.thinking.is_empty() {
            message["thinking"] = Value::from(self.thinking);
        }
        message
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
