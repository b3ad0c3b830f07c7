//! Thinking: Ollama's `think` setting as templates see it, and the streaming parser that takes
//! a model's reasoning out of its text (`<think>…</think>`, or whatever tags the template
//! puts around `.Thinking`), so that `content` stays clean and the reasoning goes to
//! `thinking`. The behaviour follows Ollama's `thinking.Parser`; text already unambiguous is
//! released at once, and only what may still be a tag is held back.

use serde_json::Value;

/// The request's `think`, resolved for a model: what templates read as `.Think`,
/// `.ThinkLevel` and `.IsThinkSet`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Think {
    pub enabled: bool,
    pub level: String,
    pub is_set: bool,
}

impl Think {
    /// From a validated `think` value; for a model that thinks, an absent `think` means
    /// thinking on, as with Ollama.
    pub fn resolve(value: Option<&Value>, model_thinks: bool) -> Think {
        match value {
            None | Some(Value::Null) if model_thinks => Think::on("medium"),
            None | Some(Value::Null) => Think::default(),
            Some(Value::Bool(true)) => Think::on("medium"),
            Some(Value::String(s)) if s == "true" => Think::on("medium"),
            Some(Value::String(s)) if matches!(s.as_str(), "high" | "medium" | "low" | "max") => {
                Think::on(s)
            }
            Some(_) => Think {
                enabled: false,
                level: String::new(),
                is_set: true,
            },
        }
    }

    /// `.Think`, `.ThinkLevel` and `.IsThinkSet` for a Go template, the other values empty.
    pub fn template_values(&self) -> crate::template::Values {
        crate::template::Values {
            think: self.enabled,
            think_level: self.level.clone(),
            is_think_set: self.is_set,
            ..crate::template::Values::default()
        }
    }

    /// `enable_thinking` for a GGUF chat template: set only when the request (or the model's
    /// default) set `think`.
    pub fn enable_thinking(&self) -> Option<bool> {
        self.is_set.then_some(self.enabled)
    }

    fn on(level: &str) -> Think {
        Think {
            enabled: true,
            level: level.to_string(),
            is_set: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace yet: the reply may still open with the tag.
    LookingForOpening,
    /// After the opening tag, skipping the whitespace before the reasoning.
    SkippingWhitespaceAfterOpening,
    Thinking,
    /// After the closing tag, skipping the whitespace before the answer.
    SkippingWhitespaceAfterClosing,
    Done,
}

/// Splits a reply, as it streams, into reasoning and answer.
#[derive(Clone, Debug)]
pub struct Parser {
    opening: String,
    closing: String,
    state: State,
    held: String,
}

/// One step's output: reasoning and answer text that can be sent now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub thinking: String,
    pub content: String,
}

impl Parser {
    pub fn new(opening: &str, closing: &str) -> Parser {
        Parser {
            opening: opening.to_string(),
            closing: closing.to_string(),
            state: State::LookingForOpening,
            held: String::new(),
        }
    }

    /// For a prompt that already ends with the opening tag (the template opened the
    /// reasoning for the model): the reply starts inside it.
    pub fn prompt_ends_with_opening(&mut self, prompt: &str) {
        if prompt.trim_end().ends_with(&self.opening) {
            let opening = self.opening.clone();
            self.add(&opening);
        }
    }

    /// Takes the next piece of the reply.
    pub fn add(&mut self, text: &str) -> Split {
        self.held.push_str(text);
        let mut split = Split::default();
        while self.step(&mut split) {}
        split
    }

    /// The reply ended: whatever is held goes where it was heading (a reply that never
    /// closes its reasoning is all reasoning; a partial opening tag is answer text).
    pub fn finish(&mut self) -> Split {
        let held = std::mem::take(&mut self.held);
        match self.state {
            State::Thinking | State::SkippingWhitespaceAfterOpening => Split {
                thinking: held,
                content: String::new(),
            },
            State::LookingForOpening if held.trim().is_empty() => Split::default(),
            _ => Split {
                thinking: String::new(),
                content: held,
            },
        }
    }

    /// One state transition; true when another may follow on the held text.
    fn step(&mut self, split: &mut Split) -> bool {
        match self.state {
            State::LookingForOpening => {
                let trimmed = self.held.trim_start();
                if let Some(after) = trimmed.strip_prefix(self.opening.as_str()) {
                    let after = after.trim_start().to_string();
                    self.state = if after.is_empty() {
                        State::SkippingWhitespaceAfterOpening
                    } else {
                        State::Thinking
                    };
                    self.held = after;
                    true
                } else if trimmed.is_empty() || self.opening.starts_with(trimmed) {
                    // Whitespace, or the start of the tag: wait for more.
                    false
                } else {
                    // No reasoning: the reply is all answer, its whitespace included.
                    self.state = State::Done;
                    split.content.push_str(&std::mem::take(&mut self.held));
                    false
                }
            }
            State::SkippingWhitespaceAfterOpening => {
                let trimmed = self.held.trim_start().to_string();
                self.held = trimmed;
                if self.held.is_empty() {
                    false
                } else {
                    self.state = State::Thinking;
                    true
                }
            }
            State::Thinking => {
                if let Some(at) = self.held.find(self.closing.as_str()) {
                    split.thinking.push_str(&self.held[..at]);
                    let rest = self.held[at + self.closing.len()..]
                        .trim_start()
                        .to_string();
                    self.state = if rest.is_empty() {
                        State::SkippingWhitespaceAfterClosing
                    } else {
                        State::Done
                    };
                    split.content.push_str(&rest);
                    self.held.clear();
                } else {
                    // Hold back only a tail that may be the start of the closing tag.
                    let keep = tag_prefix_overlap(&self.held, &self.closing);
                    let send = self.held.len() - keep;
                    split.thinking.push_str(&self.held[..send]);
                    self.held.drain(..send);
                }
                false
            }
            State::SkippingWhitespaceAfterClosing => {
                let trimmed = self.held.trim_start().to_string();
                self.held.clear();
                if !trimmed.is_empty() {
                    self.state = State::Done;
                    split.content.push_str(&trimmed);
                }
                false
            }
            State::Done => {
                split.content.push_str(&std::mem::take(&mut self.held));
                false
            }
        }
    }
}

/// The length of the longest suffix of `text` that is a proper start of `tag` (a char
/// boundary in both).
fn tag_prefix_overlap(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            tag.is_char_boundary(n)
                && text.is_char_boundary(text.len() - n)
                && text.ends_with(&tag[..n])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one by one and joins what comes out, the end included.
    fn run(parser: &mut Parser, pieces: &[&str]) -> (String, String) {
        let (mut thinking, mut content) = (String::new(), String::new());
        for piece in pieces {
            let split = parser.add(piece);
            thinking.push_str(&split.thinking);
            content.push_str(&split.content);
        }
        let split = parser.finish();
        thinking.push_str(&split.thinking);
        content.push_str(&split.content);
        (thinking, content)
    }

    fn think_tags() -> Parser {
        Parser::new("<think>", "</think>")
    }

    #[test]
    fn reasoning_and_answer_are_split_with_the_whitespace_between_them_dropped() {
        let (thinking, content) = run(
            &mut think_tags(),
            &["<think>\nLet me see.\n</think>\n\nParis."],
        );
        assert_eq!(thinking, "Let me see.\n");
        assert_eq!(content, "Paris.");
    }

    #[test]
    fn tags_split_across_chunks_are_recognised() {
        let pieces = [
            "  <th", "ink", ">", "  a", "b</", "thi", "nk>", " ", "\n", "answer", " end",
        ];
        let mut parser = think_tags();
        let (thinking, content) = run(&mut parser, &pieces);
        assert_eq!(thinking, "ab");
        assert_eq!(content, "answer end");
    }

    #[test]
    fn text_is_released_as_soon_as_it_cannot_be_a_tag() {
        let mut parser = think_tags();
        assert_eq!(parser.add("<think>"), Split::default());
        let split = parser.add("step one <");
        assert_eq!(split.thinking, "step one ");
        let split = parser.add("b> still");
        assert_eq!(split.thinking, "<b> still");
        let split = parser.add("</think>Answer");
        assert_eq!(split.content, "Answer");
    }

    #[test]
    fn a_reply_that_never_closes_its_reasoning_is_all_reasoning() {
        let (thinking, content) = run(
            &mut think_tags(),
            &["<think>", "hmm, let me", " think </th"],
        );
        assert_eq!(thinking, "hmm, let me think </th");
        assert_eq!(content, "");
    }

    #[test]
    fn a_reply_without_the_opening_tag_is_all_answer() {
        let (thinking, content) = run(&mut think_tags(), &["  Hello", " <think>x</think>"]);
        assert_eq!(thinking, "");
        assert_eq!(content, "  Hello <think>x</think>");
        let (thinking, content) = run(&mut think_tags(), &["<th"]);
        assert_eq!((thinking.as_str(), content.as_str()), ("", "<th"));
    }

    #[test]
    fn a_prompt_that_opens_the_reasoning_starts_the_reply_inside_it() {
        let mut parser = think_tags();
        parser.prompt_ends_with_opening("<|im_start|>assistant\n<think>\n");
        let (thinking, content) = run(&mut parser, &["I reason", "</think>It is 4."]);
        assert_eq!(thinking, "I reason");
        assert_eq!(content, "It is 4.");
    }

    #[test]
    fn multibyte_text_near_a_partial_tag_is_split_on_char_boundaries() {
        let mut parser = Parser::new("«t»", "«/t»");
        let (thinking, content) = run(&mut parser, &["«t»é«", "/", "t»ü"]);
        assert_eq!(thinking, "é");
        assert_eq!(content, "ü");
    }

    #[test]
    fn think_values_resolve_as_ollama_sets_them_for_templates() {
        assert_eq!(Think::resolve(None, true), Think::on("medium"));
        assert_eq!(Think::resolve(None, false), Think::default());
        assert_eq!(
            Think::resolve(Some(&Value::Bool(true)), false),
            Think::on("medium")
        );
        assert_eq!(
            Think::resolve(Some(&serde_json::json!("high")), true),
            Think::on("high")
        );
        let off = Think::resolve(Some(&Value::Bool(false)), true);
        assert_eq!((off.enabled, off.is_set), (false, true));
    }
}
