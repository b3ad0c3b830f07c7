//! The lexer for Go's `text/template` syntax: text, `{{ … }}` actions with `{{-`/`-}}`
//! trimming, and `{{/* … */}}` comments, following `text/template/parse/lex.go`.

/// Go trims these around `{{-` and `-}}` and treats them as spaces inside actions.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    /// A function name.
    Identifier(String),
    /// `.Name` (without the dot).
    Field(String),
    /// `$` or `$name`, with the dollar.
    Variable(String),
    Dot,
    Str(String),
    /// A number literal or a character constant, kept as written.
    Number(String),
    Char(i64),
    Bool(bool),
    Nil,
    Keyword(Keyword),
    Pipe,
    LeftParen,
    RightParen,
    Comma,
    Declare,
    Assign,
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

impl Tok {
    /// How Go names the token in "unexpected …" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Text(t) => format!("{t:?}"),
            Tok::LeftDelim => "\"{{\"".into(),
            Tok::RightDelim => "\"}}\"".into(),
            Tok::Space => "space".into(),
            Tok::Identifier(s) => format!("{s:?}"),
            Tok::Field(s) => format!("\".{s}\""),
            Tok::Variable(s) => format!("{s:?}"),
            Tok::Dot => "\".\"".into(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Number(s) => format!("{s:?}"),
            Tok::Char(c) => format!("{c}"),
            Tok::Bool(b) => format!("\"{b}\""),
            Tok::Nil => "\"nil\"".into(),
            Tok::Keyword(k) => format!("<{}>", k.name()),
            Tok::Pipe => "\"|\"".into(),
            Tok::LeftParen => "\"(\"".into(),
            Tok::RightParen => "\")\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Declare => "\":=\"".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::Eof => "EOF".into(),
        }
    }
}

impl Keyword {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::Block => "block",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Define => "define",
            Keyword::Else => "else",
            Keyword::End => "end",
            Keyword::If => "if",
            Keyword::Range => "range",
            Keyword::Template => "template",
            Keyword::With => "with",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
}

/// A lexing failure: the line and Go's wording.
#[derive(Debug)]
pub(crate) struct LexError {
    pub line: usize,
    pub message: String,
}

/// Splits a template into tokens, ending with `Eof`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    Lexer {
        src,
        pos: 0,
        line: 1,
        tokens: Vec::new(),
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn emit(&mut self, tok: Tok, line: usize) {
        self.tokens.push(Token { tok, line });
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            line: self.line,
            message: message.into(),
        })
    }

    /// Moves past `len` bytes, counting newlines.
    fn advance(&mut self, len: usize) {
        let end = (self.pos + len).min(self.src.len());
        self.line += self.src[self.pos..end].matches('\n').count();
        self.pos = end;
    }

    fn run(mut self) -> Result<Vec<Token>, LexError> {
        loop {
            let Some(start) = self.rest().find("{{") else {
                let text = self.rest().to_owned();
                let line = self.line;
                self.advance(text.len());
                if !text.is_empty() {
                    self.emit(Tok::Text(text), line);
                }
                break;
            };
            let after = &self.rest()[start + 2..];
            let trim_left = has_left_trim_marker(after);
            let mut text = &self.rest()[..start];
            if trim_left {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                let (text, line) = (text.to_owned(), self.line);
                self.emit(Tok::Text(text), line);
            }
            self.advance(start + 2);
            if trim_left {
                // Skip the '-' and its space: both belong to the marker.
                self.advance(2);
            }
            if self.rest().starts_with("/*") {
                self.comment()?;
            } else {
                let line = self.line;
                self.emit(Tok::LeftDelim, line);
                self.inside_action()?;
            }
        }
        let line = self.line;
        self.emit(Tok::Eof, line);
        Ok(self.tokens)
    }

    /// At a right delimiter: `Some(trim)` when one starts here.
    fn at_right_delim(&self) -> Option<bool> {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[2..].starts_with("}}") {
            Some(true)
        } else if rest.starts_with("}}") {
            Some(false)
        } else {
            None
        }
    }

    fn close_action(&mut self, trim: bool) {
        self.advance(if trim { 4 } else { 2 });
        if trim {
            let spaces = self.rest().len() - self.rest().trim_start_matches(is_space).len();
            self.advance(spaces);
        }
    }

    fn comment(&mut self) -> Result<(), LexError> {
        let Some(end) = self.rest().find("*/") else {
            return self.error("unclosed comment");
        };
        self.advance(end + 2);
        match self.at_right_delim() {
            Some(trim) => {
                self.close_action(trim);
                Ok(())
            }
            None => self.error("comment ends before closing delimiter"),
        }
    }

    fn inside_action(&mut self) -> Result<(), LexError> {
        let mut paren_depth = 0usize;
        loop {
            if let Some(trim) = self.at_right_delim() {
                if paren_depth > 0 {
                    return self.error("unclosed left paren");
                }
                let line = self.line;
                self.close_action(trim);
                self.emit(Tok::RightDelim, line);
                return Ok(());
            }
            let line = self.line;
            let Some(c) = self.rest().chars().next() else {
                return self.error("unclosed action");
            };
            match c {
                c if is_space(c) => {
                    // Stop before a " -}}" so the marker keeps its space.
                    let mut len = 0;
                    for (i, ch) in self.rest().char_indices() {
                        if !is_space(ch) {
                            break;
                        }
                        let at = &self.rest()[i..];
                        if has_right_trim_marker(at) && at[2..].starts_with("}}") {
                            break;
                        }
                        len = i + ch.len_utf8();
                    }
                    self.advance(len);
                    if len > 0 {
                        self.emit(Tok::Space, line);
                    }
                }
                '=' => {
                    self.advance(1);
                    self.emit(Tok::Assign, line);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.error("expected :=");
                    }
                    self.advance(2);
                    self.emit(Tok::Declare, line);
                }
                '|' => {
                    self.advance(1);
                    self.emit(Tok::Pipe, line);
                }
                ',' => {
                    self.advance(1);
                    self.emit(Tok::Comma, line);
                }
                '(' => {
                    self.advance(1);
                    paren_depth += 1;
                    self.emit(Tok::LeftParen, line);
                }
                ')' => {
                    if paren_depth == 0 {
                        return self.error("unexpected right paren");
                    }
                    paren_depth -= 1;
                    self.advance(1);
                    self.emit(Tok::RightParen, line);
                }
                '"' => {
                    let s = self.quoted()?;
                    self.emit(Tok::Str(s), line);
                }
                '`' => {
                    let Some(end) = self.rest()[1..].find('`') else {
                        return self.error("unterminated raw quoted string");
                    };
                    let s = self.rest()[1..1 + end].to_owned();
                    self.advance(end + 2);
                    self.emit(Tok::Str(s), line);
                }
                '\'' => {
                    let c = self.char_constant()?;
                    self.emit(Tok::Char(c), line);
                }
                '$' => {
                    let len = 1 + alphanumeric_len(&self.rest()[1..]);
                    let name = self.rest()[..len].to_owned();
                    self.advance(len);
                    self.emit(Tok::Variable(name), line);
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.number(line)?;
                    } else {
                        let len = alphanumeric_len(&self.rest()[1..]);
                        let name = self.rest()[1..1 + len].to_owned();
                        self.advance(1 + len);
                        self.emit(if len == 0 { Tok::Dot } else { Tok::Field(name) }, line);
                    }
                }
                '+' | '-' | '0'..='9' => self.number(line)?,
                c if c == '_' || c.is_alphabetic() => {
                    let len = alphanumeric_len(self.rest());
                    let word = self.rest()[..len].to_owned();
                    self.advance(len);
                    let tok = match word.as_str() {
                        "block" => Tok::Keyword(Keyword::Block),
                        "break" => Tok::Keyword(Keyword::Break),
                        "continue" => Tok::Keyword(Keyword::Continue),
                        "define" => Tok::Keyword(Keyword::Define),
                        "else" => Tok::Keyword(Keyword::Else),
                        "end" => Tok::Keyword(Keyword::End),
                        "if" => Tok::Keyword(Keyword::If),
                        "range" => Tok::Keyword(Keyword::Range),
                        "template" => Tok::Keyword(Keyword::Template),
                        "with" => Tok::Keyword(Keyword::With),
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Identifier(word),
                    };
                    self.emit(tok, line);
                }
                other => return self.error(format!("unrecognized character in action: {other:?}")),
            }
        }
    }

    fn number(&mut self, line: usize) -> Result<(), LexError> {
        let rest = self.rest();
        let mut len = 0;
        let mut prev = ' ';
        for (i, c) in rest.char_indices() {
            let sign_ok = i == 0 || matches!(prev, 'e' | 'E' | 'p' | 'P');
            if c.is_ascii_alphanumeric()
                || c == '_'
                || c == '.'
                || ((c == '+' || c == '-') && sign_ok)
            {
                len = i + 1;
                prev = c;
            } else {
                break;
            }
        }
        let text = rest[..len].to_owned();
        if text == "+" || text == "-" {
            return self.error(format!("bad number syntax: {text:?}"));
        }
        self.advance(len);
        self.emit(Tok::Number(text), line);
        Ok(())
    }

    /// A `"…"` string with Go's escapes.
    fn quoted(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        loop {
            let Some((i, c)) = chars.next() else {
                return self.error("unterminated quoted string");
            };
            match c {
                '"' => {
                    self.advance(i + 1);
                    return Ok(out);
                }
                '\n' => return self.error("unterminated quoted string"),
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return self.error("unterminated quoted string");
                    };
                    let digits =
                        |chars: &mut dyn Iterator<Item = (usize, char)>, n: usize, radix: u32| {
                            let mut value = 0u32;
                            for _ in 0..n {
                                let d = chars.next().and_then(|(_, c)| c.to_digit(radix))?;
                                value = value.checked_mul(radix)?.checked_add(d)?;
                            }
                            Some(value)
                        };
                    let decoded = match e {
                        'a' => Some('\u{7}'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        'v' => Some('\u{b}'),
                        '\\' => Some('\\'),
                        '"' => Some('"'),
                        'x' => digits(&mut chars, 2, 16).and_then(char::from_u32),
                        'u' => digits(&mut chars, 4, 16).and_then(char::from_u32),
                        'U' => digits(&mut chars, 8, 16).and_then(char::from_u32),
                        '0'..='7' => e
                            .to_digit(8)
                            .and_then(|first| Some(first * 64 + digits(&mut chars, 2, 8)?))
                            .and_then(char::from_u32),
                        _ => None,
                    };
                    match decoded {
                        Some(d) => out.push(d),
                        None => return self.error("invalid syntax in quoted string"),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn char_constant(&mut self) -> Result<i64, LexError> {
        let Some(end) = self.rest()[1..].find('\'') else {
            return self.error("unterminated character constant");
        };
        let body = &self.rest()[1..1 + end];
        let mut chars = body.chars();
        let value = match (chars.next(), chars.next(), chars.next()) {
            (Some(c), None, _) if c != '\\' => c as i64,
            (Some('\\'), Some(e), None) => match e {
                'n' => 10,
                't' => 9,
                'r' => 13,
                '\\' => 92,
                '\'' => 39,
                '0' => 0,
                _ => return self.error(format!("malformed character constant: '{body}'")),
            },
            _ => return self.error(format!("malformed character constant: '{body}'")),
        };
        self.advance(end + 2);
        Ok(value)
    }
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

fn alphanumeric_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src)
            .map(|t| t.into_iter().map(|t| t.tok).collect())
            .unwrap_or_default()
    }

    #[test]
    fn trim_markers_eat_surrounding_whitespace() {
        assert_eq!(
            toks("a  \n{{- .X -}}\n  b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("X".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn a_minus_without_space_is_a_number_not_a_trim_marker() {
        assert_eq!(
            toks("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn closing_braces_inside_a_string_do_not_end_the_action() {
        assert_eq!(
            toks(r#"{{"}}"}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Str("}}".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_vanish_and_may_trim() {
        assert_eq!(
            toks("a {{- /* hi */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
    }

    #[test]
    fn an_unclosed_action_is_an_error() {
        let error = lex("{{ .Prompt ").err().map(|e| e.message);
        assert_eq!(error.as_deref(), Some("unclosed action"));
    }
}
