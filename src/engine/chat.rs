//! llama.cpp's own chat code, through rollama's C++ shim (`chat_shim.cpp`): a GGUF's Jinja
//! chat template rendered with messages, tools and thinking as llama-server renders it
//! (llama.cpp's Jinja engine and its per-model fixes), the grammar that constrains tool calls
//! or a JSON schema, and the parser that splits a reply into content, reasoning and tool
//! calls in whichever of llama.cpp's chat formats the template implies.
//!
//! Every call crosses the boundary as JSON text; the shim catches C++ exceptions and returns
//! their message, which becomes an `Err` here. This is the only file with `unsafe` for it.

#![allow(unsafe_code, reason = "the FFI boundary of chat_shim.cpp")]

use super::ParsedReply;
use serde::Deserialize;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::Mutex;

extern "C" {
    fn rollama_chat_log_off();
    fn rollama_chat_string_free(text: *mut c_char);
    fn rollama_chat_templates_new(
        source: *const c_char,
        bos: *const c_char,
        eos: *const c_char,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn rollama_chat_templates_free(templates: *mut c_void);
    fn rollama_chat_templates_apply(
        templates: *const c_void,
        request: *const c_char,
        out: *mut *mut c_char,
    ) -> c_int;
    fn rollama_chat_parser_new(syntax: *const c_char, error: *mut *mut c_char) -> *mut c_void;
    fn rollama_chat_parser_free(parser: *mut c_void);
    fn rollama_chat_parser_parse(
        parser: *const c_void,
        text: *const c_char,
        partial: bool,
        out: *mut *mut c_char,
    ) -> c_int;
}

/// Silences the chat code's own log (its warnings about templates), once, before any use.
pub fn silence_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: no arguments; pausing llama.cpp's log worker is done once, before the chat code
    // runs on any thread.
    ONCE.call_once(|| unsafe { rollama_chat_log_off() });
}

/// Takes ownership of a string the shim allocated.
fn take_string(text: *mut c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the shim returns NUL-terminated strings from malloc, which we read once and
    // free with its own function.
    let owned = unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `text` came from the shim and is freed exactly once.
    unsafe { rollama_chat_string_free(text) };
    Some(owned)
}

/// Text for C: an interior NUL (which no template, message or reply should carry) is an
/// error rather than a truncation.
fn c_text(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| "text with a NUL character cannot be rendered".to_string())
}

/// Runs one shim call that answers in `out` with 0 (JSON) or non-zero (an error message).
fn call(run: impl FnOnce(*mut *mut c_char) -> c_int) -> Result<String, String> {
    let mut out: *mut c_char = std::ptr::null_mut();
    let status = run(&mut out);
    let text = take_string(out);
    match (status, text) {
        (0, Some(text)) => Ok(text),
        (_, Some(message)) => Err(message),
        (_, None) => Err("llama.cpp's chat code ran out of memory".into()),
    }
}

/// A model's chat template, parsed once.
pub struct ChatTemplates {
    raw: NonNull<c_void>,
    /// llama.cpp's Jinja runtime is not documented as safe to run on two threads at once.
    lock: Mutex<()>,
}

// SAFETY: the templates object is owned here alone, never mutated after it is made, and every
// call into it holds `lock`.
unsafe impl Send for ChatTemplates {}
// SAFETY: as above; shared references only reach it through `lock`.
unsafe impl Sync for ChatTemplates {}

impl Drop for ChatTemplates {
    fn drop(&mut self) {
        // SAFETY: made by rollama_chat_templates_new, freed once.
        unsafe { rollama_chat_templates_free(self.raw.as_ptr()) };
    }
}

/// What rendering a chat gives: the prompt and what generation and parsing need.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Rendered {
    pub prompt: String,
    pub format: i64,
    pub format_name: String,
    /// A GBNF grammar for the reply (tool calls, or the JSON schema), maybe empty.
    pub grammar: String,
    /// The grammar applies only from a trigger on.
    pub grammar_lazy: bool,
    pub trigger_patterns: Vec<String>,
    /// Trigger texts that are meant as single tokens.
    pub trigger_tokens: Vec<String>,
    pub generation_prompt: String,
    /// The reply parser (llama.cpp's PEG arena, serialised).
    pub parser: String,
    /// Tokens whose text must appear in the output (special tokens of the format).
    pub preserved_tokens: Vec<String>,
    pub additional_stops: Vec<String>,
}

impl ChatTemplates {
    /// Parses `source` with the model's BOS and EOS texts.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplates, String> {
        let (source, bos, eos) = (c_text(source)?, c_text(bos)?, c_text(eos)?);
        let mut error: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid NUL-terminated strings; `error` receives a shim string or stays null.
        let raw = unsafe {
            rollama_chat_templates_new(source.as_ptr(), bos.as_ptr(), eos.as_ptr(), &mut error)
        };
        let message = take_string(error);
        NonNull::new(raw)
            .map(|raw| ChatTemplates {
                raw,
                lock: Mutex::new(()),
            })
            .ok_or_else(|| message.unwrap_or_else(|| "the chat template cannot be parsed".into()))
    }

    /// Renders a chat: `request` holds `messages` and `tools` in OpenAI's shape,
    /// `tool_choice`, `parallel_tool_calls`, `enable_thinking`, `chat_template_kwargs` and
    /// `json_schema`.
    pub fn apply(&self, request: &serde_json::Value) -> Result<Rendered, String> {
        let request = c_text(&request.to_string())?;
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let text = call(|out| {
            // SAFETY: `raw` is live, `request` a valid string; `out` is written by the shim.
            unsafe { rollama_chat_templates_apply(self.raw.as_ptr(), request.as_ptr(), out) }
        })?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// The parser for the replies to one rendered chat.
pub struct ChatParser {
    raw: NonNull<c_void>,
}

// SAFETY: the parser is owned here alone and only read after it is made (parsing builds its
// own context per call); `&self` calls never mutate it.
unsafe impl Send for ChatParser {}
// SAFETY: as above.
unsafe impl Sync for ChatParser {}

impl Drop for ChatParser {
    fn drop(&mut self) {
        // SAFETY: made by rollama_chat_parser_new, freed once.
        unsafe { rollama_chat_parser_free(self.raw.as_ptr()) };
    }
}

impl ChatParser {
    /// The parser `rendered` calls for; `parse_reasoning` moves reasoning out of the content.
    pub fn new(rendered: &Rendered, parse_reasoning: bool) -> Result<ChatParser, String> {
        let syntax = serde_json::json!({
            "format": rendered.format,
            "parser": rendered.parser,
            "generation_prompt": rendered.generation_prompt,
            "parse_reasoning": parse_reasoning,
            "parse_tool_calls": true,
        });
        let syntax = c_text(&syntax.to_string())?;
        let mut error: *mut c_char = std::ptr::null_mut();
        // SAFETY: a valid string; `error` receives a shim string or stays null.
        let raw = unsafe { rollama_chat_parser_new(syntax.as_ptr(), &mut error) };
        let message = take_string(error);
        NonNull::new(raw)
            .map(|raw| ChatParser { raw })
            .ok_or_else(|| message.unwrap_or_else(|| "the reply parser cannot be made".into()))
    }
}

impl super::ReplyParser for ChatParser {
    /// The reply so far (`partial`: more may follow) or the whole reply, split.
    fn parse(&self, text: &str, partial: bool) -> Result<ParsedReply, String> {
        let text = c_text(text)?;
        let answer = call(|out| {
            // SAFETY: `raw` is live, `text` a valid string; `out` is written by the shim.
            unsafe { rollama_chat_parser_parse(self.raw.as_ptr(), text.as_ptr(), partial, out) }
        })?;
        serde_json::from_str(&answer).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ReplyParser;
    use serde_json::json;

    /// A Qwen2.5-style template with tools, written for these tests.
    pub const QWEN_STYLE: &str = include_str!("../../tests/data/qwen-style-tools.jinja");

    fn weather_tool() -> serde_json::Value {
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
    }

    #[test]
    fn a_broken_template_is_an_error_not_an_abort() {
        assert!(ChatTemplates::new("{% if %}", "", "").is_err());
        assert!(ChatTemplates::new("", "", "").is_err());
    }

    #[test]
    fn the_qwen_style_template_takes_tools_and_parses_their_calls() {
        let templates = ChatTemplates::new(QWEN_STYLE, "", "<|im_end|>").unwrap();
        let rendered = templates
            .apply(
                &json!({"messages": [{"role": "user", "content": "Weather in Paris?"}],
                           "tools": weather_tool()}),
            )
            .unwrap();
        assert!(
            rendered.prompt.contains("get_weather"),
            "{}",
            rendered.prompt
        );
        assert!(
            rendered.prompt.ends_with("<|im_start|>assistant\n"),
            "{}",
            rendered.prompt
        );
        let parser = ChatParser::new(&rendered, true).unwrap();
        let reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        let parsed = parser.parse(reply, false).unwrap();
        assert_eq!(parsed.tool_calls.len(), 1, "{parsed:?}");
        assert_eq!(parsed.tool_calls[0].name, "get_weather");
        let arguments: serde_json::Value =
            serde_json::from_str(&parsed.tool_calls[0].arguments).unwrap();
        assert_eq!(arguments, json!({"city": "Paris"}));
        assert_eq!(parsed.content, "");
        // Part of the opening tag is not content yet.
        let partial = parser.parse("<tool_c", true).unwrap();
        assert_eq!(partial.content, "", "{partial:?}");
    }

    #[test]
    fn a_json_schema_becomes_a_grammar() {
        let templates = ChatTemplates::new(QWEN_STYLE, "", "<|im_end|>").unwrap();
        let rendered = templates
            .apply(&json!({"messages": [{"role": "user", "content": "Hi"}],
                           "json_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}))
            .unwrap();
        assert!(rendered.grammar.contains("root"), "{}", rendered.grammar);
        assert!(!rendered.grammar_lazy);
    }
}
