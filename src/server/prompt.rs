//! Prompt tokens for a request: a Modelfile/request TEMPLATE is a Go template rendered here;
//! without one (or where Ollama prefers the GGUF's template, [`ChatMode`]) the model's own GGUF
//! chat template is applied by the engine: by llama.cpp's chat code where the engine has it
//! (Ollama's native path, with tools, thinking and its format's reply parser), else by
//! rollama's Jinja; `raw` prompts go in as they are. Chat history that does not fit `num_ctx`
//! loses its oldest turns first, keeping the system prompt and the latest message.

use super::error::ApiError;
use super::images::tagged;
use super::inference::{Window, PROMPT_TOO_LONG};
use super::thinking::Think;
use crate::engine::{images_of, ChatInput, ChatMessage, Engine, Image, NativeChat};
use crate::template::{Message as TemplateMessage, Template, Values};
use std::sync::Arc;

/// How the prompt is assembled for one model and request.
pub enum PromptFormat {
    /// A Go template (from the request or the model's TEMPLATE layer).
    Go(Template),
    /// The GGUF `tokenizer.chat_template`, applied by the engine.
    ModelChatTemplate,
    /// No template at all: Ollama's default `{{ .Prompt }}`.
    Plain,
}

impl PromptFormat {
    /// `template` is the model's (or request's) Go template, and `mode` Ollama's choice
    /// between it and the GGUF's own chat template.
    pub fn choose(
        template: Option<&str>,
        mode: ChatMode,
        has_chat_template: bool,
    ) -> Result<PromptFormat, ApiError> {
        // The native path needs a GGUF template; without one the Go template is used anyway.
        match template.filter(|text| !text.is_empty()) {
            Some(text) if mode == ChatMode::Rendered || !has_chat_template => Template::parse(text)
                .map(PromptFormat::Go)
                .map_err(|e| ApiError::bad_request(format!("template error: {e}"))),
            _ if has_chat_template => Ok(PromptFormat::ModelChatTemplate),
            _ => Ok(PromptFormat::Plain),
        }
    }
}

/// Ollama's two chat paths (`chatModeForModel`): `Rendered` with the model's Go TEMPLATE,
/// `Native` with the GGUF's Jinja template through llama.cpp's chat code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatMode {
    Rendered,
    Native,
}

/// The variable that forces the choice: true (or any value that is not a boolean) renders
/// with the Go TEMPLATE whenever the model has one, false always uses the GGUF's template.
pub const OLLAMA_GO_TEMPLATE: &str = "OLLAMA_GO_TEMPLATE";

impl ChatMode {
    /// Ollama's rule: a model with a Go TEMPLATE layer renders with it, unless
    /// `OLLAMA_GO_TEMPLATE` is false, or (the variable unset) its GGUF template can do more
    /// ([`prefer_chat_template`]). A model without a TEMPLATE layer is native.
    pub fn choose(go_template: Option<&str>, chat_template: Option<&str>) -> ChatMode {
        let Some(go) = go_template else {
            return ChatMode::Native;
        };
        let set = crate::env::var(OLLAMA_GO_TEMPLATE);
        let use_go = if set.trim().is_empty() {
            !chat_template.is_some_and(|jinja| prefer_chat_template(jinja, go))
        } else {
            parse_go_bool(set.trim()).unwrap_or(true)
        };
        if use_go {
            ChatMode::Rendered
        } else {
            ChatMode::Native
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Capabilities a GGUF Jinja template shows, by Ollama's string rules
/// (`chatTemplateCapabilities`): `tools`, `thinking`.
pub fn chat_template_capabilities(template: &str) -> Vec<&'static str> {
    let mut capabilities = Vec::new();
    if template.is_empty() {
        return capabilities;
    }
    if chat_template_has_tools(template) {
        capabilities.push("tools");
    }
    let tags = template.contains("<think>") && template.contains("</think>");
    let split = (template.contains("content.split('</think>')")
        || template.contains("content.split(\"</think>\")"))
        && !template.contains("reasoning_content")
        && !template.contains("<SPECIAL_12>");
    if tags || split {
        capabilities.push("thinking");
    }
    capabilities
}

fn chat_template_has_tools(template: &str) -> bool {
    template.contains("tools") || template.contains("tool_call")
}

/// Capabilities of a Go template, as Ollama reads them from its variables.
fn go_template_capabilities(template: &str) -> Vec<&'static str> {
    let mut capabilities = Vec::new();
    if template.contains(".Tools") {
        capabilities.push("tools");
    }
    if template.contains(".Thinking") || template.contains(".Think") {
        capabilities.push("thinking");
    }
    capabilities
}

/// Ollama's `shouldPreferChatTemplate`: the GGUF's template wins when it can do more than the
/// Go template (and does not lose a tool round trip the Go template has), or when both have
/// tools and only the GGUF's carries a whole round trip.
pub fn prefer_chat_template(chat_template: &str, go_template: &str) -> bool {
    let jinja = chat_template_capabilities(chat_template);
    let go = go_template_capabilities(go_template);
    if jinja.len() > go.len() {
        return !go_template_round_trip(go_template) || chat_template_round_trip(chat_template);
    }
    let same = jinja.len() == go.len() && jinja.iter().all(|c| go.contains(c));
    same && jinja.contains(&"tools")
        && chat_template_round_trip(chat_template)
        && !go_template_round_trip(go_template)
}

fn go_template_round_trip(template: &str) -> bool {
    template.contains(".Tools")
        && template.contains(".ToolCalls")
        && ["eq .Role \"tool\"", "tool_response", "TOOL_RESULTS"]
            .iter()
            .any(|marker| template.contains(marker))
}

fn chat_template_round_trip(template: &str) -> bool {
    chat_template_has_tools(template)
        && (template.contains("tool_calls") || template.contains("assistant_tool_call"))
        && [
            "tool_response",
            "tool_results",
            "role'] == 'tool'",
            "role\"] == \"tool\"",
            "role'] == \"tool\"",
            "role\"] == 'tool'",
            "message.role == 'tool'",
            "message.role == \"tool\"",
            "ipython",
        ]
        .iter()
        .any(|marker| template.contains(marker))
}

/// The GGUF's template applied to `input` (its messages and settings): by llama.cpp's chat
/// code where the engine has it (as Ollama's native path asks llama-server to), with what the
/// chat format needs besides the tokens; else by rollama's Jinja.
async fn render_model_template(
    engine: &Engine,
    input: &ChatInput,
) -> Result<(Vec<u32>, Option<NativeChat>), ApiError> {
    match engine.render_native(input).await {
        Ok(Some(mut native)) => Ok((std::mem::take(&mut native.tokens), Some(native))),
        Ok(None) => Ok((
            engine
                .tokenize_chat(&input.messages, input.enable_thinking)
                .await
                .map_err(engine_error)?,
            None,
        )),
        Err(crate::engine::EngineError::Unsupported(message)) => {
            Err(ApiError::bad_request(message))
        }
        Err(e) => Err(engine_error(e)),
    }
}

fn template_messages(messages: &[ChatMessage]) -> Vec<TemplateMessage> {
    messages
        .iter()
        .map(|m| TemplateMessage {
            role: m.role.clone(),
            content: tagged(&m.content, m.images.len()),
            tool_calls: m.tool_calls.clone(),
            tool_name: m.tool_name.clone(),
            tool_call_id: m.tool_call_id.clone(),
            thinking: m.thinking.clone(),
        })
        .collect()
}

/// Renders a Go template and tokenizes the text (with BOS when the model wants one); the
/// text holds a media marker for each of `images`.
async fn tokenize_go(
    engine: &Engine,
    template: &Template,
    values: &Values,
    images: &[Arc<Image>],
) -> Result<Vec<u32>, ApiError> {
    let text = template
        .execute(values)
        .map_err(|e| ApiError::internal(format!("template error: {e}")))?;
    engine
        .tokenize_media(&text, images, true)
        .await
        .map_err(engine_error)
}

/// An engine's refusal of the request's content (an unreadable image, a template it cannot
/// render) is the request's fault; anything else is the server's.
fn engine_error(e: crate::engine::EngineError) -> ApiError {
    match e {
        crate::engine::EngineError::Unsupported(message) => ApiError::bad_request(message),
        other => ApiError::internal(other.to_string()),
    }
}

/// Tokens for `/api/generate`; `images` go with the prompt.
pub async fn generate_tokens(
    engine: &Engine,
    format: &PromptFormat,
    system: &str,
    prompt: &str,
    suffix: &str,
    images: &[Arc<Image>],
    think: &Think,
) -> Result<Vec<u32>, ApiError> {
    match format {
        PromptFormat::Go(template) => {
            // The template module turns `system` and `prompt` into messages for templates
            // that range over `.Messages`, as Ollama's generate handler does.
            let values = Values {
                system: system.to_string(),
                prompt: tagged(prompt, images.len()),
                suffix: suffix.to_string(),
                ..think.template_values()
            };
            tokenize_go(engine, template, &values, images).await
        }
        PromptFormat::ModelChatTemplate => {
            let mut messages = Vec::new();
            if !system.is_empty() {
                messages.push(ChatMessage::new("system", system));
            }
            messages.push(ChatMessage {
                images: images.to_vec(),
                ..ChatMessage::new("user", prompt)
            });
            let input = ChatInput {
                messages,
                enable_thinking: think.enable_thinking(),
                ..ChatInput::default()
            };
            Ok(render_model_template(engine, &input).await?.0)
        }
        PromptFormat::Plain => engine
            .tokenize_media(&tagged(prompt, images.len()), images, true)
            .await
            .map_err(engine_error),
    }
}

/// A chat's prompt: its tokens, whether old turns were dropped to fit, and what llama.cpp's
/// chat code made of it (on the native path).
pub struct ChatPrompt {
    pub tokens: Vec<u32>,
    pub truncated: bool,
    pub native: Option<NativeChat>,
}

/// Tokens for `/api/chat`, dropping the oldest turns until the prompt fits `num_ctx`.
/// `settings` holds what the request asks of the template besides its messages and `think`
/// (tools, `tool_choice`, a reasoning level, a JSON schema).
pub async fn chat_tokens(
    engine: &Engine,
    format: &PromptFormat,
    settings: &ChatInput,
    mut messages: Vec<ChatMessage>,
    window: Window,
    think: &Think,
) -> Result<ChatPrompt, ApiError> {
    let mut truncated = false;
    loop {
        let (ids, native) = render_chat(engine, format, settings, &messages, think).await?;
        if ids.len() < window.num_ctx {
            return Ok(ChatPrompt {
                tokens: ids,
                truncated,
                native,
            });
        }
        if !window.truncate {
            return Err(ApiError::bad_request(PROMPT_TOO_LONG));
        }
        truncated = true;
        // Drop the oldest message that is neither a system message nor the last one.
        let last = messages.len().saturating_sub(1);
        match messages
            .iter()
            .enumerate()
            .position(|(i, m)| i < last && m.role != "system")
        {
            Some(oldest) => {
                messages.remove(oldest);
            }
            None => {
                let (tokens, truncated) = window.fit(ids)?;
                return Ok(ChatPrompt {
                    tokens,
                    truncated,
                    native,
                });
            }
        }
    }
}

async fn render_chat(
    engine: &Engine,
    format: &PromptFormat,
    settings: &ChatInput,
    messages: &[ChatMessage],
    think: &Think,
) -> Result<(Vec<u32>, Option<NativeChat>), ApiError> {
    match format {
        PromptFormat::Go(template) => {
            let values = Values {
                messages: template_messages(messages),
                tools: settings.tools.clone(),
                ..think.template_values()
            };
            let images = images_of(messages);
            Ok((tokenize_go(engine, template, &values, &images).await?, None))
        }
        PromptFormat::ModelChatTemplate => {
            let input = ChatInput {
                messages: messages.to_vec(),
                enable_thinking: think.enable_thinking(),
                ..settings.clone()
            };
            render_model_template(engine, &input).await
        }
        PromptFormat::Plain => {
            let last_user = messages.iter().rev().find(|m| m.role == "user");
            let (text, images) = match last_user {
                Some(m) => (tagged(&m.content, m.images.len()), m.images.clone()),
                None => (String::new(), Vec::new()),
            };
            Ok((
                engine
                    .tokenize_media(&text, &images, true)
                    .await
                    .map_err(engine_error)?,
                None,
            ))
        }
    }
}
