//! What a line typed at the `>>> ` prompt means: pure parsing of `/commands` and of
//! `"""` multi-line messages, with no I/O, so every case is a table-style unit test.
//!
//! The rules follow `generateInteractive` in Ollama's `cmd/interactive.go`, including its
//! prefix matching (`/byebye` exits, `/clearall` clears): commands are recognised with
//! `strings.HasPrefix` there, and arguments are split on whitespace with `strings.Fields`.

/// The closing (and opening) marker of a multi-line message.
const TRIPLE_QUOTE: &str = "\"\"\"";

/// One parsed line (or one completed multi-line message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Text to send to the model. An empty message is ignored by the session.
    Message(String),
    /// A line starting with `"""` and not ending with it: the text after the quotes opens a
    /// multi-line message.
    BeginMultiline(String),
    /// `/list [filter...]`.
    List(Vec<String>),
    /// `/load MODEL`; `None` when the argument count is wrong (prints the usage).
    Load(Option<String>),
    /// `/save MODEL`; `None` when the argument count is wrong (prints the usage).
    Save(Option<String>),
    /// `/clear`.
    Clear,
    /// `/set ...`.
    Set(SetCommand),
    /// `/show ...`.
    Show(ShowCommand),
    /// `/?` or `/help`, with an optional topic.
    Help(HelpTopic),
    /// `/bye` or `/exit`.
    Exit,
    /// Any other `/word`; holds the first word, as Ollama's message quotes it.
    Unknown(String),
}

/// The `/set` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetCommand {
    /// `/set` alone: print the `/set` help.
    Usage,
    /// `/set parameter NAME VALUE...`.
    Parameter { name: String, values: Vec<String> },
    /// `/set parameter` with fewer than two arguments: print the parameter list.
    ParameterUsage,
    /// `/set system TEXT` or `/set system """TEXT"""`.
    System(String),
    /// `/set system """TEXT` without the closing quotes: a multi-line system message.
    BeginSystem(String),
    /// `/set history` (`true`) or `/set nohistory` (`false`).
    History(bool),
    /// `/set wordwrap` (`true`) or `/set nowordwrap` (`false`).
    WordWrap(bool),
    /// `/set format json`.
    FormatJson,
    /// `/set format` with anything but `json`.
    FormatInvalid,
    /// `/set noformat`.
    NoFormat,
    /// `/set verbose` (`true`) or `/set quiet` (`false`).
    Verbose(bool),
    /// `/set think [level]`.
    Think(Option<String>),
    /// `/set nothink`.
    NoThink,
    /// `/set WORD` for any other word.
    Unknown(String),
}

/// The `/show` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowCommand {
    /// `/show` alone: print the `/show` help.
    Usage,
    Info,
    License,
    Modelfile,
    Parameters,
    System,
    Template,
    /// `/show WORD` for any other word.
    Unknown(String),
}

/// What `/?` or `/help` was asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpTopic {
    /// No topic: the list of commands.
    Commands,
    Set,
    Show,
    Shortcuts,
    /// Any other topic: Ollama prints nothing.
    Other(String),
}

/// Parses one line typed at the main prompt (not inside a multi-line message).
pub fn parse_input(line: &str) -> Input {
    if let Some(rest) = line.strip_prefix(TRIPLE_QUOTE) {
        return match rest.strip_suffix(TRIPLE_QUOTE) {
            Some(text) => Input::Message(text.to_string()),
            None => Input::BeginMultiline(rest.to_string()),
        };
    }
    if !line.starts_with('/') {
        return Input::Message(line.to_string());
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let argument = |i: usize| words.get(i).map(|w| w.to_string());
    if line.starts_with("/list") {
        Input::List(words[1..].iter().map(|w| w.to_string()).collect())
    } else if line.starts_with("/load") {
        Input::Load(argument(1).filter(|_| words.len() == 2))
    } else if line.starts_with("/save") {
        Input::Save(argument(1).filter(|_| words.len() == 2))
    } else if line.starts_with("/clear") {
        Input::Clear
    } else if line.starts_with("/set") {
        Input::Set(parse_set(&words))
    } else if line.starts_with("/show") {
        Input::Show(parse_show(&words))
    } else if line.starts_with("/help") || line.starts_with("/?") {
        Input::Help(match words.get(1).copied() {
            None => HelpTopic::Commands,
            Some("set" | "/set") => HelpTopic::Set,
            Some("show" | "/show") => HelpTopic::Show,
            Some("shortcut" | "shortcuts") => HelpTopic::Shortcuts,
            Some(other) => HelpTopic::Other(other.to_string()),
        })
    } else if line.starts_with("/exit") || line.starts_with("/bye") {
        Input::Exit
    } else {
        Input::Unknown(argument(0).unwrap_or_else(|| "/".to_string()))
    }
}

fn parse_set(words: &[&str]) -> SetCommand {
    let Some(&sub) = words.get(1) else {
        return SetCommand::Usage;
    };
    match sub {
        "history" => SetCommand::History(true),
        "nohistory" => SetCommand::History(false),
        "wordwrap" => SetCommand::WordWrap(true),
        "nowordwrap" => SetCommand::WordWrap(false),
        "verbose" => SetCommand::Verbose(true),
        "quiet" => SetCommand::Verbose(false),
        "think" => SetCommand::Think(words.get(2).map(|w| w.to_string())),
        "nothink" => SetCommand::NoThink,
        "format" if words.get(2) == Some(&"json") => SetCommand::FormatJson,
        "format" => SetCommand::FormatInvalid,
        "noformat" => SetCommand::NoFormat,
        "parameter" if words.len() < 4 => SetCommand::ParameterUsage,
        "parameter" => SetCommand::Parameter {
            name: words[2].to_string(),
            values: words[3..].iter().map(|w| w.to_string()).collect(),
        },
        "system" if words.len() < 3 => SetCommand::Usage,
        "system" => {
            // Ollama rebuilds the text from the words, so runs of spaces collapse.
            let text = words[2..].join(" ");
            match text.strip_prefix(TRIPLE_QUOTE) {
                None => SetCommand::System(text),
                Some(rest) => match rest.strip_suffix(TRIPLE_QUOTE) {
                    Some(inner) => SetCommand::System(inner.to_string()),
                    None => SetCommand::BeginSystem(rest.to_string()),
                },
            }
        }
        other => SetCommand::Unknown(other.to_string()),
    }
}

fn parse_show(words: &[&str]) -> ShowCommand {
    match words.get(1).copied() {
        None => ShowCommand::Usage,
        Some("info") => ShowCommand::Info,
        Some("license") => ShowCommand::License,
        Some("modelfile") => ShowCommand::Modelfile,
        Some("parameters") => ShowCommand::Parameters,
        Some("system") => ShowCommand::System,
        Some("template") => ShowCommand::Template,
        Some(other) => ShowCommand::Unknown(other.to_string()),
    }
}

/// Which kind of multi-line input is being collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multiline {
    Prompt,
    System,
}

/// Turns the stream of typed lines into complete inputs, collecting `"""` multi-line
/// messages (and multi-line `/set system """…"""`) until a line ends with `"""`.
#[derive(Debug, Default)]
pub struct Composer {
    pending: Option<(Multiline, Vec<String>)>,
}

impl Composer {
    /// A composer with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a multi-line message is open (the prompt should be `... `).
    pub fn is_continuing(&self) -> bool {
        self.pending.is_some()
    }

    /// Drops a half-typed multi-line message (Ctrl-C).
    pub fn reset(&mut self) {
        self.pending = None;
    }

    /// Feeds one typed line; returns the input it completes, or `None` while a multi-line
    /// message is still open.
    ///
    /// The lines of a multi-line message are joined with `\n`, the first holding the text
    /// after the opening quotes and the last the text before the closing ones, so
    /// `"""` / `hi` / `"""` gives `"\nhi\n"` exactly as Ollama sends it. Ollama forgets the
    /// newline after the first line of a multi-line `/set system`, gluing two words together;
    /// here both kinds join the same way.
    pub fn feed(&mut self, line: &str) -> Option<Input> {
        if let Some((kind, mut lines)) = self.pending.take() {
            let (text, closed) = match line.strip_suffix(TRIPLE_QUOTE) {
                Some(before) => (before, true),
                None => (line, false),
            };
            lines.push(text.to_string());
            if !closed {
                self.pending = Some((kind, lines));
                return None;
            }
            let text = lines.join("\n");
            return Some(match kind {
                Multiline::Prompt => Input::Message(text),
                Multiline::System => Input::Set(SetCommand::System(text)),
            });
        }
        match parse_input(line) {
            Input::BeginMultiline(first) => {
                self.pending = Some((Multiline::Prompt, vec![first]));
                None
            }
            Input::Set(SetCommand::BeginSystem(first)) => {
                self.pending = Some((Multiline::System, vec![first]));
                None
            }
            input => Some(input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(line: &str) -> SetCommand {
        match parse_input(line) {
            Input::Set(command) => command,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn plain_text_is_a_message() {
        assert_eq!(
            parse_input("hello there"),
            Input::Message("hello there".into())
        );
        assert_eq!(parse_input(""), Input::Message(String::new()));
    }

    #[test]
    fn set_parameter_collects_every_value_word() {
        assert_eq!(
            set("/set parameter stop <|end|>   ###  END"),
            SetCommand::Parameter {
                name: "stop".into(),
                values: vec!["<|end|>".into(), "###".into(), "END".into()],
            }
        );
        assert_eq!(set("/set parameter seed"), SetCommand::ParameterUsage);
    }

    #[test]
    fn set_system_keeps_the_text_and_strips_triple_quotes() {
        assert_eq!(
            set("/set system You are  Mario"),
            SetCommand::System("You are Mario".into())
        );
        assert_eq!(
            set(r#"/set system """Be brief""""#),
            SetCommand::System("Be brief".into())
        );
        assert_eq!(
            set(r#"/set system """Be"#),
            SetCommand::BeginSystem("Be".into())
        );
        assert_eq!(set("/set system"), SetCommand::Usage);
    }

    #[test]
    fn set_switches_parse_to_their_modes() {
        let cases = [
            ("/set", SetCommand::Usage),
            ("/set history", SetCommand::History(true)),
            ("/set nohistory", SetCommand::History(false)),
            ("/set wordwrap", SetCommand::WordWrap(true)),
            ("/set nowordwrap", SetCommand::WordWrap(false)),
            ("/set format json", SetCommand::FormatJson),
            ("/set format yaml", SetCommand::FormatInvalid),
            ("/set format", SetCommand::FormatInvalid),
            ("/set noformat", SetCommand::NoFormat),
            ("/set verbose", SetCommand::Verbose(true)),
            ("/set quiet", SetCommand::Verbose(false)),
            ("/set think", SetCommand::Think(None)),
            ("/set think high", SetCommand::Think(Some("high".into()))),
            ("/set nothink", SetCommand::NoThink),
            ("/set colour", SetCommand::Unknown("colour".into())),
        ];
        for (line, expected) in cases {
            assert_eq!(set(line), expected, "{line}");
        }
    }

    #[test]
    fn show_topics_parse_including_unknown_ones() {
        let cases = [
            ("/show", ShowCommand::Usage),
            ("/show info", ShowCommand::Info),
            ("/show license", ShowCommand::License),
            ("/show modelfile", ShowCommand::Modelfile),
            ("/show parameters", ShowCommand::Parameters),
            ("/show system", ShowCommand::System),
            ("/show template", ShowCommand::Template),
            ("/show tensors", ShowCommand::Unknown("tensors".into())),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_input(line), Input::Show(expected), "{line}");
        }
    }

    #[test]
    fn help_accepts_both_spellings_and_topics() {
        assert_eq!(parse_input("/?"), Input::Help(HelpTopic::Commands));
        assert_eq!(parse_input("/help"), Input::Help(HelpTopic::Commands));
        assert_eq!(parse_input("/? set"), Input::Help(HelpTopic::Set));
        assert_eq!(parse_input("/help /show"), Input::Help(HelpTopic::Show));
        assert_eq!(
            parse_input("/? shortcuts"),
            Input::Help(HelpTopic::Shortcuts)
        );
        assert_eq!(
            parse_input("/? shortcut"),
            Input::Help(HelpTopic::Shortcuts)
        );
        assert_eq!(
            parse_input("/? x"),
            Input::Help(HelpTopic::Other("x".into()))
        );
    }

    #[test]
    fn session_commands_parse_with_their_arguments() {
        assert_eq!(
            parse_input("/load llama3"),
            Input::Load(Some("llama3".into()))
        );
        assert_eq!(parse_input("/load"), Input::Load(None));
        assert_eq!(parse_input("/load a b"), Input::Load(None));
        assert_eq!(parse_input("/save mine"), Input::Save(Some("mine".into())));
        assert_eq!(parse_input("/save"), Input::Save(None));
        assert_eq!(parse_input("/clear"), Input::Clear);
        assert_eq!(parse_input("/list"), Input::List(vec![]));
        assert_eq!(parse_input("/list qwen"), Input::List(vec!["qwen".into()]));
        assert_eq!(parse_input("/bye"), Input::Exit);
        assert_eq!(parse_input("/exit"), Input::Exit);
    }

    #[test]
    fn commands_match_by_prefix_like_ollama() {
        assert_eq!(parse_input("/byebye"), Input::Exit);
        assert_eq!(parse_input("/clearall"), Input::Clear);
    }

    #[test]
    fn unknown_commands_keep_their_first_word() {
        assert_eq!(parse_input("/foo bar"), Input::Unknown("/foo".into()));
        assert_eq!(parse_input("/"), Input::Unknown("/".into()));
    }

    #[test]
    fn triple_quotes_on_one_line_make_a_plain_message() {
        assert_eq!(
            parse_input(r#""""hi there""""#),
            Input::Message("hi there".into())
        );
        assert_eq!(parse_input(r#""""hi"#), Input::BeginMultiline("hi".into()));
    }

    #[test]
    fn composer_joins_multiline_messages_with_newlines() {
        let mut composer = Composer::new();
        assert_eq!(composer.feed(r#""""first"#), None);
        assert!(composer.is_continuing());
        assert_eq!(composer.feed("second"), None);
        assert_eq!(
            composer.feed(r#"third""""#),
            Some(Input::Message("first\nsecond\nthird".into()))
        );
        assert!(!composer.is_continuing());
    }

    #[test]
    fn composer_keeps_blank_edges_like_ollama() {
        let mut composer = Composer::new();
        assert_eq!(composer.feed(r#"""""#), None);
        assert_eq!(composer.feed("hi"), None);
        assert_eq!(
            composer.feed(r#"""""#),
            Some(Input::Message("\nhi\n".into()))
        );
    }

    #[test]
    fn composer_collects_a_multiline_system_message() {
        let mut composer = Composer::new();
        assert_eq!(composer.feed(r#"/set system """You are"#), None);
        assert_eq!(
            composer.feed(r#"a pirate.""""#),
            Some(Input::Set(SetCommand::System("You are\na pirate.".into())))
        );
    }

    #[test]
    fn composer_reset_drops_the_open_message() {
        let mut composer = Composer::new();
        assert_eq!(composer.feed(r#""""draft"#), None);
        composer.reset();
        assert!(!composer.is_continuing());
        assert_eq!(composer.feed("/bye"), Some(Input::Exit));
    }

    #[test]
    fn slash_lines_inside_a_multiline_message_are_text() {
        let mut composer = Composer::new();
        composer.feed(r#"""""#);
        composer.feed("/bye");
        assert_eq!(
            composer.feed(r#"""""#),
            Some(Input::Message("\n/bye\n".into()))
        );
    }
}
