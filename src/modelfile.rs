//! The Modelfile: parsing, printing back, and typing `PARAMETER` values.
//!
//! The parser is a rune-by-rune state machine that reproduces Ollama's `parser.ParseFile`
//! (`parser/parser.go`), quirks included, so a Modelfile that Ollama accepts parses to the same
//! commands here and one it rejects fails with the same message. Two checks that Ollama makes
//! later, in `Modelfile.CreateRequest`, happen here at parse time because every caller needs
//! them: deprecated `PARAMETER` names are dropped (with the warning Ollama prints) and `REQUIRES`
//! must be a valid semantic version.
//!
//! [`format_parameters`] reproduces `api.FormatParams` (`api/types.go`): it turns the string
//! values of `PARAMETER` lines into typed JSON values, and [`Modelfile::typed_parameters`] folds
//! every `PARAMETER` line of a file the way `CreateRequest` does.

use std::fmt;

use serde_json::{Map, Value};

/// One instruction of a Modelfile, as Ollama's `parser.Command`.
///
/// `name` is the lower-cased instruction (`"model"` for `FROM`, `"license"`, `"template"`,
/// `"system"`, `"adapter"`, `"draft"`, `"renderer"`, `"parser"`, `"message"`, `"requires"`); for a
/// `PARAMETER` line it is the parameter name itself (`"temperature"`, `"stop"`). A `MESSAGE`
/// line's `args` is `"<role>: <text>"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    pub name: String,
    pub args: String,
}

/// A parsed Modelfile: its commands in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Modelfile {
    pub commands: Vec<Command>,
    /// Lines to show the user, exactly as Ollama prints them
    /// (`warning: parameter mirostat is deprecated`). They are not part of the file.
    pub warnings: Vec<String>,
}

/// Everything that can go wrong reading a Modelfile or typing its parameters. The messages are
/// Ollama's, word for word, because users and scripts match on them.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ModelfileError {
    #[error("(line {line}): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"")]
    InvalidCommand { line: usize },
    #[error("(line {line}): message role must be one of \"system\", \"user\", or \"assistant\"")]
    InvalidMessageRole { line: usize },
    /// The input ended inside an instruction or an open quote.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// A `PARAMETER` name or `MESSAGE` role ran into a character that cannot follow it (most
    /// often the end of the line, as in `PARAMETER stop`). Carries the text read so far.
    #[error("unexpected EOF: {0}")]
    UnexpectedEofAfter(String),
    #[error("no FROM line")]
    MissingFrom,
    #[error("requires must be a valid semver (e.g. 0.14.0)")]
    InvalidRequires,
    #[error("unknown parameter '{0}'")]
    UnknownParameter(String),
    // Ollama formats the whole value slice with `%s`, which prints `[a b]`.
    #[error("invalid int value [{}]", .0.join(" "))]
    InvalidInt(Vec<String>),
    #[error("invalid float value [{}]", .0.join(" "))]
    InvalidFloat(Vec<String>),
    #[error("invalid bool value [{}]", .0.join(" "))]
    InvalidBool(Vec<String>),
    /// A float parameter of `NaN` or `Inf`: Go parses it, then fails to encode the create
    /// request as JSON with this message. JSON has no such numbers here either.
    #[error("json: unsupported value: {0}")]
    UnsupportedFloat(String),
}

/// Instruction names as they appear in [`Command::name`]; any other name is a parameter.
const INSTRUCTION_NAMES: [&str; 10] = [
    "model", "license", "template", "system", "adapter", "draft", "renderer", "parser", "message",
    "requires",
];

/// Parameters Ollama no longer accepts; `CreateRequest` warns and drops them.
const DEPRECATED_PARAMETERS: [&str; 9] = [
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

/// The Go type of an `api.Options` field, which decides how its string value is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParameterKind {
    Int,
    Float,
    Bool,
    StringList,
}

/// The JSON keys of `api.Options` and its embedded `api.Runner`, with their Go types.
/// `main_gpu` (`*int`) and `use_mmap` (`*bool`) are pointers in Go but parse the same way.
const KNOWN_PARAMETERS: [(&str, ParameterKind); 20] = [
    ("num_ctx", ParameterKind::Int),
    ("num_batch", ParameterKind::Int),
    ("num_gpu", ParameterKind::Int),
    ("main_gpu", ParameterKind::Int),
    ("use_mmap", ParameterKind::Bool),
    ("num_thread", ParameterKind::Int),
    ("draft_num_predict", ParameterKind::Int),
    ("num_keep", ParameterKind::Int),
    ("seed", ParameterKind::Int),
    ("num_predict", ParameterKind::Int),
    ("top_k", ParameterKind::Int),
    ("top_p", ParameterKind::Float),
    ("min_p", ParameterKind::Float),
    ("typical_p", ParameterKind::Float),
    ("repeat_last_n", ParameterKind::Int),
    ("temperature", ParameterKind::Float),
    ("repeat_penalty", ParameterKind::Float),
    ("presence_penalty", ParameterKind::Float),
    ("frequency_penalty", ParameterKind::Float),
    ("stop", ParameterKind::StringList),
];

/// Whether a command with this name came from a `PARAMETER` line, that is, whether it is not
/// one of the instructions' internal names.
pub fn is_parameter(name: &str) -> bool {
    !INSTRUCTION_NAMES.contains(&name)
}

/// Whether [`format_parameters`] accepts this parameter name.
pub fn is_known_parameter(name: &str) -> bool {
    parameter_kind(name).is_some()
}

/// Whether Ollama drops this parameter name with a deprecation warning.
pub fn is_deprecated_parameter(name: &str) -> bool {
    DEPRECATED_PARAMETERS.contains(&name)
}

fn parameter_kind(name: &str) -> Option<ParameterKind> {
    KNOWN_PARAMETERS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, kind)| *kind)
}

impl Modelfile {
    /// The `PARAMETER` values grouped by name, names in the order they first appear and values
    /// in file order.
    pub fn parameters(&self) -> Vec<(String, Vec<String>)> {
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for command in self.commands.iter().filter(|c| is_parameter(&c.name)) {
            match grouped.iter_mut().find(|(name, _)| *name == command.name) {
                Some((_, values)) => values.push(command.args.clone()),
                None => grouped.push((command.name.clone(), vec![command.args.clone()])),
            }
        }
        grouped
    }

    /// Every `PARAMETER` line typed as Ollama's `CreateRequest` does it: lines are typed one at
    /// a time in file order, `stop` values accumulate into one array, and for any other name the
    /// last line wins. Deprecated names are skipped. The first bad value is the error.
    pub fn typed_parameters(&self) -> Result<Map<String, Value>, ModelfileError> {
        let mut typed = Map::new();
        for command in &self.commands {
            if !is_parameter(&command.name) || is_deprecated_parameter(&command.name) {
                continue;
            }
            let single = [(command.name.clone(), vec![command.args.clone()])];
            for (key, value) in format_parameters(&single)? {
                match (typed.get_mut(&key), value) {
                    (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
                    (_, value) => {
                        typed.insert(key, value);
                    }
                }
            }
        }
        Ok(typed)
    }
}

/// Ollama's `api.FormatParams`: types the string values of `PARAMETER` lines by the Go type of
/// the matching `api.Options` field.
///
/// Ints parse like Go's `strconv.ParseInt(v, 10, 64)` (so `1.5` is an error), floats like
/// `strconv.ParseFloat(v, 32)` and bools like `strconv.ParseBool`. Only the first value of a
/// name is used unless the field is the `stop` list, which takes them all. A float is stored as
/// the `f64` with the same shortest digits as the `float32` Go would encode, so `0.9` stays
/// `0.9` (Go would print an integral float as `1` where `serde_json` prints `1.0`).
pub fn format_parameters(
    params: &[(String, Vec<String>)],
) -> Result<Map<String, Value>, ModelfileError> {
    let mut typed = Map::new();
    for (name, values) in params {
        let kind =
            parameter_kind(name).ok_or_else(|| ModelfileError::UnknownParameter(name.clone()))?;
        let first = values.first().map(String::as_str);
        let value = match kind {
            ParameterKind::Int => first
                .and_then(|v| v.parse::<i64>().ok())
                .map(Value::from)
                .ok_or_else(|| ModelfileError::InvalidInt(values.clone()))?,
            ParameterKind::Float => {
                let parsed = first
                    .and_then(parse_go_float32)
                    .ok_or_else(|| ModelfileError::InvalidFloat(values.clone()))?;
                float32_to_json(parsed)?
            }
            ParameterKind::Bool => first
                .and_then(parse_go_bool)
                .map(Value::Bool)
                .ok_or_else(|| ModelfileError::InvalidBool(values.clone()))?,
            ParameterKind::StringList => {
                Value::Array(values.iter().cloned().map(Value::String).collect())
            }
        };
        typed.insert(name.clone(), value);
    }
    Ok(typed)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat(value, 32)`: `None` where Go returns an error, including a finite
/// number too large for a `float32`.
fn parse_go_float32(value: &str) -> Option<f32> {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "nan" {
        // Go takes no sign on NaN; Rust would.
        return (unsigned.len() == value.len()).then_some(f32::NAN);
    }
    let is_infinity_literal = lower == "inf" || lower == "infinity";
    let parsed = if lower.starts_with("0x") {
        parse_go_hex_float32(value)?
    } else {
        // Rust's decimal grammar is Go's (digits with an optional dot, an optional exponent
        // with at least one digit, no underscores), so only the range check differs.
        value.parse::<f32>().ok()?
    };
    if parsed.is_infinite() && !is_infinity_literal {
        return None;
    }
    Some(parsed)
}

/// A Go hexadecimal float (`0x1.8p3`, `-0x_1p-2`): hex mantissa with an optional dot, a
/// mandatory binary exponent, underscores only between digits. The result may differ from Go
/// in the last bit for subnormal `float32` values (rounded twice here).
fn parse_go_hex_float32(value: &str) -> Option<f32> {
    if !go_underscores_ok(value) {
        return None;
    }
    let cleaned: String = value.chars().filter(|c| *c != '_').collect();
    let (negative, unsigned) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let body = unsigned.get(2..)?;
    let (mantissa_text, exponent_text) = body.split_once(['p', 'P'])?;

    let mut mantissa: u64 = 0;
    let mut binary_exponent: i64 = 0;
    let mut saw_digit = false;
    let mut saw_dot = false;
    let mut sticky = false;
    for c in mantissa_text.chars() {
        if c == '.' {
            if saw_dot {
                return None;
            }
            saw_dot = true;
            continue;
        }
        let digit = c.to_digit(16)?;
        saw_digit = true;
        if mantissa < (1 << 60) {
            mantissa = mantissa * 16 + u64::from(digit);
            if saw_dot {
                binary_exponent -= 4;
            }
        } else {
            // Past 60 bits only whether anything non-zero follows matters for rounding.
            sticky |= digit != 0;
            if !saw_dot {
                binary_exponent += 4;
            }
        }
    }
    if !saw_digit {
        return None;
    }

    let (exponent_negative, exponent_digits) = match exponent_text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (
            false,
            exponent_text.strip_prefix('+').unwrap_or(exponent_text),
        ),
    };
    if exponent_digits.is_empty() || !exponent_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Clamp: anything beyond ±100000 is already zero or infinite.
    let exponent = exponent_digits
        .bytes()
        .fold(0i64, |acc, b| (acc * 10 + i64::from(b - b'0')).min(100_000));
    binary_exponent += if exponent_negative {
        -exponent
    } else {
        exponent
    };

    if mantissa == 0 {
        return Some(if negative { -0.0 } else { 0.0 });
    }
    if sticky {
        mantissa |= 1;
    }
    // `as` rounds to nearest even; the f64 scaling below is exact unless it leaves f64's range.
    // Rounding the mantissa to float32 precision here is the point.
    let rounded = mantissa as f32;
    let exponent_i32 = i32::try_from(binary_exponent.clamp(-2000, 2000)).ok()?;
    let scaled = f64::from(rounded) * 2f64.powi(exponent_i32);
    // Narrowing to float32 is what Go's ParseFloat(_, 32) does.
    let narrowed = scaled as f32;
    Some(if negative { -narrowed } else { narrowed })
}

/// Go's `strconv.underscoreOK` for a number with a base prefix: an underscore must sit between
/// two digits, or between the base prefix and a digit.
fn go_underscores_ok(value: &str) -> bool {
    #[derive(PartialEq)]
    enum Last {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let bytes = value.strip_prefix(['+', '-']).unwrap_or(value).as_bytes();
    let mut last = Last::Start;
    let mut index = 0;
    let mut hex = false;
    if bytes.len() >= 2
        && bytes[0] == b'0'
        && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        index = 2;
        last = Last::Digit;
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
    }
    for &byte in bytes.iter().skip(index) {
        if byte.is_ascii_digit() || (hex && byte.is_ascii_hexdigit()) {
            last = Last::Digit;
        } else if byte == b'_' {
            if last != Last::Digit {
                return false;
            }
            last = Last::Underscore;
        } else {
            if last == Last::Underscore {
                return false;
            }
            last = Last::Other;
        }
    }
    last != Last::Underscore
}

/// A parsed `float32` as JSON, with the digits Go's encoder would write.
fn float32_to_json(value: f32) -> Result<Value, ModelfileError> {
    if value.is_nan() {
        return Err(ModelfileError::UnsupportedFloat("NaN".to_owned()));
    }
    if value.is_infinite() {
        let shown = if value > 0.0 { "+Inf" } else { "-Inf" };
        return Err(ModelfileError::UnsupportedFloat(shown.to_owned()));
    }
    // Display gives the shortest digits that round-trip as f32; read back as f64 they print the
    // same, where widening the f32 itself would print 0.8999999761581421 for 0.9.
    let widened = value.to_string().parse::<f64>().unwrap_or(f64::from(value));
    Ok(serde_json::Number::from_f64(widened).map_or(Value::Null, Value::Number))
}

/// Ollama's `quote`: wraps a value only when it would not survive parsing bare, that is when it
/// holds a newline or starts or ends with a space; `"""` when it also holds a `"`.
pub fn quote(s: &str) -> String {
    if s.contains('\n') || s.starts_with(' ') || s.ends_with(' ') {
        if s.contains('"') {
            return format!("\"\"\"{s}\"\"\"");
        }
        return format!("\"{s}\"");
    }
    s.to_owned()
}

impl fmt::Display for Command {
    /// Ollama's `Command.String`: the line that parses back to this command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name.as_str() {
            // Ollama does not quote FROM, so a path with outer spaces loses them on a round trip.
            "model" => write!(f, "FROM {}", self.args),
            "license" | "template" | "system" | "adapter" | "renderer" | "parser" | "requires"
            | "draft" => write!(f, "{} {}", self.name.to_uppercase(), quote(&self.args)),
            "message" => {
                let (role, text) = self.args.split_once(": ").unwrap_or((&self.args, ""));
                write!(f, "MESSAGE {role} {}", quote(text))
            }
            name => write!(f, "PARAMETER {name} {}", quote(&self.args)),
        }
    }
}

impl fmt::Display for Modelfile {
    /// Ollama's `Modelfile.String`: every command on its own line, each ending in `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for command in &self.commands {
            writeln!(f, "{command}")?;
        }
        Ok(())
    }
}

/// Parses a Modelfile held as text. A leading byte-order mark is skipped.
pub fn parse(input: &str) -> Result<Modelfile, ModelfileError> {
    parse_text(input.strip_prefix('\u{feff}').unwrap_or(input))
}

/// Parses a Modelfile as read from disk: UTF-8, or UTF-16 (little or big endian) when it starts
/// with the matching byte-order mark, as Ollama's `unicode.BOMOverride` decoder. Undecodable
/// bytes become U+FFFD rather than an error, as they do in Go.
pub fn parse_bytes(input: &[u8]) -> Result<Modelfile, ModelfileError> {
    let text = if let Some(rest) = input.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(rest).into_owned()
    } else if let Some(rest) = input.strip_prefix(&[0xFF, 0xFE]) {
        decode_utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = input.strip_prefix(&[0xFE, 0xFF]) {
        decode_utf16(rest, u16::from_be_bytes)
    } else {
        String::from_utf8_lossy(input).into_owned()
    };
    parse_text(&text)
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let chunks = bytes.chunks_exact(2);
    let odd_byte = !chunks.remainder().is_empty();
    let units = chunks.map(|pair| unit([pair[0], pair[1]]));
    let mut text: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if odd_byte {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// Where the state machine is, as Ollama's `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between instructions.
    Nil,
    /// Reading the instruction keyword.
    Name,
    /// Reading the value, up to an unquoted end of line.
    Value,
    /// Reading a `PARAMETER` name.
    Parameter,
    /// Reading a `MESSAGE` role.
    Message,
    /// Skipping a `#` line.
    Comment,
}

/// Why a single character was rejected, before the line number is attached.
enum StepError {
    InvalidCommand,
    UnexpectedEof,
}

/// Ollama's `parseRuneForState`: the next state for one character, and the character to keep
/// (`None` where Go returns rune 0, which is never written).
fn step(c: char, state: State) -> Result<(State, Option<char>), StepError> {
    match state {
        State::Nil => Ok(match c {
            '#' => (State::Comment, None),
            c if is_space(c) || is_newline(c) => (State::Nil, None),
            c => (State::Name, Some(c)),
        }),
        State::Name => match c {
            c if c.is_ascii_alphabetic() => Ok((State::Name, Some(c))),
            c if is_space(c) => Ok((State::Value, None)),
            _ => Err(StepError::InvalidCommand),
        },
        State::Value => Ok(if is_newline(c) || is_space(c) {
            (State::Nil, Some(c))
        } else {
            (State::Value, Some(c))
        }),
        State::Parameter => match c {
            c if c.is_ascii_alphanumeric() || c == '_' => Ok((State::Parameter, Some(c))),
            c if is_space(c) => Ok((State::Value, None)),
            _ => Err(StepError::UnexpectedEof),
        },
        State::Message => match c {
            c if c.is_ascii_alphabetic() => Ok((State::Message, Some(c))),
            c if is_space(c) => Ok((State::Value, None)),
            _ => Err(StepError::UnexpectedEof),
        },
        State::Comment => Ok(if is_newline(c) {
            (State::Nil, None)
        } else {
            (State::Comment, None)
        }),
    }
}

/// The parser proper, on already decoded text.
fn parse_text(input: &str) -> Result<Modelfile, ModelfileError> {
    let mut commands = Vec::new();
    let mut state = State::Nil;
    // Go counts `\r` and `\n` each as a line, so CRLF files report doubled line numbers.
    let mut line = 1usize;
    let mut buffer = String::new();
    let mut name = String::new();
    let mut role = String::new();

    for c in input.chars() {
        if is_newline(c) {
            line += 1;
        }

        let (mut next, kept) = match step(c, state) {
            Ok(transition) => transition,
            Err(StepError::InvalidCommand) => return Err(ModelfileError::InvalidCommand { line }),
            Err(StepError::UnexpectedEof) => {
                return Err(ModelfileError::UnexpectedEofAfter(buffer));
            }
        };

        if next != state {
            match state {
                State::Name => {
                    if !is_valid_command(&buffer) {
                        return Err(ModelfileError::InvalidCommand { line });
                    }
                    let keyword = buffer.to_ascii_lowercase();
                    match keyword.as_str() {
                        "from" => name = "model".to_owned(),
                        // The parameter's own name, read next, becomes the command name.
                        "parameter" => next = State::Parameter,
                        "message" => {
                            next = State::Message;
                            name = keyword;
                        }
                        _ => name = keyword,
                    }
                }
                State::Parameter => name.clone_from(&buffer),
                State::Message => {
                    if !is_valid_message_role(&buffer) {
                        return Err(ModelfileError::InvalidMessageRole { line });
                    }
                    role.clone_from(&buffer);
                }
                State::Comment | State::Nil => {}
                State::Value => {
                    // A space never ends a value and neither does a newline inside open quotes:
                    // keep the character and stay in the value.
                    let unquoted = unquote(buffer.trim());
                    match unquoted {
                        Some(value) if !kept.is_some_and(is_space) => {
                            let args = if role.is_empty() {
                                value.to_owned()
                            } else {
                                format!("{}: {value}", std::mem::take(&mut role))
                            };
                            commands.push(Command {
                                name: name.clone(),
                                args,
                            });
                        }
                        _ => {
                            if let Some(c) = kept {
                                buffer.push(c);
                            }
                            continue;
                        }
                    }
                }
            }
            buffer.clear();
            state = next;
        }

        if let Some(c) = kept.filter(|c| is_go_printable(*c)) {
            buffer.push(c);
        }
    }

    match state {
        State::Comment | State::Nil => {}
        State::Value => {
            let value = unquote(buffer.trim()).ok_or(ModelfileError::UnexpectedEof)?;
            let args = if role.is_empty() {
                value.to_owned()
            } else {
                format!("{role}: {value}")
            };
            commands.push(Command { name, args });
        }
        State::Name | State::Parameter | State::Message => {
            return Err(ModelfileError::UnexpectedEof);
        }
    }

    if !commands.iter().any(|c| c.name == "model") {
        return Err(ModelfileError::MissingFrom);
    }

    // Ollama checks these in CreateRequest, after the FROM check; same order here.
    for command in commands.iter().filter(|c| c.name == "requires") {
        normalize_requires(&command.args)?;
    }
    let mut warnings = Vec::new();
    commands.retain(|command| {
        if is_deprecated_parameter(&command.name) {
            warnings.push(format!("warning: parameter {} is deprecated", command.name));
            false
        } else {
            true
        }
    });

    Ok(Modelfile { commands, warnings })
}

/// Ollama's `unquote`: strips one pair of `"""` or `"`; `None` for an opening quote that is not
/// closed. Single quotes mean nothing.
fn unquote(s: &str) -> Option<&str> {
    if s.starts_with("\"\"\"") {
        if s.len() >= 6 && s.ends_with("\"\"\"") {
            return s.get(3..s.len() - 3);
        }
        return None;
    }
    if s.starts_with('"') {
        if s.len() >= 2 && s.ends_with('"') {
            return s.get(1..s.len() - 1);
        }
        return None;
    }
    Some(s)
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

fn is_valid_message_role(role: &str) -> bool {
    matches!(role, "system" | "user" | "assistant")
}

fn is_valid_command(keyword: &str) -> bool {
    matches!(
        keyword.to_ascii_lowercase().as_str(),
        "from"
            | "license"
            | "template"
            | "system"
            | "adapter"
            | "draft"
            | "renderer"
            | "parser"
            | "parameter"
            | "message"
            | "requires"
    )
}

/// Go's `strconv.IsPrint`, which decides what the parser keeps: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Other spaces, controls, format characters (such as
/// the zero-width joiner) and private-use characters are silently dropped from values, as in
/// Ollama. Without Unicode category tables, unassigned code points other than noncharacters
/// count as printable here (Go drops them).
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = u32::from(c);
    let format_or_private = matches!(
        code,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF
            | 0xF0000..=0xFFFFD
            | 0x100000..=0x10FFFD
            | 0xFDD0..=0xFDEF
    );
    let noncharacter = code & 0xFFFE == 0xFFFE;
    !format_or_private && !noncharacter
}

/// Checks a `REQUIRES` version as Ollama does (`golang.org/x/mod/semver.IsValid` after adding a
/// `v` when missing) and returns it without the `v`, as stored in the model config.
/// Shorthands such as `0.14` are valid, as in Go.
pub fn normalize_requires(version: &str) -> Result<String, ModelfileError> {
    let prefixed = if version.starts_with('v') {
        version.to_owned()
    } else {
        format!("v{version}")
    };
    if !is_valid_go_semver(&prefixed) {
        return Err(ModelfileError::InvalidRequires);
    }
    Ok(prefixed.strip_prefix('v').unwrap_or(&prefixed).to_owned())
}

/// `golang.org/x/mod/semver.IsValid`: `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`, numbers
/// without leading zeros, pre-release and build only after a full version.
fn is_valid_go_semver(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let Some(rest) = take_semver_number(rest) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('.').and_then(take_semver_number) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(mut rest) = rest.strip_prefix('.').and_then(take_semver_number) else {
        return false;
    };
    if let Some(after_dash) = rest.strip_prefix('-') {
        let (prerelease, after) =
            after_dash.split_at(after_dash.find('+').unwrap_or(after_dash.len()));
        let valid = prerelease
            .split('.')
            .all(|ident| is_semver_identifier(ident) && !is_numeric_with_leading_zero(ident));
        if !valid {
            return false;
        }
        rest = after;
    }
    if let Some(build) = rest.strip_prefix('+') {
        return build.split('.').all(is_semver_identifier);
    }
    rest.is_empty()
}

/// A decimal number without leading zeros at the start of `s`; the text after it.
fn take_semver_number(s: &str) -> Option<&str> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    s.get(digits..)
}

fn is_semver_identifier(ident: &str) -> bool {
    !ident.is_empty()
        && ident
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_numeric_with_leading_zero(ident: &str) -> bool {
    ident.len() > 1 && ident.starts_with('0') && ident.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn command(name: &str, args: &str) -> Command {
        Command {
            name: name.to_owned(),
            args: args.to_owned(),
        }
    }

    fn commands(input: &str) -> Vec<Command> {
        match parse(input) {
            Ok(modelfile) => modelfile.commands,
            Err(error) => panic!("{input:?} failed to parse: {error}"),
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    const LLAMA3_TEMPLATE: &str = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";

    #[test]
    fn parses_every_instruction_of_a_typical_file() {
        let input = format!(
            "\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE \"\"\"{LLAMA3_TEMPLATE}\"\"\"    \n"
        );
        assert_eq!(
            commands(&input),
            vec![
                command("model", "model1"),
                command("adapter", "adapter1"),
                command("license", "MIT"),
                command("param1", "value1"),
                command("param2", "value2"),
                command("template", LLAMA3_TEMPLATE),
            ]
        );
    }

    #[test]
    fn trims_unquoted_values_and_keeps_spaces_inside_quotes() {
        let input = format!(
            "\nFROM \"     model 1\"\nADAPTER      adapter3\nLICENSE \"MIT       \"\nPARAMETER param1        value1\nPARAMETER param2    value2\nTEMPLATE \"\"\"   {LLAMA3_TEMPLATE}   \"\"\"    \n"
        );
        assert_eq!(
            commands(&input),
            vec![
                command("model", "     model 1"),
                command("adapter", "adapter3"),
                command("license", "MIT       "),
                command("param1", "value1"),
                command("param2", "value2"),
                command("template", &format!("   {LLAMA3_TEMPLATE}   ")),
            ]
        );
    }

    #[test]
    fn parses_from_lines_and_parameter_order_as_ollama_does() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("FROM \"FOO  BAR  \"", &[("model", "FOO  BAR  ")]),
            (
                "FROM \"FOO BAR\"\nPARAMETER param1 value1",
                &[("model", "FOO BAR"), ("param1", "value1")],
            ),
            ("FROM     FOOO BAR    ", &[("model", "FOOO BAR")]),
            ("FROM /what/is/the path ", &[("model", "/what/is/the path")]),
            ("FROM foo", &[("model", "foo")]),
            ("FROM /path/to/model", &[("model", "/path/to/model")]),
            (
                "FROM /path/to/model/fp16.bin",
                &[("model", "/path/to/model/fp16.bin")],
            ),
            ("FROM llama3:latest", &[("model", "llama3:latest")]),
            (
                "FROM llama3:7b-instruct-q4_K_M",
                &[("model", "llama3:7b-instruct-q4_K_M")],
            ),
            (
                "PARAMETER param1 value1\nFROM foo",
                &[("param1", "value1"), ("model", "foo")],
            ),
            (
                "PARAMETER what the \nFROM lemons make lemonade ",
                &[("what", "the"), ("model", "lemons make lemonade")],
            ),
            ("FROM a\nFROM b", &[("model", "a"), ("model", "b")]),
            ("FROM\tfoo\t", &[("model", "foo")]),
        ];
        for (input, expected) in cases {
            let expected: Vec<Command> = expected.iter().map(|(n, a)| command(n, a)).collect();
            assert_eq!(commands(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_input_without_a_from_line() {
        for input in [
            "",
            "PARAMETER param1 value1",
            "# only a comment\n",
            "SYSTEM hi\n",
        ] {
            assert_eq!(
                parse(input),
                Err(ModelfileError::MissingFrom),
                "input {input:?}"
            );
        }
        assert_eq!(ModelfileError::MissingFrom.to_string(), "no FROM line");
    }

    #[test]
    fn reports_a_parameter_without_value_as_unexpected_eof() {
        let error = parse("\nFROM foo\nPARAMETER param1\n");
        assert_eq!(
            error,
            Err(ModelfileError::UnexpectedEofAfter("param1".to_owned()))
        );
        assert_eq!(
            error.map(|_| ()).unwrap_err().to_string(),
            "unexpected EOF: param1"
        );
        assert_eq!(
            parse("FROM foo\nPARAMETER param1"),
            Err(ModelfileError::UnexpectedEof)
        );
    }

    #[test]
    fn reports_an_unknown_instruction_with_its_line_number() {
        let error = parse("\nFROM foo\nBADCOMMAND param1 value1\n");
        assert_eq!(error, Err(ModelfileError::InvalidCommand { line: 3 }));
        assert_eq!(
            ModelfileError::InvalidCommand { line: 3 }.to_string(),
            "(line 3): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\""
        );
    }

    #[test]
    fn rejects_a_keyword_followed_by_a_non_letter() {
        // The newline is counted before the check, so the error names the next line.
        assert_eq!(
            parse("FROM\n"),
            Err(ModelfileError::InvalidCommand { line: 2 })
        );
        assert_eq!(
            parse("FROM: foo"),
            Err(ModelfileError::InvalidCommand { line: 1 })
        );
        assert_eq!(
            parse("FROM foo\n1FROM x"),
            Err(ModelfileError::InvalidCommand { line: 2 })
        );
    }

    #[test]
    fn reports_a_keyword_cut_by_the_end_of_input_as_unexpected_eof() {
        assert_eq!(
            parse("FROM foo\nSYSTEM"),
            Err(ModelfileError::UnexpectedEof)
        );
    }

    #[test]
    fn counts_carriage_returns_as_lines_as_ollama_does() {
        assert_eq!(
            parse("FROM foo\r\nBAD x\r\n"),
            Err(ModelfileError::InvalidCommand { line: 3 })
        );
    }

    #[test]
    fn parses_crlf_files() {
        assert_eq!(
            commands("FROM foo\r\nSYSTEM hi there\r\n"),
            vec![command("model", "foo"), command("system", "hi there")]
        );
    }

    #[test]
    fn parses_renderer_parser_draft_and_requires() {
        assert_eq!(
            commands("\nFROM foo\nRENDERER renderer1\nPARSER parser1\nDRAFT ./assistant\nREQUIRES 0.14.0\n"),
            vec![
                command("model", "foo"),
                command("renderer", "renderer1"),
                command("parser", "parser1"),
                command("draft", "./assistant"),
                command("requires", "0.14.0"),
            ]
        );
    }

    #[test]
    fn parses_messages_with_each_role() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\n",
                &[("model", "foo"), ("message", "system: You are a file parser. Always parse things.")],
            ),
            (
                "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.",
                &[("model", "foo"), ("message", "system: You are a file parser. Always parse things.")],
            ),
            (
                "\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
                &[
                    ("model", "foo"),
                    ("message", "system: You are a file parser. Always parse things."),
                    ("message", "user: Hey there!"),
                    ("message", "assistant: Hello, I want to parse all the things!"),
                ],
            ),
            (
                "\nFROM foo\nMESSAGE system \"\"\"\nYou are a multiline file parser. Always parse things.\n\"\"\"\n\t\t\t",
                &[
                    ("model", "foo"),
                    ("message", "system: \nYou are a multiline file parser. Always parse things.\n"),
                ],
            ),
        ];
        for (input, expected) in cases {
            let expected: Vec<Command> = expected.iter().map(|(n, a)| command(n, a)).collect();
            assert_eq!(commands(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_an_unknown_message_role_with_its_line_number() {
        assert_eq!(
            parse("\nFROM foo\nMESSAGE badguy I'm a bad guy!\n"),
            Err(ModelfileError::InvalidMessageRole { line: 3 })
        );
        // Roles are case-sensitive.
        assert_eq!(
            parse("FROM foo\nMESSAGE User hi"),
            Err(ModelfileError::InvalidMessageRole { line: 2 })
        );
        assert_eq!(
            ModelfileError::InvalidMessageRole { line: 3 }.to_string(),
            "(line 3): message role must be one of \"system\", \"user\", or \"assistant\""
        );
    }

    #[test]
    fn reports_a_message_without_text_as_unexpected_eof() {
        assert_eq!(
            parse("\nFROM foo\nMESSAGE system\n"),
            Err(ModelfileError::UnexpectedEofAfter("system".to_owned()))
        );
        assert_eq!(
            parse("\nFROM foo\nMESSAGE system"),
            Err(ModelfileError::UnexpectedEof)
        );
    }

    #[test]
    fn strips_single_and_triple_quotes() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "SYSTEM \"\"\"\nThis is a\nmultiline system.\n\"\"\"\n\t\t\t",
                "system",
                "\nThis is a\nmultiline system.\n",
            ),
            (
                "SYSTEM \"\"\"\nThis is a\nmultiline system.\"\"\"\n\t\t\t",
                "system",
                "\nThis is a\nmultiline system.",
            ),
            (
                "SYSTEM \"\"\"This is a\nmultiline system.\"\"\"\n\t\t\t",
                "system",
                "This is a\nmultiline system.",
            ),
            (
                "SYSTEM \"\"\"This is a multiline system.\"\"\"\n\t\t\t",
                "system",
                "This is a multiline system.",
            ),
            (
                "SYSTEM \"\"\"\nThis is a multiline system with \"quotes\".\n\"\"\"\n",
                "system",
                "\nThis is a multiline system with \"quotes\".\n",
            ),
            ("SYSTEM \"\"\"\"\"\"\n", "system", ""),
            ("SYSTEM \"\"\n", "system", ""),
            ("SYSTEM \"'\"\n", "system", "'"),
            (
                "SYSTEM \"\"\"''\"'\"\"'\"\"'\"'''''\"\"'\"\"'\"\"\"\n",
                "system",
                "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'",
            ),
            (
                "TEMPLATE \"\"\"\n{{ .Prompt }}\n\"\"\"",
                "template",
                "\n{{ .Prompt }}\n",
            ),
            ("SYSTEM \"a\nb\"\n", "system", "a\nb"),
            (
                "SYSTEM 'single quotes stay'\n",
                "system",
                "'single quotes stay'",
            ),
            ("SYSTEM a \"b\"\n", "system", "a \"b\""),
        ];
        for (body, name, args) in cases {
            let input = format!("\nFROM foo\n{body}");
            assert_eq!(
                commands(&input),
                vec![command("model", "foo"), command(name, args)],
                "input {input:?}"
            );
        }
    }

    #[test]
    fn reports_an_unterminated_quote_as_unexpected_eof() {
        for body in [
            "SYSTEM \"\"\"This is a multiline system.\"\"\n\t\t\t",
            "SYSTEM \"\n\t\t\t",
            "SYSTEM \"\"\"\"\n",
            "SYSTEM \"a\" b\n",
        ] {
            let input = format!("\nFROM foo\n{body}");
            assert_eq!(
                parse(&input),
                Err(ModelfileError::UnexpectedEof),
                "input {input:?}"
            );
        }
        assert_eq!(ModelfileError::UnexpectedEof.to_string(), "unexpected EOF");
    }

    #[test]
    fn parses_parameter_lines_like_ollama() {
        let cases: &[(&str, &str, &str)] = &[
            ("numa true", "numa", "true"),
            ("num_ctx 1", "num_ctx", "1"),
            ("num_batch 1", "num_batch", "1"),
            ("num_gqa 1", "num_gqa", "1"),
            ("num_gpu 1", "num_gpu", "1"),
            ("main_gpu 1", "main_gpu", "1"),
            ("use_mmap true", "use_mmap", "true"),
            ("num_thread 1", "num_thread", "1"),
            ("num_keep 1", "num_keep", "1"),
            ("seed 1", "seed", "1"),
            ("num_predict 1", "num_predict", "1"),
            ("top_k 1", "top_k", "1"),
            ("top_p 1.0", "top_p", "1.0"),
            ("min_p 0.05", "min_p", "0.05"),
            ("typical_p 1.0", "typical_p", "1.0"),
            ("repeat_last_n 1", "repeat_last_n", "1"),
            ("temperature 1.0", "temperature", "1.0"),
            ("repeat_penalty 1.0", "repeat_penalty", "1.0"),
            ("presence_penalty 1.0", "presence_penalty", "1.0"),
            ("frequency_penalty 1.0", "frequency_penalty", "1.0"),
            ("stop ### User:", "stop", "### User:"),
            ("stop ### User: ", "stop", "### User:"),
            ("stop \"### User:\"", "stop", "### User:"),
            ("stop \"### User: \"", "stop", "### User: "),
            ("stop \"\"\"### User:\"\"\"", "stop", "### User:"),
            ("stop \"\"\"### User:\n\"\"\"", "stop", "### User:\n"),
            ("stop <|endoftext|>", "stop", "<|endoftext|>"),
            ("stop <|eot_id|>", "stop", "<|eot_id|>"),
            ("stop </s>", "stop", "</s>"),
        ];
        for (line, name, value) in cases {
            let input = format!("FROM foo\nPARAMETER {line}\n");
            assert_eq!(
                commands(&input),
                vec![command("model", "foo"), command(name, value)],
                "input {input:?}"
            );
        }
    }

    #[test]
    fn drops_deprecated_parameters_with_ollamas_warning() {
        let modelfile = parse(
            "FROM foo\nPARAMETER penalize_newline true\nPARAMETER mirostat 2\nPARAMETER top_k 1\n",
        );
        assert_eq!(
            modelfile,
            Ok(Modelfile {
                commands: vec![command("model", "foo"), command("top_k", "1")],
                warnings: strings(&[
                    "warning: parameter penalize_newline is deprecated",
                    "warning: parameter mirostat is deprecated",
                ]),
            })
        );
    }

    #[test]
    fn rejects_parameter_names_with_punctuation() {
        assert_eq!(
            parse("FROM foo\nPARAMETER top-k 1\n"),
            Err(ModelfileError::UnexpectedEofAfter("top".to_owned()))
        );
    }

    #[test]
    fn keeps_the_quirk_of_a_double_space_after_parameter() {
        // Ollama reads the empty text before the second space as the parameter name.
        assert_eq!(
            commands("FROM foo\nPARAMETER  top_k 1"),
            vec![command("model", "foo"), command("", "top_k 1")]
        );
    }

    #[test]
    fn skips_comment_lines_but_keeps_hashes_inside_values() {
        assert_eq!(
            commands("\n# comment\nFROM foo\n\t"),
            vec![command("model", "foo")]
        );
        assert_eq!(
            commands("  # indented comment\nFROM foo # not a comment\n#FROM bar\n"),
            vec![command("model", "foo # not a comment")]
        );
    }

    #[test]
    fn reads_keywords_in_any_case() {
        assert_eq!(
            commands("from foo\nParameter temperature 0.5\nsYsTeM hi\nmessage user hello\n"),
            vec![
                command("model", "foo"),
                command("temperature", "0.5"),
                command("system", "hi"),
                command("message", "user: hello"),
            ]
        );
    }

    #[test]
    fn keeps_parameter_names_case_sensitive() {
        assert_eq!(
            commands("FROM foo\nPARAMETER Temperature 1\n"),
            vec![command("model", "foo"), command("Temperature", "1")]
        );
    }

    #[test]
    fn validates_requires_as_a_go_semver() {
        for valid in [
            "0.14.0",
            "v0.14.0",
            "1",
            "1.2",
            "1.2.3-rc.1",
            "1.2.3-rc.1+build.5",
            "1.2.3+001",
        ] {
            let input = format!("FROM foo\nREQUIRES {valid}\n");
            assert!(parse(&input).is_ok(), "{valid} should be accepted");
        }
        for invalid in [
            "latest",
            "01.2.3",
            "1.2.3-01",
            "1.2-rc1",
            "1.2.3.4",
            "vv1.0.0",
            "V1.0.0",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
        ] {
            let input = format!("FROM foo\nREQUIRES {invalid}\n");
            assert_eq!(
                parse(&input),
                Err(ModelfileError::InvalidRequires),
                "{invalid}"
            );
        }
        assert_eq!(
            ModelfileError::InvalidRequires.to_string(),
            "requires must be a valid semver (e.g. 0.14.0)"
        );
    }

    #[test]
    fn checks_from_before_requires() {
        assert_eq!(parse("REQUIRES nope\n"), Err(ModelfileError::MissingFrom));
    }

    #[test]
    fn normalizes_requires_without_the_v() {
        assert_eq!(normalize_requires("v0.14.0"), Ok("0.14.0".to_owned()));
        assert_eq!(normalize_requires("0.14"), Ok("0.14".to_owned()));
        assert_eq!(
            normalize_requires("x"),
            Err(ModelfileError::InvalidRequires)
        );
    }

    #[test]
    fn strips_a_utf8_byte_order_mark() {
        assert_eq!(
            commands("\u{feff}FROM foo\n"),
            vec![command("model", "foo")]
        );
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(b"FROM foo\n");
        assert_eq!(
            parse_bytes(&bytes).map(|m| m.commands),
            Ok(vec![command("model", "foo")])
        );
    }

    fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
        let mut bytes = if little_endian {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for unit in text.encode_utf16() {
            let pair = if little_endian {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            };
            bytes.extend_from_slice(&pair);
        }
        bytes
    }

    #[test]
    fn decodes_utf16_files_with_a_byte_order_mark() {
        let data =
            "FROM bob\nPARAMETER param1 1\nPARAMETER param2 4096\nSYSTEM You are a utf16 file.\n";
        let expected = vec![
            command("model", "bob"),
            command("param1", "1"),
            command("param2", "4096"),
            command("system", "You are a utf16 file."),
        ];
        for little_endian in [true, false] {
            assert_eq!(
                parse_bytes(&utf16(data, little_endian)).map(|m| m.commands),
                Ok(expected.clone()),
                "little endian: {little_endian}"
            );
        }
    }

    #[test]
    fn keeps_multibyte_text_in_every_encoding() {
        let input = "FROM test\n\tSYSTEM 你好👋";
        let expected = vec![command("model", "test"), command("system", "你好👋")];
        assert_eq!(
            parse_bytes(input.as_bytes()).map(|m| m.commands),
            Ok(expected.clone())
        );
        assert_eq!(
            parse_bytes(&utf16(input, true)).map(|m| m.commands),
            Ok(expected.clone())
        );
        assert_eq!(
            parse_bytes(&utf16(input, false)).map(|m| m.commands),
            Ok(expected)
        );
    }

    #[test]
    fn replaces_undecodable_bytes_instead_of_failing() {
        let parsed = parse_bytes(b"FROM foo\nSYSTEM a\xFFb\n").map(|m| m.commands);
        assert_eq!(
            parsed,
            Ok(vec![
                command("model", "foo"),
                command("system", "a\u{FFFD}b")
            ])
        );
        // An odd trailing byte in UTF-16 becomes one more replacement character.
        let mut bytes = utf16("FROM foo", true);
        bytes.push(0x41);
        assert_eq!(
            parse_bytes(&bytes).map(|m| m.commands),
            Ok(vec![command("model", "foo\u{FFFD}")])
        );
    }

    #[test]
    fn drops_characters_go_does_not_print() {
        // A zero-width joiner, a no-break space and a control character vanish as in Ollama.
        assert_eq!(
            commands("FROM foo\nSYSTEM a\u{200D}b\u{00A0}c\u{0007}d\n"),
            vec![command("model", "foo"), command("system", "abcd")]
        );
    }

    #[test]
    fn quotes_only_values_that_need_it() {
        let cases = [
            ("plain", "plain"),
            ("two words", "two words"),
            (" leading", "\" leading\""),
            ("trailing ", "\"trailing \""),
            ("multi\nline", "\"multi\nline\""),
            ("say \"hi\"\n", "\"\"\"say \"hi\"\n\"\"\""),
            ("say \"hi\"", "say \"hi\""),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn prints_each_command_as_ollama_does() {
        let cases = [
            (command("model", "  spaced "), "FROM   spaced "),
            (command("system", " hi"), "SYSTEM \" hi\""),
            (
                command("template", "{{ .Prompt }}"),
                "TEMPLATE {{ .Prompt }}",
            ),
            (command("draft", "./assistant"), "DRAFT ./assistant"),
            (command("requires", "0.14.0"), "REQUIRES 0.14.0"),
            (
                command("message", "user: Hey there!"),
                "MESSAGE user Hey there!",
            ),
            (
                command("message", "assistant: a\nb"),
                "MESSAGE assistant \"a\nb\"",
            ),
            (
                command("stop", "### User: "),
                "PARAMETER stop \"### User: \"",
            ),
            (command("temperature", "0.5"), "PARAMETER temperature 0.5"),
        ];
        for (command, expected) in cases {
            assert_eq!(command.to_string(), expected);
        }
    }

    #[test]
    fn prints_a_modelfile_one_line_per_command() {
        let modelfile = Modelfile {
            commands: vec![command("model", "foo"), command("system", "hi")],
            warnings: Vec::new(),
        };
        assert_eq!(modelfile.to_string(), "FROM foo\nSYSTEM hi\n");
        assert_eq!(Modelfile::default().to_string(), "");
    }

    #[test]
    fn parses_its_own_output_back_to_the_same_commands() {
        let cases = [
            "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
            "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
            "\nFROM foo\nADAPTER adapter1\nLICENSE \"\"\"\nVery long and boring legal text.\nBlah blah blah.\n\"Oh look, a quote!\"\n\"\"\"\n\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
            "\nFROM foo\nSYSTEM \"\"\n",
            "FROM foo\nPARAMETER stop \"### User: \"\nDRAFT d\nREQUIRES 0.14.0\nRENDERER r\nPARSER p\n",
        ];
        for input in cases {
            let first = parse(input);
            assert!(first.is_ok(), "input {input:?}");
            let printed = first.as_ref().map(ToString::to_string).unwrap_or_default();
            assert_eq!(parse(&printed), first, "printed {printed:?}");
        }
    }

    #[test]
    fn groups_parameters_by_name_in_first_seen_order() {
        let modelfile =
            parse("FROM foo\nPARAMETER stop a\nPARAMETER top_k 1\nSYSTEM s\nPARAMETER stop b\n");
        assert_eq!(
            modelfile.map(|m| m.parameters()),
            Ok(vec![
                ("stop".to_owned(), strings(&["a", "b"])),
                ("top_k".to_owned(), strings(&["1"])),
            ])
        );
    }

    #[test]
    fn types_every_known_parameter() {
        let params: Vec<(String, Vec<String>)> = [
            ("num_ctx", "2048"),
            ("num_batch", "512"),
            ("num_gpu", "-1"),
            ("main_gpu", "0"),
            ("use_mmap", "false"),
            ("num_thread", "8"),
            ("draft_num_predict", "4"),
            ("num_keep", "4"),
            ("seed", "+42"),
            ("num_predict", "-2"),
            ("top_k", "40"),
            ("top_p", "0.9"),
            ("min_p", "0.05"),
            ("typical_p", "1"),
            ("repeat_last_n", "64"),
            ("temperature", "0.8"),
            ("repeat_penalty", "1.1"),
            ("presence_penalty", "-0.5"),
            ("frequency_penalty", "1e-3"),
            ("stop", "<|eot_id|>"),
        ]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), vec![(*value).to_owned()]))
        .collect();
        let typed = format_parameters(&params).map(Value::Object);
        assert_eq!(
            typed,
            Ok(json!({
                "num_ctx": 2048, "num_batch": 512, "num_gpu": -1, "main_gpu": 0,
                "use_mmap": false, "num_thread": 8, "draft_num_predict": 4, "num_keep": 4,
                "seed": 42, "num_predict": -2, "top_k": 40, "top_p": 0.9, "min_p": 0.05,
                "typical_p": 1.0, "repeat_last_n": 64, "temperature": 0.8,
                "repeat_penalty": 1.1, "presence_penalty": -0.5, "frequency_penalty": 0.001,
                "stop": ["<|eot_id|>"],
            }))
        );
        assert!(params.iter().all(|(name, _)| is_known_parameter(name)));
    }

    #[test]
    fn prints_floats_with_the_digits_written() {
        let params = vec![("top_p".to_owned(), strings(&["0.9"]))];
        let typed = format_parameters(&params).map(|m| Value::Object(m).to_string());
        assert_eq!(typed, Ok("{\"top_p\":0.9}".to_owned()));
    }

    #[test]
    fn rounds_floats_to_float32_precision() {
        let params = vec![("temperature".to_owned(), strings(&["0.123456789"]))];
        let typed = format_parameters(&params).map(|m| Value::Object(m).to_string());
        assert_eq!(typed, Ok("{\"temperature\":0.12345679}".to_owned()));
    }

    #[test]
    fn accumulates_every_stop_value_into_an_array() {
        let params = vec![("stop".to_owned(), strings(&["a", "b", "c"]))];
        assert_eq!(
            format_parameters(&params).map(Value::Object),
            Ok(json!({"stop": ["a", "b", "c"]}))
        );
    }

    #[test]
    fn rejects_bad_parameter_values_with_ollamas_messages() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("top_k", &["1.5"], "invalid int value [1.5]"),
            ("num_ctx", &["0x10"], "invalid int value [0x10]"),
            (
                "seed",
                &["99999999999999999999"],
                "invalid int value [99999999999999999999]",
            ),
            ("num_predict", &[""], "invalid int value []"),
            ("top_k", &["x", "y"], "invalid int value [x y]"),
            ("main_gpu", &["one"], "invalid int value [one]"),
            ("temperature", &["hot"], "invalid float value [hot]"),
            ("temperature", &["1e39"], "invalid float value [1e39]"),
            ("temperature", &["1_0"], "invalid float value [1_0]"),
            ("temperature", &["+nan"], "invalid float value [+nan]"),
            ("temperature", &["0x1"], "invalid float value [0x1]"),
            ("use_mmap", &["yes"], "invalid bool value [yes]"),
            ("numa", &["true"], "unknown parameter 'numa'"),
            ("mirostat", &["2"], "unknown parameter 'mirostat'"),
            ("temperature", &["NaN"], "json: unsupported value: NaN"),
            ("temperature", &["-inf"], "json: unsupported value: -Inf"),
            (
                "temperature",
                &["Infinity"],
                "json: unsupported value: +Inf",
            ),
            ("top_k", &[], "invalid int value []"),
        ];
        for (name, values, message) in cases {
            let params = vec![((*name).to_owned(), strings(values))];
            let error = format_parameters(&params).map(|_| ()).err();
            assert_eq!(
                error.map(|e| e.to_string()).as_deref(),
                Some(*message),
                "{name} {values:?}"
            );
        }
    }

    #[test]
    fn accepts_every_spelling_of_a_go_bool() {
        for (text, expected) in [
            ("1", true),
            ("t", true),
            ("TRUE", true),
            ("True", true),
            ("0", false),
            ("f", false),
            ("False", false),
        ] {
            let params = vec![("use_mmap".to_owned(), strings(&[text]))];
            assert_eq!(
                format_parameters(&params).map(Value::Object),
                Ok(json!({ "use_mmap": expected })),
                "{text}"
            );
        }
    }

    #[test]
    fn accepts_go_float_syntax() {
        let cases = [
            ("5.", 5.0),
            (".5", 0.5),
            ("+1E2", 100.0),
            ("0x1p-2", 0.25),
            ("0x_1.8p1", 3.0),
            ("1e-50", 0.0),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_go_float32(text), Some(expected), "{text}");
        }
        assert_eq!(parse_go_float32("0x0p9999"), Some(0.0));
        assert_eq!(parse_go_float32("0x1p9999"), None);
        assert_eq!(parse_go_float32("0x1p_2"), None);
        assert_eq!(parse_go_float32("0x1__0p1"), None);
        assert_eq!(parse_go_float32("0xp1"), None);
    }

    #[test]
    fn types_a_files_parameters_as_create_request_does() {
        let modelfile = parse(
            "FROM test\nPARAMETER temperature 0.5\nPARAMETER top_k 1\nPARAMETER stop a\nPARAMETER top_k 2\nPARAMETER stop b\nSYSTEM You are a bot.\n",
        );
        assert_eq!(
            modelfile
                .and_then(|m| m.typed_parameters())
                .map(Value::Object),
            Ok(json!({"temperature": 0.5, "top_k": 2, "stop": ["a", "b"]}))
        );
    }

    #[test]
    fn reports_the_first_bad_parameter_of_a_file() {
        let modelfile = parse("FROM test\nPARAMETER top_k x\nPARAMETER nope 1\n");
        assert_eq!(
            modelfile.and_then(|m| m.typed_parameters()),
            Err(ModelfileError::InvalidInt(strings(&["x"])))
        );
    }

    #[test]
    fn tells_parameters_from_instructions() {
        assert!(is_parameter("temperature"));
        assert!(is_parameter("anything_else"));
        assert!(!is_parameter("model"));
        assert!(!is_parameter("message"));
        assert!(is_known_parameter("draft_num_predict"));
        assert!(!is_known_parameter("numa"));
        assert!(is_deprecated_parameter("mirostat_eta"));
    }

    #[test]
    fn never_panics_on_awkward_input() {
        let inputs = [
            "\"",
            "\"\"\"",
            "FROM \"\"\"",
            "FROM \u{0}",
            "#",
            "\u{feff}",
            "\u{feff}\u{feff}FROM x",
            "FROM 👋\nPARAMETER 👋 1",
            "MESSAGE",
            "MESSAGE \u{200D}",
            "FROM x\n\r\n\r",
            "FROM \"\u{1F600}",
            "PARAMETER stop \"\"\"\"\"",
            "FROM x\nMESSAGE user \"\"\"a\"\"\"",
        ];
        for input in inputs {
            let _ = parse(input);
            let _ = parse_bytes(input.as_bytes());
            let _ = parse_bytes(&utf16(input, false));
        }
        for bytes in [
            &[0xFF][..],
            &[0xFE],
            &[0xFF, 0xFE, 0x00],
            &[0xFE, 0xFF, 0xD8, 0x00],
            &[0xC0, 0x80],
        ] {
            let _ = parse_bytes(bytes);
        }
    }
}
