//! Prompt rendering with Ollama model templates: Go `text/template`s, parsed and executed the
//! way Ollama's `template/template.go` does.
//!
//! [`Template::parse`] checks a template at create time (unknown functions, undefined
//! variables and unbalanced actions are errors, as in Go) and, like Ollama, appends
//! `{{ .Response }}` to templates that mention neither `.Messages` nor `.Response`.
//! [`Template::execute`] renders a prompt: a template that uses `.Messages` is rendered once
//! with all (collated) messages; an older one is rendered once per user turn with
//! `.System`/`.Prompt`/`.Response`, the last turn cut just after `.Response`; a request with
//! both a prompt and a suffix (fill-in-the-middle) renders `.Prompt`/`.Suffix` directly.
//!
//! The interpreter is our own (see `lex`, `parse`, `exec`, `value`): the Rust ports of
//! `text/template` cannot model Go's `String()` methods, which Ollama relies on to print
//! tool-call arguments and tool lists as JSON. Execution is bounded in output size, depth and
//! steps, so a hostile template fails with an error instead of hanging or crashing.

mod exec;
pub mod jinja;
mod lex;
mod parse;
mod value;

use std::rc::Rc;

use serde_json::Value as Json;

use self::parse::{Arg, Node, Pipe, Tree};
use self::value::{Field, Stringer, Struct, Value};

pub use self::exec::{MAX_DEPTH, MAX_OUTPUT, MAX_STEPS};

/// A template that failed to parse or to execute. The text reads like Go's
/// (`template: :1: unexpected EOF in if`), which Ollama passes on to clients.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Execute(String),
}

/// A parsed Ollama template.
#[derive(Clone, Debug)]
pub struct Template {
    tree: Tree,
    raw: String,
    vars: Vec<String>,
}

/// What a prompt is rendered from: Ollama's `template.Values`.
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct Values {
    /// A system prompt for callers without a system message (`/api/generate`'s `system`):
    /// when set it goes before `messages` as a `system` message, as Ollama's generate handler
    /// does.
    pub system: String,
    /// With a non-empty `suffix`: the fill-in-the-middle prefix, rendered as `.Prompt`. Ollama
    /// reads it nowhere else; as a convenience, a prompt without suffix and without messages
    /// is taken as one user message.
    pub prompt: String,
    pub suffix: String,
    pub messages: Vec<Message>,
    /// Tool definitions as the API receives them (`{"type":"function","function":{…}}`).
    pub tools: Vec<Json>,
    pub think: bool,
    /// The thinking level when `think` was given as a string (`"high"`).
    pub think_level: String,
    /// Whether the client set `think` at all; templates cannot tell a missing `think` apart
    /// from `false` otherwise.
    pub is_think_set: bool,
    /// Renders `.Messages` templates the legacy way (Ollama's `forceLegacy`, for tests).
    pub force_legacy: bool,
}

/// One chat message as a template sees it (`.Role`, `.Content`, …).
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    pub thinking: String,
    /// Tool calls as the API encodes them: `{"id"?, "function": {"index"?, "name", "arguments"}}`.
    pub tool_calls: Vec<Json>,
    pub tool_name: String,
    pub tool_call_id: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message {
            role: role.to_owned(),
            content: content.to_owned(),
            ..Message::default()
        }
    }
}

impl Template {
    /// Parses a template, rejecting what Ollama's `template.Parse` rejects.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut tree = parse::parse(text)
            .map_err(|e| TemplateError::Parse(format!("template: :{}: {}", e.line, e.message)))?;
        let vars = collect_vars(&tree).map_err(TemplateError::Parse)?;
        if !vars.iter().any(|v| v == "messages" || v == "response") {
            // Ollama appends `{{ .Response }}` so that legacy rendering has a place to cut.
            tree.root.push(Node::Action(parse::Pipe {
                line: 1,
                is_assign: false,
                decl: Vec::new(),
                cmds: vec![parse::Command {
                    args: vec![parse::Arg::Field(vec!["Response".to_owned()])],
                }],
            }));
        }
        let vars = collect_vars(&tree).map_err(TemplateError::Parse)?;
        Ok(Template {
            tree,
            raw: text.to_owned(),
            vars,
        })
    }

    /// The template's source text, as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Ollama's `Vars`: every field and variable name used, lowercased, sorted, deduplicated.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    pub fn uses_messages(&self) -> bool {
        self.has_var("messages")
    }

    /// Whether the template reads `.Tools` (Ollama's `tools` capability).
    pub fn uses_tools(&self) -> bool {
        self.has_var("tools")
    }

    /// Whether the template reads `.Suffix` (Ollama's `insert` capability).
    pub fn uses_suffix(&self) -> bool {
        self.has_var("suffix")
    }

    /// Whether the template reads `.Thinking`. Ollama's `thinking` capability is narrower: it
    /// needs the text tags around a `.Thinking` inside `range .Messages` (`thinking.InferTags`).
    pub fn uses_thinking(&self) -> bool {
        self.has_var("thinking")
    }

    /// The text around a message's `.Thinking` (Ollama's `thinking.InferTags`): inside a
    /// `range` over `.Messages`, the first and last text of the list that holds the
    /// `.Thinking`, trimmed; `<think>` and `</think>` in most templates. Both must be found for
    /// the model to think, and the parser splits its replies on them.
    pub fn thinking_tags(&self) -> Option<(String, String)> {
        let mut tags = (String::new(), String::new());
        infer_thinking_tags(&self.tree.root, false, &mut tags);
        (!tags.0.is_empty() && !tags.1.is_empty()).then_some(tags)
    }

    fn has_var(&self, name: &str) -> bool {
        self.vars.iter().any(|v| v == name)
    }

    /// Ollama's `Execute`: renders the prompt for a generation.
    pub fn execute(&self, values: &Values) -> Result<String, TemplateError> {
        let mut messages = values.messages.clone();
        if !values.system.is_empty() {
            messages.insert(0, Message::new("system", &values.system));
        }
        if messages.is_empty() && values.suffix.is_empty() && !values.prompt.is_empty() {
            messages.push(Message::new("user", &values.prompt));
        }
        let (system, messages) = collate(&messages);
        let think = [
            ("Think", Value::Bool(values.think)),
            ("ThinkLevel", Value::str(&values.think_level)),
            ("IsThinkSet", Value::Bool(values.is_think_set)),
        ];

        if !values.prompt.is_empty() && !values.suffix.is_empty() {
            let mut data = vec![
                ("Prompt", Value::str(&values.prompt)),
                ("Suffix", Value::str(&values.suffix)),
                ("Response", Value::str("")),
            ];
            data.extend(think.iter().cloned());
            return self.run(&self.tree.root, &data_map(data));
        }

        if !values.force_legacy && self.uses_messages() {
            let mut data = vec![
                ("System", Value::str(&system)),
                (
                    "Messages",
                    Value::list(
                        messages.iter().map(message_value).collect(),
                        "[]*template.templateMessage",
                    ),
                ),
                ("Tools", tools_value(&values.tools)),
                ("Response", Value::str("")),
            ];
            data.extend(think.iter().cloned());
            return self.run(&self.tree.root, &data_map(data));
        }

        // Legacy templates: one rendering per user turn, concatenated.
        let turn = |system: &str, prompt: &str, response: &str| {
            let mut data = vec![
                ("System", Value::str(system)),
                ("Prompt", Value::str(prompt)),
                ("Response", Value::str(response)),
            ];
            data.extend(think.iter().cloned());
            data_map(data)
        };
        let mut out = String::new();
        let (mut system, mut prompt, mut response) = (String::new(), String::new(), String::new());
        for message in &messages {
            let flush = match message.role.as_str() {
                "system" => !prompt.is_empty() || !response.is_empty(),
                "user" => !response.is_empty(),
                _ => false,
            };
            if flush {
                out.push_str(&self.run(&self.tree.root, &turn(&system, &prompt, &response))?);
                if out.len() > MAX_OUTPUT {
                    return Err(TemplateError::Execute(format!(
                        "template output exceeds {} MiB",
                        MAX_OUTPUT >> 20
                    )));
                }
                system.clear();
                prompt.clear();
                response.clear();
            }
            match message.role.as_str() {
                "system" => system.clone_from(&message.content),
                "user" => prompt.clone_from(&message.content),
                "assistant" => response.clone_from(&message.content),
                _ => {}
            }
        }
        let last = parse::cut_after_response(&self.tree.root);
        out.push_str(&self.run(&last, &turn(&system, &prompt, &response))?);
        if out.len() > MAX_OUTPUT {
            return Err(TemplateError::Execute(format!(
                "template output exceeds {} MiB",
                MAX_OUTPUT >> 20
            )));
        }
        Ok(out)
    }

    fn run(&self, root: &[Node], data: &Value) -> Result<String, TemplateError> {
        exec::execute(&self.tree, root, data).map_err(|(line, message)| {
            TemplateError::Execute(format!("template: :{line}: executing: {message}"))
        })
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Walks `list` in document order; each `.Thinking` inside a range over `.Messages` takes the
/// tags from the list it sits in (the last one found wins, as in Ollama, tag by tag).
fn infer_thinking_tags(list: &[Node], in_messages_range: bool, tags: &mut (String, String)) {
    let take_tags_of_this_list = |tags: &mut (String, String)| {
        if let Some(Node::Text(text)) = list.first() {
            tags.0 = text.trim().to_string();
        }
        if let Some(Node::Text(text)) = list.last() {
            tags.1 = text.trim().to_string();
        }
    };
    for node in list {
        match node {
            Node::Action(pipe)
            | Node::Template {
                pipe: Some(pipe), ..
            } => {
                if in_messages_range && pipe_reads_field(pipe, "Thinking") {
                    take_tags_of_this_list(tags);
                }
            }
            Node::If(branch) | Node::With(branch) => {
                if in_messages_range && pipe_reads_field(&branch.pipe, "Thinking") {
                    take_tags_of_this_list(tags);
                }
                infer_thinking_tags(&branch.list, in_messages_range, tags);
                if let Some(else_list) = &branch.else_list {
                    infer_thinking_tags(else_list, in_messages_range, tags);
                }
            }
            Node::Range(branch) => {
                // Inside it, this range is the nearest one.
                let over_messages = pipe_reads_field(&branch.pipe, "Messages");
                if over_messages && pipe_reads_field(&branch.pipe, "Thinking") {
                    take_tags_of_this_list(tags);
                }
                infer_thinking_tags(&branch.list, over_messages, tags);
                if let Some(else_list) = &branch.else_list {
                    infer_thinking_tags(else_list, over_messages, tags);
                }
            }
            Node::Text(_) | Node::Template { pipe: None, .. } | Node::Break | Node::Continue => {}
        }
    }
}

/// Whether a pipeline reads the field `.name` (`.name…` on the dot, not on a variable).
fn pipe_reads_field(pipe: &Pipe, name: &str) -> bool {
    pipe.cmds
        .iter()
        .flat_map(|cmd| &cmd.args)
        .any(|arg| match arg {
            Arg::Field(idents) => idents.first().is_some_and(|first| first == name),
            Arg::Pipe(inner) => pipe_reads_field(inner, name),
            _ => false,
        })
}

fn collect_vars(tree: &Tree) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    parse::identifiers(&tree.root, &mut names)?;
    let mut defines: Vec<_> = tree.defines.iter().collect();
    defines.sort_by(|a, b| a.0.cmp(b.0));
    for (_, list) in defines {
        parse::identifiers(list, &mut names)?;
    }
    let mut vars: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    vars.sort();
    vars.dedup();
    Ok(vars)
}

/// Ollama's `collate`: joins all system messages into the system prompt and merges runs of
/// messages with the same role (except `tool`) into one, separated by a blank line.
fn collate(messages: &[Message]) -> (String, Vec<Message>) {
    let mut system = Vec::new();
    let mut collated: Vec<Message> = Vec::new();
    for message in messages {
        if message.role == "system" {
            system.push(message.content.as_str());
        }
        match collated.last_mut() {
            Some(last) if last.role == message.role && message.role != "tool" => {
                last.content.push_str("\n\n");
                last.content.push_str(&message.content);
            }
            _ => collated.push(message.clone()),
        }
    }
    (system.join("\n\n"), collated)
}

/// The top-level `map[string]any` a template executes on.
fn data_map(entries: Vec<(&str, Value)>) -> Value {
    Value::sorted_map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        Stringer::None,
        "map[string]interface {}",
    )
}

fn json_str<'a>(json: &'a Json, key: &str) -> &'a str {
    json.get(key).and_then(Json::as_str).unwrap_or("")
}

/// A JSON field of type `any`: absent and null both read as nil.
fn json_any(json: &Json, key: &str) -> Value {
    json.get(key).map_or(Value::Nil, Value::from_json)
}

fn string_list(json: Option<&Json>, type_name: &'static str) -> Value {
    match json.and_then(Json::as_array) {
        Some(items) => Value::list(
            items
                .iter()
                .filter_map(Json::as_str)
                .map(Value::str)
                .collect(),
            type_name,
        ),
        None => Value::nil_list(type_name),
    }
}

/// Ollama's `templateMessage` (passed by pointer, so it prints as `&{…}`).
fn message_value(message: &Message) -> Value {
    let tool_calls = if message.tool_calls.is_empty() {
        Value::nil_list("[]template.templateToolCall")
    } else {
        Value::list(
            message.tool_calls.iter().map(tool_call_value).collect(),
            "[]template.templateToolCall",
        )
    };
    Value::Struct(Rc::new(Struct {
        type_name: "*template.templateMessage",
        pointer: true,
        prints_json: false,
        fields: vec![
            Field::new("Role", Value::str(&message.role)),
            Field::new("Content", Value::str(&message.content)),
            Field::new("Thinking", Value::str(&message.thinking)),
            Field::new("Images", Value::nil_list("[]api.ImageData")),
            Field::new("ToolCalls", tool_calls),
            Field::new("ToolName", Value::str(&message.tool_name)),
            Field::new("ToolCallID", Value::str(&message.tool_call_id)),
        ],
    }))
}

/// Ollama's `templateToolCall`: `Arguments` is a Go map that prints as JSON.
fn tool_call_value(call: &Json) -> Value {
    let function = call.get("function").unwrap_or(&Json::Null);
    let arguments = match function.get("arguments") {
        Some(Json::Object(object)) => Value::sorted_map(
            object
                .iter()
                .map(|(k, v)| (k.clone(), Value::from_json(v)))
                .collect(),
            Stringer::Json,
            "template.templateArgs",
        ),
        _ => Value::Map(Rc::new(value::Map {
            entries: Vec::new(),
            is_nil: true,
            stringer: Stringer::Json,
            type_name: "template.templateArgs",
        })),
    };
    let index = function.get("index").and_then(Json::as_i64).unwrap_or(0);
    Value::record(
        "template.templateToolCall",
        vec![
            Field::new("ID", Value::str(json_str(call, "id"))),
            Field::new(
                "Function",
                Value::record(
                    "template.templateToolCallFunction",
                    vec![
                        Field::new("Index", Value::Int(index)),
                        Field::new("Name", Value::str(json_str(function, "name"))),
                        Field::new("Arguments", arguments),
                    ],
                ),
            ),
        ],
    )
}

/// Ollama's `templateTools`: a list that prints as JSON.
fn tools_value(tools: &[Json]) -> Value {
    let items: Vec<Value> = tools.iter().map(tool_value).collect();
    Value::List(Rc::new(value::List {
        is_nil: items.is_empty(),
        items,
        stringer: Stringer::Json,
        type_name: "template.templateTools",
    }))
}

/// Ollama's `templateTool`, whose `String()` is its JSON.
fn tool_value(tool: &Json) -> Value {
    let function = tool.get("function").unwrap_or(&Json::Null);
    let parameters = function.get("parameters").unwrap_or(&Json::Null);
    let properties = match parameters.get("properties").and_then(Json::as_object) {
        Some(object) => Value::sorted_map(
            object
                .iter()
                .map(|(k, v)| (k.clone(), property_value(v, 0)))
                .collect(),
            Stringer::Json,
            "template.templateProperties",
        ),
        None => Value::Map(Rc::new(value::Map {
            entries: Vec::new(),
            is_nil: true,
            stringer: Stringer::Json,
            type_name: "template.templateProperties",
        })),
    };
    let tool = Value::record(
        "template.templateTool",
        vec![
            Field::tagged("Type", "type", false, Value::str(json_str(tool, "type"))),
            Field::tagged("Items", "items", true, json_any(tool, "items")),
            Field::tagged(
                "Function",
                "function",
                false,
                Value::record(
                    "template.templateToolFunction",
                    vec![
                        Field::tagged(
                            "Name",
                            "name",
                            false,
                            Value::str(json_str(function, "name")),
                        ),
                        Field::tagged(
                            "Description",
                            "description",
                            false,
                            Value::str(json_str(function, "description")),
                        ),
                        Field::tagged(
                            "Parameters",
                            "parameters",
                            false,
                            Value::record(
                                "template.templateToolFunctionParameters",
                                vec![
                                    Field::tagged(
                                        "Type",
                                        "type",
                                        false,
                                        Value::str(json_str(parameters, "type")),
                                    ),
                                    Field::tagged(
                                        "Defs",
                                        "$defs",
                                        true,
                                        json_any(parameters, "$defs"),
                                    ),
                                    Field::tagged(
                                        "Items",
                                        "items",
                                        true,
                                        json_any(parameters, "items"),
                                    ),
                                    Field::tagged(
                                        "Required",
                                        "required",
                                        true,
                                        string_list(parameters.get("required"), "[]string"),
                                    ),
                                    Field::tagged("Properties", "properties", false, properties),
                                ],
                            ),
                        ),
                    ],
                ),
            ),
        ],
    );
    // Same fields, plus Go's `String()`: `{{ . }}` on a tool prints its JSON.
    match tool {
        Value::Struct(record) => match Rc::try_unwrap(record) {
            Ok(record) => Value::Struct(Rc::new(Struct {
                prints_json: true,
                ..record
            })),
            Err(shared) => Value::Struct(shared),
        },
        other => other,
    }
}

/// Nested properties deeper than this are dropped; JSON from a request cannot be deeper than
/// serde_json's own recursion limit anyway, this just keeps the conversion obviously bounded.
const MAX_PROPERTY_DEPTH: usize = 64;

/// Ollama's `api.ToolProperty`, with its JSON tags and `PropertyType` printing.
fn property_value(json: &Json, depth: usize) -> Value {
    let property_type = match json.get("type") {
        Some(Json::String(s)) => Value::List(Rc::new(value::List {
            items: vec![Value::str(s)],
            is_nil: false,
            stringer: Stringer::PropertyType,
            type_name: "api.PropertyType",
        })),
        Some(Json::Array(items)) => Value::List(Rc::new(value::List {
            items: items
                .iter()
                .filter_map(Json::as_str)
                .map(Value::str)
                .collect(),
            is_nil: false,
            stringer: Stringer::PropertyType,
            type_name: "api.PropertyType",
        })),
        _ => Value::List(Rc::new(value::List {
            items: Vec::new(),
            is_nil: true,
            stringer: Stringer::PropertyType,
            type_name: "api.PropertyType",
        })),
    };
    let nested = depth < MAX_PROPERTY_DEPTH;
    let any_of = match json.get("anyOf").and_then(Json::as_array) {
        Some(items) if nested => Value::list(
            items.iter().map(|p| property_value(p, depth + 1)).collect(),
            "[]api.ToolProperty",
        ),
        _ => Value::nil_list("[]api.ToolProperty"),
    };
    let enumeration = match json.get("enum").and_then(Json::as_array) {
        Some(items) => Value::list(
            items.iter().map(Value::from_json).collect(),
            "[]interface {}",
        ),
        None => Value::nil_list("[]interface {}"),
    };
    let properties = match json.get("properties").and_then(Json::as_object) {
        // An ordered map in Ollama: keep the request's order rather than sorting.
        Some(object) if nested => Value::Map(Rc::new(value::Map {
            entries: object
                .iter()
                .map(|(k, v)| (k.clone(), property_value(v, depth + 1)))
                .collect(),
            is_nil: false,
            stringer: Stringer::Json,
            type_name: "*api.ToolPropertiesMap",
        })),
        _ => Value::Nil,
    };
    Value::record(
        "api.ToolProperty",
        vec![
            Field::tagged("AnyOf", "anyOf", true, any_of),
            Field::tagged("Type", "type", true, property_type),
            Field::tagged("Items", "items", true, json_any(json, "items")),
            Field::tagged(
                "Description",
                "description",
                true,
                Value::str(json_str(json, "description")),
            ),
            Field::tagged("Enum", "enum", true, enumeration),
            Field::tagged("Properties", "properties", true, properties),
            Field::tagged(
                "Required",
                "required",
                true,
                string_list(json.get("required"), "[]string"),
            ),
        ],
    )
}

#[cfg(test)]
mod tests;
