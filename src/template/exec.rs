//! The evaluator: walks a parsed tree over a [`Value`] the way Go's `text/template/exec.go`
//! does (dot, `$` and variables, pipelines, `range`/`with`/`if`, `break`/`continue`, template
//! calls) with Go's builtin functions and Ollama's (`json`, `currentDate`, `yesterdayDate`,
//! `toTypeScriptType`).
//!
//! Templates come from users, so execution is bounded: output past [`MAX_OUTPUT`], nesting
//! (including template recursion) past [`MAX_DEPTH`], or more than [`MAX_STEPS`] evaluation
//! steps stop it with an error instead of exhausting memory, the stack or time.

use std::fmt::Write as _;

use super::parse::{Arg, Branch, Command, Node, Pipe, Tree};
use super::value::{format_float_g, Value};

/// The most a template may write (Ollama has no limit; a prompt this size is already absurd).
pub const MAX_OUTPUT: usize = 16 << 20;
/// The deepest nesting of lists, template calls and parenthesised pipelines at run time.
pub const MAX_DEPTH: usize = 200;
/// The most nodes, commands and loop iterations one execution may evaluate.
pub const MAX_STEPS: u64 = 10_000_000;
/// Widths and precisions in `printf` beyond this are refused rather than allocated.
const MAX_PRINTF_WIDTH: usize = 100_000;

/// How a list ended: normally, or by `{{break}}`/`{{continue}}` bound for the enclosing range.
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Executor<'a> {
    tree: &'a Tree,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    steps: u64,
    line: usize,
}

type Result<T> = std::result::Result<T, String>;

/// Renders `root` (the tree's own root or a variant of it) with `data` as dot and `$`.
pub(crate) fn execute(
    tree: &Tree,
    root: &[Node],
    data: &Value,
) -> std::result::Result<String, (usize, String)> {
    let mut executor = Executor {
        tree,
        out: String::new(),
        vars: vec![("$".to_owned(), data.clone())],
        depth: 0,
        steps: 0,
        line: 1,
    };
    match executor.walk_list(data, root) {
        Ok(_) => Ok(executor.out),
        Err(message) => Err((executor.line, message)),
    }
}

impl Executor<'_> {
    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(format!("template exceeded {MAX_STEPS} evaluation steps"));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("exceeded maximum template depth ({MAX_DEPTH})"));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> Result<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(format!("template output exceeds {} MiB", MAX_OUTPUT >> 20));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &[Node]) -> Result<Flow> {
        self.enter()?;
        let result = self.walk_nodes(dot, list);
        self.depth -= 1;
        result
    }

    fn walk_nodes(&mut self, dot: &Value, list: &[Node]) -> Result<Flow> {
        for node in list {
            self.step()?;
            match node {
                Node::Text(text) => self.write(text)?,
                Node::Action(pipe) => {
                    self.line = pipe.line;
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.write(&value.to_output())?;
                    }
                }
                Node::If(branch) => match self.walk_if_or_with(dot, branch, false)? {
                    Flow::Normal => {}
                    flow => return Ok(flow),
                },
                Node::With(branch) => match self.walk_if_or_with(dot, branch, true)? {
                    Flow::Normal => {}
                    flow => return Ok(flow),
                },
                Node::Range(branch) => self.walk_range(dot, branch)?,
                Node::Template { line, name, pipe } => {
                    self.line = *line;
                    self.walk_template(dot, name, pipe.as_ref())?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &Branch, is_with: bool) -> Result<Flow> {
        let mark = self.vars.len();
        self.line = branch.pipe.line;
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let flow = if value.is_true() {
            let new_dot = if is_with { &value } else { dot };
            self.walk_list(new_dot, &branch.list)?
        } else if let Some(else_list) = &branch.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, branch: &Branch) -> Result<()> {
        let mark = self.vars.len();
        self.line = branch.pipe.line;
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let mut iterations: Box<dyn Iterator<Item = (Value, Value)>> = match &value {
            Value::List(list) => Box::new(
                list.items
                    .clone()
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), v)),
            ),
            Value::Map(map) => Box::new(
                map.entries
                    .clone()
                    .into_iter()
                    .map(|(k, v)| (Value::str(&k), v)),
            ),
            Value::Int(n) => {
                if branch.pipe.decl.len() > 1 {
                    return Err(format!(
                        "can't use {n} to iterate over more than one variable"
                    ));
                }
                Box::new((0..(*n).max(0)).map(|i| (Value::Int(i), Value::Int(i))))
            }
            Value::Nil => Box::new(std::iter::empty()),
            other => return Err(format!("range can't iterate over {}", other.to_output())),
        };
        let mut any = false;
        for (key, element) in &mut iterations {
            any = true;
            self.step()?;
            match branch.pipe.decl.as_slice() {
                [] => {}
                [single] => {
                    self.set_range_var(branch.pipe.is_assign, single, mark, element.clone(), 1)
                }
                [first, second, ..] => {
                    self.set_range_var(branch.pipe.is_assign, first, mark, key, 2);
                    self.set_range_var(branch.pipe.is_assign, second, mark, element.clone(), 1);
                }
            }
            let iteration_mark = self.vars.len();
            let flow = self.walk_list(&element, &branch.list)?;
            self.vars.truncate(iteration_mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        if !any {
            if let Some(else_list) = &branch.else_list {
                // A `{{break}}` here belongs to an enclosing range; Go's parser only allows
                // it inside one, and this loop has ended anyway.
                self.walk_list(dot, else_list)?;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// Sets a range variable: `:=` variables sit on top of the stack (pushed by the pipeline),
    /// `=` variables are assigned wherever they live.
    fn set_range_var(
        &mut self,
        is_assign: bool,
        name: &str,
        mark: usize,
        value: Value,
        from_top: usize,
    ) {
        if is_assign {
            let _ = self.set_var(name, value);
        } else if let Some(slot) = self.vars.len().checked_sub(from_top).filter(|i| *i >= mark) {
            self.vars[slot].1 = value;
        }
    }

    fn walk_template(&mut self, dot: &Value, name: &str, pipe: Option<&Pipe>) -> Result<()> {
        let Some(list) = self.tree.defines.get(name) else {
            return Err(format!("no such template {name:?}"));
        };
        let new_dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        let saved = std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
        let result = self.walk_list(&new_dot, list);
        self.vars = saved;
        result.map(|_| ())
    }

    fn lookup_var(&self, name: &str) -> Result<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn set_var(&mut self, name: &str, value: Value) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        self.enter()?;
        let mut value: Option<Value> = None;
        for command in &pipe.cmds {
            self.step()?;
            value = Some(self.eval_command(dot, command, value)?);
        }
        self.depth -= 1;
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        command: &Command,
        last: Option<Value>,
    ) -> Result<Value> {
        let Some(first) = command.args.first() else {
            return Err("empty command".to_owned());
        };
        let has_args = command.args.len() > 1 || last.is_some();
        match first {
            Arg::Field(idents) => self.eval_field_chain(dot.clone(), idents, has_args),
            Arg::Variable(idents) => {
                let value = self.lookup_var(&idents[0])?;
                if idents.len() == 1 {
                    not_a_function(first, has_args)?;
                    return Ok(value);
                }
                self.eval_field_chain(value, &idents[1..], has_args)
            }
            Arg::Chain(inner, fields) => {
                if matches!(**inner, Arg::Nil) {
                    return Err("indirection through explicit nil".to_owned());
                }
                let value = self.eval_arg(dot, inner)?;
                self.eval_field_chain(value, fields, has_args)
            }
            Arg::Function(name) => self.call_function(dot, name, &command.args[1..], last),
            Arg::Pipe(pipe) => {
                not_a_function(first, has_args)?;
                self.eval_pipeline(dot, pipe)
            }
            Arg::Nil => Err("nil is not a command".to_owned()),
            constant => {
                not_a_function(constant, has_args)?;
                self.eval_arg(dot, constant)
            }
        }
    }

    /// Evaluates one argument of a function call.
    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> Result<Value> {
        self.step()?;
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Str(s) => Value::str(s),
            Arg::Field(idents) => self.eval_field_chain(dot.clone(), idents, false)?,
            Arg::Variable(idents) => {
                let value = self.lookup_var(&idents[0])?;
                self.eval_field_chain(value, &idents[1..], false)?
            }
            Arg::Chain(inner, fields) => {
                let value = self.eval_arg(dot, inner)?;
                self.eval_field_chain(value, fields, false)?
            }
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Function(name) => self.call_function(dot, name, &[], None)?,
        })
    }

    fn eval_field_chain(
        &mut self,
        mut receiver: Value,
        idents: &[String],
        has_args: bool,
    ) -> Result<Value> {
        for (i, name) in idents.iter().enumerate() {
            if has_args && i + 1 == idents.len() {
                return Err(format!(
                    "{name} has arguments but cannot be invoked as function"
                ));
            }
            receiver = field(&receiver, name)?;
        }
        Ok(receiver)
    }

    fn call_function(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Value> {
        // `and` and `or` evaluate their arguments lazily, stopping at the deciding one.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(last.is_some());
            if total == 0 {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut value = Value::Nil;
            for arg in args {
                value = self.eval_arg(dot, arg)?;
                if value.is_true() == (name == "or") {
                    return Ok(value);
                }
            }
            if let Some(last) = last {
                value = last;
            }
            return Ok(value);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.eval_arg(dot, arg)?);
        }
        values.extend(last);
        call_builtin(name, &values).map_err(|e| format!("error calling {name}: {e}"))
    }
}

fn not_a_function(arg: &Arg, has_args: bool) -> Result<()> {
    if has_args {
        return Err(format!(
            "can't give argument to non-function {}",
            arg.describe()
        ));
    }
    Ok(())
}

/// `.name` on a value: map keys (missing ones read as nil, Ollama's `missingkey=zero`) and
/// struct fields (unknown ones are an error, as in Go).
fn field(receiver: &Value, name: &str) -> Result<Value> {
    match receiver {
        Value::Map(map) => Ok(map
            .entries
            .iter()
            .find(|(k, _)| k == name)
            .map_or(Value::Nil, |(_, v)| v.clone())),
        Value::Struct(record) => record
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
            .ok_or_else(|| format!("can't evaluate field {name} in type {}", record.type_name)),
        // Go yields the zero value for a field of an invalid value; a nil interface errors,
        // but the two look the same here, so take the lenient reading.
        Value::Nil => Ok(Value::Nil),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            other.type_name()
        )),
    }
}

fn want_args(name: &str, values: &[Value], want: usize) -> Result<()> {
    if values.len() != want {
        return Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            values.len()
        ));
    }
    Ok(())
}

fn call_builtin(name: &str, values: &[Value]) -> Result<Value> {
    match name {
        "not" => {
            want_args(name, values, 1)?;
            Ok(Value::Bool(!values[0].is_true()))
        }
        "len" => {
            want_args(name, values, 1)?;
            match &values[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.items.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.entries.len() as i64)),
                Value::Nil => Err("len of nil pointer".to_owned()),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => index(values),
        "slice" => slice(values),
        "eq" => {
            let Some((first, rest)) = values.split_first() else {
                return Err("wrong number of args for eq: want at least 1 got 0".to_owned());
            };
            if rest.is_empty() {
                return Err("missing argument for comparison".to_owned());
            }
            for other in rest {
                if equal(first, other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want_args(name, values, 2)?;
            Ok(Value::Bool(!equal(&values[0], &values[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(name, values, 2)?;
            let ordering = compare(&values[0], &values[1])?;
            Ok(Value::Bool(match name {
                "lt" => ordering.is_lt(),
                "le" => ordering.is_le(),
                "gt" => ordering.is_gt(),
                _ => ordering.is_ge(),
            }))
        }
        "print" => Ok(Value::str(&sprint(values))),
        "println" => Ok(Value::str(&sprintln(values))),
        "printf" => {
            let Some((Value::Str(format), rest)) = values.split_first() else {
                return Err("printf needs a format string".to_owned());
            };
            Ok(Value::str(&sprintf(format, rest)?))
        }
        "html" => Ok(Value::str(&html_escape(&escaper_input(values)))),
        "js" => Ok(Value::str(&js_escape(&escaper_input(values)))),
        "urlquery" => Ok(Value::str(&query_escape(&escaper_input(values)))),
        "call" => Err("call of nil".to_owned()),
        "json" => {
            want_args(name, values, 1)?;
            Ok(Value::str(&values[0].to_json()))
        }
        // Ollama ignores the format argument and always writes YYYY-MM-DD, in local time.
        "currentDate" | "yesterdayDate" => {
            if let Some(bad) = values.iter().find(|v| !matches!(v, Value::Str(_))) {
                return Err(format!(
                    "wrong type for value; expected string; got {}",
                    bad.type_name()
                ));
            }
            let mut date = chrono::Local::now().date_naive();
            if name == "yesterdayDate" {
                date = date.pred_opt().unwrap_or(date);
            }
            Ok(Value::str(&date.format("%Y-%m-%d").to_string()))
        }
        "toTypeScriptType" => {
            want_args(name, values, 1)?;
            Ok(Value::str(&typescript_type(&values[0])))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

/// Ollama's `ToolProperty.ToTypeScriptType`; anything that is not a tool property is `any`.
fn typescript_type(value: &Value) -> String {
    let Value::Struct(record) = value else {
        return "any".to_owned();
    };
    if record.type_name != "api.ToolProperty" {
        return "any".to_owned();
    }
    let get = |name: &str| {
        record
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    };
    if let Some(Value::List(any_of)) = get("AnyOf") {
        if !any_of.items.is_empty() {
            return any_of
                .items
                .iter()
                .map(typescript_type)
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    let types: Vec<&str> = match get("Type") {
        Some(Value::List(types)) => types
            .items
            .iter()
            .filter_map(|t| match t {
                Value::Str(s) => Some(&**s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".to_owned();
    }
    types
        .iter()
        .map(|t| match *t {
            "string" => "string",
            "number" | "integer" => "number",
            "boolean" => "boolean",
            "array" => "any[]",
            "object" => "Record<string, any>",
            "null" => "null",
            _ => "any",
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn index_of(value: &Value) -> Result<i64> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err("cannot index slice/array with nil".to_owned()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

fn index(values: &[Value]) -> Result<Value> {
    let Some((item, indices)) = values.split_first() else {
        return Err("wrong number of args for index: want at least 1 got 0".to_owned());
    };
    let mut item = item.clone();
    for key in indices {
        item = match &item {
            Value::List(list) => {
                let i = index_of(key)?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| list.items.get(i))
                    .cloned()
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            Value::Str(s) => {
                let i = index_of(key)?;
                let byte = usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i));
                Value::Int(i64::from(
                    *byte.ok_or_else(|| format!("index out of range: {i}"))?,
                ))
            }
            Value::Map(map) => match key {
                Value::Str(k) => map
                    .entries
                    .iter()
                    .find(|(name, _)| **name == **k)
                    .map_or(Value::Nil, |(_, v)| v.clone()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ))
                }
            },
            Value::Nil => return Err("index of untyped nil".to_owned()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(values: &[Value]) -> Result<Value> {
    let Some((item, indices)) = values.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".to_owned());
    };
    if indices.len() > 3 {
        return Err(format!("too many slice indexes: {}", indices.len()));
    }
    let len = match item {
        Value::Str(s) => {
            if indices.len() == 3 {
                return Err("cannot 3-index slice a string".to_owned());
            }
            s.len()
        }
        Value::List(list) => list.items.len(),
        Value::Nil => return Err("slice of untyped nil".to_owned()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut bounds = [0, len, len];
    for (i, index) in indices.iter().enumerate() {
        let value = index_of(index)?;
        bounds[i] = usize::try_from(value)
            .ok()
            .filter(|v| *v <= len)
            .ok_or_else(|| format!("index out of range: {value}"))?;
    }
    if indices.len() < 2 {
        bounds[1] = len;
    }
    let (start, end) = (bounds[0], bounds[1]);
    if start > end || (indices.len() == 3 && end > bounds[2]) {
        return Err(format!("invalid slice index: {start} > {end}"));
    }
    Ok(match item {
        // Go slices strings by bytes; a cut inside a character becomes U+FFFD here.
        Value::Str(s) => Value::str(&String::from_utf8_lossy(&s.as_bytes()[start..end])),
        Value::List(list) => Value::list(list.items[start..end].to_vec(), list.type_name),
        _ => Value::Nil,
    })
}

/// Go's comparable basic kinds.
#[derive(PartialEq)]
enum Basic<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn basic(value: &Value) -> Option<Basic<'_>> {
    match value {
        Value::Bool(b) => Some(Basic::Bool(*b)),
        Value::Int(i) => Some(Basic::Int(*i)),
        Value::Float(f) => Some(Basic::Float(*f)),
        Value::Str(s) => Some(Basic::Str(s)),
        _ => None,
    }
}

/// Go's `eq` for two values: basic kinds must match; nil equals only nil.
fn equal(a: &Value, b: &Value) -> Result<bool> {
    match (basic(a), basic(b)) {
        (Some(x), Some(y)) => {
            if std::mem::discriminant(&x) != std::mem::discriminant(&y) {
                return Err("incompatible types for comparison".to_owned());
            }
            Ok(x == y)
        }
        _ => match (a, b) {
            (Value::Nil, Value::Nil) => Ok(true),
            (Value::Nil, _) | (_, Value::Nil) => Ok(false),
            (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => Err(
                format!("non-comparable types {}, {}", a.type_name(), b.type_name()),
            ),
            _ if basic(a).is_some() || basic(b).is_some() => {
                Err("incompatible types for comparison".to_owned())
            }
            _ => Err(format!("non-comparable type {}", a.type_name())),
        },
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    match (basic(a), basic(b)) {
        (Some(Basic::Int(x)), Some(Basic::Int(y))) => Ok(x.cmp(&y)),
        (Some(Basic::Float(x)), Some(Basic::Float(y))) => {
            Ok(x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal))
        }
        (Some(Basic::Str(x)), Some(Basic::Str(y))) => Ok(x.cmp(y)),
        (Some(Basic::Bool(_)), Some(Basic::Bool(_))) => {
            Err("invalid type for comparison".to_owned())
        }
        (Some(_), Some(_)) => Err("incompatible types for comparison".to_owned()),
        _ => Err("invalid type for comparison".to_owned()),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(values: &[Value]) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 && !matches!(value, Value::Str(_)) && !matches!(values[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        value.write_go(&mut out);
    }
    out
}

fn sprintln(values: &[Value]) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        value.write_go(&mut out);
    }
    out.push('\n');
    out
}

/// The escapers' input: a lone string as is, anything else through `fmt.Sprint`.
fn escaper_input(values: &[Value]) -> String {
    match values {
        [Value::Str(s)] => s.to_string(),
        _ => sprint(values),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: flags `-+ 0#`, width, precision and the verbs
/// `v s q d f F e E g G t x X c %`, with Go's `%!verb(type=value)` for mismatches.
fn sprintf(format: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut args_used = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Result<Option<usize>> {
            let mut value: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                chars.next();
                let next = value
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(d as usize);
                if next > MAX_PRINTF_WIDTH {
                    return Err(format!(
                        "printf width or precision above {MAX_PRINTF_WIDTH}"
                    ));
                }
                value = Some(next);
            }
            Ok(value)
        };
        let width = number(&mut chars)?;
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(number(&mut chars)?.unwrap_or(0))
        } else {
            None
        };
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(args_used) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        args_used += 1;
        let bad = || format!("%!{verb}({}={})", arg.type_name(), arg.to_output());
        let sign = |negative: bool| {
            if negative {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        let (body, numeric) = match (verb, arg) {
            ('v', _) => (arg.to_output().replace("<no value>", "<nil>"), false),
            ('s', Value::Str(_) | Value::List(_) | Value::Map(_) | Value::Struct(_)) => {
                let s = arg.to_output();
                match precision {
                    Some(p) => (s.chars().take(p).collect(), false),
                    None => (s, false),
                }
            }
            ('q', Value::Str(s)) => (format!("{:?}", &**s), false),
            ('t', Value::Bool(b)) => (b.to_string(), false),
            ('d', Value::Int(i)) => (format!("{}{}", sign(*i < 0), i.unsigned_abs()), true),
            ('c', Value::Int(i)) => (
                u32::try_from(*i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}')
                    .to_string(),
                false,
            ),
            ('x', Value::Int(i)) => (format!("{}{:x}", sign(*i < 0), i.unsigned_abs()), true),
            ('X', Value::Int(i)) => (format!("{}{:X}", sign(*i < 0), i.unsigned_abs()), true),
            ('x', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02x}")).collect(), false),
            ('X', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02X}")).collect(), false),
            ('f' | 'F', Value::Float(f)) => (
                format!(
                    "{}{:.*}",
                    sign(f.is_sign_negative()),
                    precision.unwrap_or(6),
                    f.abs()
                ),
                true,
            ),
            ('e' | 'E', Value::Float(f)) => {
                let s = format!("{:.*e}", precision.unwrap_or(6), f.abs());
                let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
                let (exp_sign, digits) = exponent
                    .strip_prefix('-')
                    .map_or(("+", exponent), |d| ("-", d));
                let e = if verb == 'E' { 'E' } else { 'e' };
                (
                    format!(
                        "{}{mantissa}{e}{exp_sign}{digits:0>2}",
                        sign(f.is_sign_negative())
                    ),
                    true,
                )
            }
            ('g' | 'G', Value::Float(f)) => (format_float_g(*f), true),
            _ => (bad(), false),
        };
        let pad = width.unwrap_or(0).saturating_sub(body.chars().count());
        if minus {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && numeric {
            let (sign_part, digits) = match body.chars().next() {
                Some(c @ ('-' | '+' | ' ')) => (c.to_string(), &body[1..]),
                _ => (String::new(), body.as_str()),
            };
            out.push_str(&sign_part);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    if args_used < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[args_used..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", arg.type_name(), arg.to_output());
        }
        out.push(')');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, data: &Value) -> std::result::Result<String, String> {
        let tree = super::super::parse::parse(src).map_err(|e| e.message)?;
        execute(&tree, &tree.root, data).map_err(|(_, m)| m)
    }

    fn data() -> Value {
        Value::sorted_map(
            vec![
                ("Name".into(), Value::str("ollama")),
                (
                    "Items".into(),
                    Value::list(
                        vec![Value::str("a"), Value::str("b"), Value::str("c")],
                        "[]string",
                    ),
                ),
                ("Zero".into(), Value::Int(0)),
            ],
            super::super::value::Stringer::None,
            "map[string]interface {}",
        )
    }

    #[test]
    fn range_binds_index_and_element() {
        assert_eq!(
            run(
                "{{ range $i, $v := .Items }}{{ $i }}={{ $v }};{{ end }}",
                &data()
            )
            .as_deref(),
            Ok("0=a;1=b;2=c;")
        );
    }

    #[test]
    fn range_supports_break_and_continue() {
        let src = r#"{{ range .Items }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ if eq . "c" }}{{ break }}{{ end }}{{ . }}{{ end }}"#;
        assert_eq!(run(src, &data()).as_deref(), Ok("a"));
    }

    #[test]
    fn range_over_nothing_runs_else() {
        assert_eq!(
            run("{{ range .Missing }}x{{ else }}none{{ end }}", &data()).as_deref(),
            Ok("none")
        );
    }

    #[test]
    fn range_over_an_integer_counts_from_zero() {
        assert_eq!(
            run("{{ range $i := 3 }}{{ $i }}{{ end }}", &data()).as_deref(),
            Ok("012")
        );
    }

    #[test]
    fn with_rebinds_dot_and_else_with_chains() {
        let src = "{{ with .Missing }}no{{ else with .Name }}{{ . }}{{ end }}";
        assert_eq!(run(src, &data()).as_deref(), Ok("ollama"));
    }

    #[test]
    fn variables_can_be_reassigned_inside_loops() {
        let src = "{{ $last := \"\" }}{{ range .Items }}{{ $last = . }}{{ end }}{{ $last }}";
        assert_eq!(run(src, &data()).as_deref(), Ok("c"));
    }

    #[test]
    fn and_or_short_circuit_and_return_operands() {
        assert_eq!(
            run("{{ or .Zero .Name }}|{{ and .Name .Zero }}", &data()).as_deref(),
            Ok("ollama|0")
        );
        assert_eq!(
            run("{{ and .Zero (index .Items 9) }}", &data()).as_deref(),
            Ok("0")
        );
    }

    #[test]
    fn comparisons_follow_go_types() {
        assert_eq!(
            run(
                "{{ eq .Name \"x\" \"ollama\" }} {{ lt 1 2 }} {{ ne .Zero 0 }}",
                &data()
            )
            .as_deref(),
            Ok("true true false")
        );
        assert!(run("{{ eq .Name 1 }}", &data()).is_err_and(|e| e.contains("incompatible types")));
        assert_eq!(
            run("{{ eq .Missing \"x\" }}", &data()).as_deref(),
            Ok("false")
        );
    }

    #[test]
    fn len_index_and_slice_work_on_strings_and_lists() {
        let src =
            "{{ len .Items }} {{ index .Items 1 }} {{ slice .Name 1 3 }} {{ slice .Items 1 }}";
        assert_eq!(run(src, &data()).as_deref(), Ok("3 b ll [b c]"));
        assert!(
            run("{{ index .Items 5 }}", &data()).is_err_and(|e| e.contains("index out of range"))
        );
    }

    #[test]
    fn slicing_inside_a_character_does_not_panic() {
        let data = Value::sorted_map(
            vec![("S".into(), Value::str("é"))],
            super::super::value::Stringer::None,
            "m",
        );
        assert_eq!(run("{{ slice .S 0 1 }}", &data).as_deref(), Ok("\u{FFFD}"));
    }

    #[test]
    fn printf_formats_like_go() {
        let src = r#"{{ printf "%s-%05d-%.2f-%q-%v-%x" "a" 42 3.14159 "q" .Items 255 }}"#;
        assert_eq!(
            run(src, &data()).as_deref(),
            Ok(r#"a-00042-3.14-"q"-[a b c]-ff"#)
        );
        assert_eq!(
            run(r#"{{ printf "%d %d" 1 }}"#, &data()).as_deref(),
            Ok("1 %!d(MISSING)")
        );
        assert_eq!(
            run(r#"{{ printf "%d" "x" }}"#, &data()).as_deref(),
            Ok("%!d(string=x)")
        );
    }

    #[test]
    fn printf_refuses_absurd_widths() {
        assert!(run(r#"{{ printf "%999999999d" 1 }}"#, &data()).is_err());
    }

    #[test]
    fn print_spaces_only_between_non_strings() {
        assert_eq!(
            run(r#"{{ print "a" "b" 1 2 }}|{{ println "a" 1 }}"#, &data()).as_deref(),
            Ok("ab1 2|a 1\n")
        );
    }

    #[test]
    fn escapers_match_go() {
        assert_eq!(
            run(r#"{{ html "<a href='x'>&" }}"#, &data()).as_deref(),
            Ok("&lt;a href=&#39;x&#39;&gt;&amp;")
        );
        assert_eq!(
            run(r#"{{ urlquery "a b&c" }}"#, &data()).as_deref(),
            Ok("a+b%26c")
        );
        assert_eq!(
            run(r#"{{ js "it's <b>" }}"#, &data()).as_deref(),
            Ok("it\\'s \\u003Cb\\u003E")
        );
    }

    #[test]
    fn unknown_struct_fields_are_execution_errors() {
        assert!(run("{{ .Name.Foo }}", &data())
            .is_err_and(|e| e.contains("can't evaluate field Foo in type string")));
    }

    #[test]
    fn fields_cannot_take_arguments() {
        assert!(run("{{ .Name 1 }}", &data())
            .is_err_and(|e| e.contains("cannot be invoked as function")));
    }

    #[test]
    fn missing_keys_print_no_value() {
        assert_eq!(run("{{ .Missing }}", &data()).as_deref(), Ok("<no value>"));
    }

    #[test]
    fn defined_templates_run_with_their_own_dot() {
        let src = r#"{{ define "item" }}<{{ . }}>{{ end }}{{ range .Items }}{{ template "item" . }}{{ end }}"#;
        assert_eq!(run(src, &data()).as_deref(), Ok("<a><b><c>"));
        assert_eq!(
            run(r#"{{ block "b" .Name }}[{{ . }}]{{ end }}"#, &data()).as_deref(),
            Ok("[ollama]")
        );
    }

    #[test]
    fn infinite_template_recursion_stops_with_an_error() {
        let src = r#"{{ define "loop" }}x{{ template "loop" . }}{{ end }}{{ template "loop" . }}"#;
        assert!(run(src, &data()).is_err_and(|e| e.contains("maximum template depth")));
    }

    #[test]
    fn huge_ranges_stop_at_the_step_limit() {
        assert!(run("{{ range 100000000000 }}{{ end }}", &data())
            .is_err_and(|e| e.contains("evaluation steps")));
    }

    #[test]
    fn exponential_output_stops_at_the_size_limit() {
        let mut src = String::from(r#"{{ define "t0" }}0123456789abcdef0123456789abcdef{{ end }}"#);
        for level in 1..=20 {
            let previous = level - 1;
            src.push_str(&format!(
                r#"{{{{ define "t{level}" }}}}{{{{ template "t{previous}" }}}}{{{{ template "t{previous}" }}}}{{{{ end }}}}"#
            ));
        }
        src.push_str(r#"{{ template "t20" }}"#);
        assert!(run(&src, &data()).is_err_and(|e| e.contains("output exceeds")));
    }
}
