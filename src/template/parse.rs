//! The parser: turns tokens into the node tree of Go's `text/template/parse`, with the same
//! parse-time checks (functions and variables must be defined, `{{break}}` only inside
//! `{{range}}`, an `{{end}}` for every control) and a nesting limit so that no template can
//! exhaust the stack.

use std::collections::HashMap;

use super::lex::{lex, Keyword, Tok, Token};

/// Deeper nesting of controls and parentheses than this is rejected. Real templates nest a
/// handful of levels; the limit keeps both parsing and execution recursion bounded.
pub(crate) const MAX_PARSE_DEPTH: usize = 100;

/// The functions a template may call (Go's builtins plus Ollama's).
pub(crate) const FUNCTIONS: &[&str] = &[
    "and",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "json",
    "currentDate",
    "yesterdayDate",
    "toTypeScriptType",
];

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        line: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    pub line: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub(crate) enum Arg {
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B`: the variable name (with `$`) first.
    Variable(Vec<String>),
    /// `(pipeline).A.B`
    Chain(Box<Arg>, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Function(String),
    Pipe(Box<Pipe>),
}

impl Arg {
    /// How the argument reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Arg::Field(idents) => format!(".{}", idents.join(".")),
            Arg::Variable(idents) => idents.join("."),
            Arg::Chain(_, fields) => format!("(…).{}", fields.join(".")),
            Arg::Dot => ".".into(),
            Arg::Nil => "nil".into(),
            Arg::Bool(b) => b.to_string(),
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => f.to_string(),
            Arg::Str(s) => format!("{s:?}"),
            Arg::Function(name) => name.clone(),
            Arg::Pipe(_) => "(…)".into(),
        }
    }
}

/// A parse failure: the line and Go's wording.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub line: usize,
    pub message: String,
}

/// A parsed template: the root list and the `{{define}}`d templates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tree {
    pub root: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

pub(crate) fn parse(src: &str) -> std::result::Result<Tree, ParseError> {
    let tokens = lex(src).map_err(|e| ParseError {
        line: e.line,
        message: e.message,
    })?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
        depth: 0,
        defines: HashMap::new(),
    };
    let root = parser.top_level()?;
    Ok(Tree {
        root,
        defines: parser.defines,
    })
}

/// What ended a list: `{{end}}`, `{{else}}` (with what follows `else` still unread) or EOF.
enum ListEnd {
    End,
    Else,
    Eof,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defines: HashMap<String, Vec<Node>>,
}

type Result<T> = std::result::Result<T, ParseError>;

impl Parser {
    fn next(&mut self) -> Token {
        let token = self.tokens.get(self.pos).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            line: self.line(),
        });
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn backup(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.pos.min(self.tokens.len().saturating_sub(1)))
            .map_or(1, |t| t.line)
    }

    fn peek(&self) -> Tok {
        self.tokens
            .get(self.pos)
            .map_or(Tok::Eof, |t| t.tok.clone())
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.tok != Tok::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self) -> Tok {
        let start = self.pos;
        let token = self.next_non_space();
        self.pos = start;
        token.tok
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T> {
        let line = self
            .tokens
            .get(self.pos.saturating_sub(1))
            .map_or(1, |t| t.line);
        Err(ParseError {
            line,
            message: message.into(),
        })
    }

    fn unexpected<T>(&self, tok: &Tok, context: &str) -> Result<T> {
        match tok {
            Tok::Eof => self.error(format!("unexpected EOF in {context}")),
            other => self.error(format!("unexpected {} in {context}", other.describe())),
        }
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<()> {
        let token = self.next_non_space();
        if token.tok != Tok::RightDelim {
            return self.unexpected(&token.tok, context);
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.error(format!(
                "template nests deeper than {MAX_PARSE_DEPTH} levels"
            ));
        }
        Ok(())
    }

    fn top_level(&mut self) -> Result<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            let token = self.next();
            match token.tok {
                Tok::Eof => return Ok(root),
                Tok::LeftDelim if self.peek_non_space() == Tok::Keyword(Keyword::Define) => {
                    self.next_non_space();
                    self.define()?;
                }
                _ => {
                    self.backup();
                    match self.text_or_action()? {
                        Some(node) => root.push(node),
                        None => return self.error(self.stray_end_message()),
                    }
                }
            }
        }
    }

    fn stray_end_message(&self) -> String {
        // The token before the right delimiter says which keyword it was.
        let keyword = self.tokens[..self.pos]
            .iter()
            .rev()
            .find_map(|t| match t.tok {
                Tok::Keyword(Keyword::Else) => Some("else"),
                Tok::Keyword(Keyword::End) => Some("end"),
                _ => None,
            });
        format!("unexpected {{{{{}}}}}", keyword.unwrap_or("end"))
    }

    /// `{{define "name"}} … {{end}}`, the `define` already read.
    fn define(&mut self) -> Result<()> {
        let token = self.next_non_space();
        let Tok::Str(name) = token.tok else {
            return self.unexpected(&token.tok, "define clause");
        };
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        match end {
            ListEnd::End => {}
            ListEnd::Else => return self.error("unexpected {{else}} in define clause"),
            ListEnd::Eof => return self.error(format!("unexpected EOF in define clause {name:?}")),
        }
        self.add_define(name, list)
    }

    fn add_define(&mut self, name: String, list: Vec<Node>) -> Result<()> {
        let is_empty = |list: &[Node]| {
            list.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.defines.get(&name) {
            Some(existing) if !is_empty(existing) && !is_empty(&list) => self.error(format!(
                "template: multiple definition of template {name:?}"
            )),
            Some(_) if is_empty(&list) => Ok(()),
            _ => {
                self.defines.insert(name, list);
                Ok(())
            }
        }
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or EOF.
    fn item_list(&mut self) -> Result<(Vec<Node>, ListEnd)> {
        let mut list = Vec::new();
        loop {
            if self.peek() == Tok::Eof {
                return Ok((list, ListEnd::Eof));
            }
            let before = self.pos;
            match self.text_or_action()? {
                Some(node) => list.push(node),
                None => {
                    // An `{{end}}` or an `{{else`: tell which by the keyword after the delimiter.
                    let is_else = self.tokens[before..self.pos]
                        .iter()
                        .any(|t| t.tok == Tok::Keyword(Keyword::Else));
                    return Ok((list, if is_else { ListEnd::Else } else { ListEnd::End }));
                }
            }
        }
    }

    /// One node; `None` for an `{{end}}` (fully read) or an `{{else` (read up to the keyword).
    fn text_or_action(&mut self) -> Result<Option<Node>> {
        let token = self.next_non_space();
        match token.tok {
            Tok::Text(text) => Ok(Some(Node::Text(text))),
            Tok::LeftDelim => self.action(),
            other => self.unexpected(&other, "input"),
        }
    }

    fn action(&mut self) -> Result<Option<Node>> {
        let token = self.next_non_space();
        match token.tok {
            Tok::Keyword(Keyword::Block) => self.block().map(Some),
            Tok::Keyword(Keyword::Break) => self.break_or_continue(Keyword::Break).map(Some),
            Tok::Keyword(Keyword::Continue) => self.break_or_continue(Keyword::Continue).map(Some),
            Tok::Keyword(Keyword::Else) => Ok(None),
            Tok::Keyword(Keyword::End) => {
                self.expect_right_delim("end")?;
                Ok(None)
            }
            Tok::Keyword(Keyword::If) => self.control(Keyword::If).map(|b| Some(Node::If(b))),
            Tok::Keyword(Keyword::Range) => {
                self.control(Keyword::Range).map(|b| Some(Node::Range(b)))
            }
            Tok::Keyword(Keyword::With) => self.control(Keyword::With).map(|b| Some(Node::With(b))),
            Tok::Keyword(Keyword::Template) => self.template_call().map(Some),
            _ => {
                self.backup();
                let pipe = self.pipeline("command", false)?;
                Ok(Some(Node::Action(pipe)))
            }
        }
    }

    fn break_or_continue(&mut self, keyword: Keyword) -> Result<Node> {
        let token = self.next_non_space();
        if token.tok != Tok::RightDelim {
            return self.unexpected(&token.tok, &format!("{{{{{}}}}}", keyword.name()));
        }
        if self.range_depth == 0 {
            return self.error(format!("{{{{{}}}}} outside {{{{range}}}}", keyword.name()));
        }
        Ok(if keyword == Keyword::Break {
            Node::Break
        } else {
            Node::Continue
        })
    }

    /// `{{if}}`, `{{range}}` and `{{with}}` with their `{{else}}` and `{{else if}}` chains.
    fn control(&mut self, keyword: Keyword) -> Result<Branch> {
        self.enter()?;
        let mark = self.vars.len();
        let context = keyword.name();
        let pipe = self.pipeline(context, false)?;
        if keyword == Keyword::Range {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if keyword == Keyword::Range {
            self.range_depth -= 1;
        }
        let else_list = match end {
            ListEnd::End => None,
            ListEnd::Eof => return self.error(format!("unexpected EOF in {context}")),
            ListEnd::Else => {
                let next = self.peek_non_space();
                let chained = match (keyword, &next) {
                    (Keyword::If, Tok::Keyword(Keyword::If)) => Some(Keyword::If),
                    (Keyword::With, Tok::Keyword(Keyword::With)) => Some(Keyword::With),
                    _ => None,
                };
                if let Some(chained) = chained {
                    // `{{else if …}}` is `{{else}}{{if …}}…{{end}}{{end}}` sharing one `{{end}}`.
                    self.next_non_space();
                    let branch = self.control(chained)?;
                    Some(vec![if chained == Keyword::If {
                        Node::If(branch)
                    } else {
                        Node::With(branch)
                    }])
                } else {
                    self.expect_right_delim("else")?;
                    let (list, end) = self.item_list()?;
                    match end {
                        ListEnd::End => Some(list),
                        ListEnd::Else => {
                            return self
                                .error(format!("expected end; found {{{{else}}}} in {context}"))
                        }
                        ListEnd::Eof => return self.error(format!("unexpected EOF in {context}")),
                    }
                }
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, context: &str) -> Result<String> {
        let token = self.next_non_space();
        match token.tok {
            Tok::Str(name) => Ok(name),
            other => self.unexpected(&other, context),
        }
    }

    fn template_call(&mut self) -> Result<Node> {
        let line = self.line();
        let name = self.template_name("template clause")?;
        let pipe = if self.peek_non_space() == Tok::RightDelim {
            self.next_non_space();
            None
        } else {
            Some(self.pipeline("template clause", false)?)
        };
        Ok(Node::Template { line, name, pipe })
    }

    /// `{{block "name" pipeline}} … {{end}}`: defines the template and calls it.
    fn block(&mut self) -> Result<Node> {
        self.enter()?;
        let line = self.line();
        let name = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", false)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        if !matches!(end, ListEnd::End) {
            return self.error("unexpected EOF in block clause");
        }
        self.add_define(name.clone(), list)?;
        self.depth -= 1;
        Ok(Node::Template {
            line,
            name,
            pipe: Some(pipe),
        })
    }

    /// A pipeline up to `}}` (or `)` when `in_parens`), with an optional declaration.
    fn pipeline(&mut self, context: &str, in_parens: bool) -> Result<Pipe> {
        let line = self.line();
        let mut pipe = Pipe {
            line,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and in a range `$i, $v :=`.
        let start = self.pos;
        if let Tok::Variable(first) = self.peek_non_space() {
            self.next_non_space();
            let after = self.next_non_space();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = after.tok == Tok::Assign;
                    pipe.decl.push(first);
                }
                Tok::Comma if context == "range" => {
                    let Tok::Variable(second) = self.next_non_space().tok else {
                        return self.error("range can only initialize variables");
                    };
                    let operator = self.next_non_space();
                    if !matches!(operator.tok, Tok::Declare | Tok::Assign) {
                        return self.unexpected(&operator.tok, context);
                    }
                    pipe.is_assign = operator.tok == Tok::Assign;
                    pipe.decl.extend([first, second]);
                }
                Tok::Comma => return self.error(format!("too many declarations in {context}")),
                _ => self.pos = start,
            }
        }
        if pipe.is_assign {
            if let Some(name) = pipe.decl.iter().find(|name| !self.vars.contains(name)) {
                return self.error(format!("undefined variable {name:?}"));
            }
        } else {
            self.vars.extend(pipe.decl.iter().cloned());
        }
        loop {
            let token = self.next_non_space();
            match token.tok {
                Tok::RightDelim if !in_parens => break,
                Tok::RightParen if in_parens => break,
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    let command = self.command(in_parens)?;
                    pipe.cmds.push(command);
                }
                other => return self.unexpected(&other, context),
            }
        }
        if pipe.cmds.is_empty() {
            return self.error(format!("missing value for {context}"));
        }
        for (i, command) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                command.args.first(),
                Some(
                    Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Int(_) | Arg::Float(_) | Arg::Str(_)
                )
            ) {
                return self.error(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self, in_parens: bool) -> Result<Command> {
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => {
                    self.backup();
                    if (token.tok == Tok::RightParen) != in_parens {
                        if token.tok == Tok::RightParen {
                            return self.error("unexpected right paren");
                        }
                        return self.error("unclosed left paren");
                    }
                }
                Tok::Pipe => {
                    if matches!(self.peek_non_space(), Tok::RightDelim | Tok::RightParen) {
                        return self.error("missing command after \"|\"");
                    }
                }
                other => return self.unexpected(&other, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.error("empty command");
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(name) = self.peek() {
            self.next();
            fields.push(name);
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut idents) => {
                idents.extend(fields);
                Arg::Field(idents)
            }
            Arg::Variable(mut idents) => {
                idents.extend(fields);
                Arg::Variable(idents)
            }
            Arg::Bool(_) | Arg::Str(_) | Arg::Int(_) | Arg::Float(_) | Arg::Nil | Arg::Dot => {
                return self.error(format!("unexpected . after term {:?}", term.describe()));
            }
            other => Arg::Chain(Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>> {
        let token = self.next_non_space();
        Ok(Some(match token.tok {
            Tok::Identifier(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return self.error(format!("function {name:?} not defined"));
                }
                Arg::Function(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.error(format!("undefined variable {name:?}"));
                }
                Arg::Variable(vec![name])
            }
            Tok::Field(name) => Arg::Field(vec![name]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Char(c) => Arg::Int(c),
            Tok::Number(text) => self.number(&text)?,
            Tok::Str(s) => Arg::Str(s),
            Tok::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", true)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn number(&self, text: &str) -> Result<Arg> {
        let bad = || self.error(format!("bad number syntax: {text:?}"));
        let clean = text.replace('_', "");
        let (negative, digits) = match clean.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
        };
        let radix = match digits.get(..2) {
            Some("0x" | "0X") => Some(16),
            Some("0o" | "0O") => Some(8),
            Some("0b" | "0B") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            let Ok(value) = i64::from_str_radix(&digits[2..], radix) else {
                return bad();
            };
            return Ok(Arg::Int(if negative { -value } else { value }));
        }
        if digits.contains(['.', 'e', 'E']) {
            return match clean.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Arg::Float(f)),
                _ => bad(),
            };
        }
        if digits.len() > 1 && digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit())
        {
            // Go reads a leading zero as octal.
            return match i64::from_str_radix(&digits[1..], 8) {
                Ok(v) => Ok(Arg::Int(if negative { -v } else { v })),
                Err(_) => bad(),
            };
        }
        match clean.parse::<i64>() {
            Ok(i) => Ok(Arg::Int(i)),
            Err(_) => match clean.parse::<f64>() {
                Ok(f) if f.is_finite() && digits.chars().all(|c| c.is_ascii_digit()) => {
                    Ok(Arg::Float(f))
                }
                _ => bad(),
            },
        }
    }
}

/// Ollama's `Identifiers`: every field and variable name the template mentions (in `{{ }}`
/// pipelines and control conditions, not in `(…).Field` chains), in order.
pub(crate) fn identifiers(
    list: &[Node],
    names: &mut Vec<String>,
) -> std::result::Result<(), String> {
    for node in list {
        match node {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Action(pipe) => pipe_identifiers(pipe, names),
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
                pipe_identifiers(&branch.pipe, names);
                identifiers(&branch.list, names)?;
                if let Some(else_list) = &branch.else_list {
                    identifiers(else_list, names)?;
                }
            }
            Node::Template { pipe, .. } => match pipe {
                Some(pipe) => pipe_identifiers(pipe, names),
                None => return Err("undefined template specified".to_owned()),
            },
        }
    }
    Ok(())
}

fn pipe_identifiers(pipe: &Pipe, names: &mut Vec<String>) {
    for command in &pipe.cmds {
        for arg in &command.args {
            match arg {
                Arg::Field(idents) | Arg::Variable(idents) => names.extend(idents.iter().cloned()),
                Arg::Pipe(inner) => pipe_identifiers(inner, names),
                _ => {}
            }
        }
    }
}

/// Ollama's `deleteNode` as used by `Execute` for the last turn of a legacy template: keeps
/// everything up to the first `.Response` field and drops everything after it, in the same
/// walk order (control conditions are not visited).
pub(crate) fn cut_after_response(list: &[Node]) -> Vec<Node> {
    let mut cut = false;
    cut_list(list, &mut cut)
}

fn cut_list(list: &[Node], cut: &mut bool) -> Vec<Node> {
    let mut kept = Vec::new();
    for node in list {
        if *cut {
            break;
        }
        match node {
            Node::Action(pipe) => {
                if let Some(pipe) = cut_pipe(pipe, cut) {
                    kept.push(Node::Action(pipe));
                }
            }
            Node::If(branch) => kept.push(Node::If(cut_branch(branch, cut))),
            Node::Range(branch) => kept.push(Node::Range(cut_branch(branch, cut))),
            Node::With(branch) => kept.push(Node::With(cut_branch(branch, cut))),
            other => kept.push(other.clone()),
        }
    }
    kept
}

fn cut_branch(branch: &Branch, cut: &mut bool) -> Branch {
    let list = cut_list(&branch.list, cut);
    // Go would panic on an else clause after the cut; dropping it is the sane reading.
    let else_list = match &branch.else_list {
        Some(else_list) if !*cut => Some(cut_list(else_list, cut)),
        _ => None,
    };
    Branch {
        pipe: branch.pipe.clone(),
        list,
        else_list,
    }
}

fn cut_pipe(pipe: &Pipe, cut: &mut bool) -> Option<Pipe> {
    let mut cmds = Vec::new();
    for command in &pipe.cmds {
        let mut args = Vec::new();
        for arg in &command.args {
            if *cut {
                continue;
            }
            match arg {
                Arg::Field(idents) => {
                    if idents.iter().any(|i| i == "Response") {
                        *cut = true;
                    }
                    args.push(arg.clone());
                }
                Arg::Pipe(inner) => {
                    if let Some(inner) = cut_pipe(inner, cut) {
                        args.push(Arg::Pipe(Box::new(inner)));
                    }
                }
                other => args.push(other.clone()),
            }
        }
        if args.is_empty() {
            return None;
        }
        cmds.push(Command { args });
    }
    if cmds.is_empty() {
        return None;
    }
    Some(Pipe {
        cmds,
        ..pipe.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(src: &str) -> String {
        parse(src).err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn else_if_chains_nest_as_go_does() {
        let tree = parse("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}").expect("parses");
        let Some(Node::If(branch)) = tree.root.first() else {
            panic!("expected if")
        };
        assert!(matches!(branch.else_list.as_deref(), Some([Node::If(_)])));
    }

    #[test]
    fn unknown_functions_are_rejected_at_parse_time() {
        assert_eq!(
            error_of("{{ frobnicate .X }}"),
            "function \"frobnicate\" not defined"
        );
    }

    #[test]
    fn undefined_variables_are_rejected_at_parse_time() {
        assert_eq!(error_of("{{ $x }}"), "undefined variable \"$x\"");
    }

    #[test]
    fn variables_go_out_of_scope_at_end() {
        assert_eq!(
            error_of("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}"),
            "undefined variable \"$x\""
        );
    }

    #[test]
    fn break_outside_range_is_rejected() {
        assert_eq!(error_of("{{ break }}"), "{{break}} outside {{range}}");
    }

    #[test]
    fn a_missing_end_is_an_unexpected_eof() {
        assert_eq!(error_of("{{ if .X }}a"), "unexpected EOF in if");
    }

    #[test]
    fn a_stray_end_is_rejected() {
        assert_eq!(error_of("a{{ end }}"), "unexpected {{end}}");
        assert_eq!(error_of("a{{ else }}"), "unexpected {{else}}");
    }

    #[test]
    fn constants_cannot_take_piped_input() {
        assert_eq!(
            error_of("{{ .X | \"a\" }}"),
            "non executable command in pipeline stage 2"
        );
    }

    #[test]
    fn empty_actions_are_rejected() {
        assert_eq!(error_of("{{ }}"), "missing value for command");
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let src = format!(
            "{}x{}",
            "{{ if 1 }}".repeat(10_000),
            "{{ end }}".repeat(10_000)
        );
        assert!(error_of(&src).contains("nests deeper"));
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(error_of(&parens).contains("nests deeper"));
    }

    #[test]
    fn numbers_parse_like_go_constants() {
        let tree = parse("{{ 0x1F }}{{ 1.5 }}{{ -3 }}{{ 'a' }}").expect("parses");
        let values: Vec<String> = tree
            .root
            .iter()
            .map(|n| match n {
                Node::Action(p) => p.cmds[0].args[0].describe(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(values, ["31", "1.5", "-3", "97"]);
    }
}
