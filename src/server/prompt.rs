//! Prompt tokens for a request: a Modelfile/request TEMPLATE is a Go template rendered here;
//! without one the model's own GGUF chat template is applied by the engine; `raw` prompts go
//! in as they are. Chat history that does not fit `num_ctx` loses its oldest turns first,
//! keeping the system prompt and the latest message.

use super::error::ApiError;
use super::inference::{Window, PROMPT_TOO_LONG};
use super::thinking::Think;
use crate::engine::{ChatMessage, Engine};
use crate::template::{Message as TemplateMessage, Template, Values};

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
    pub fn choose(
        template: Option<&str>,
        has_chat_template: bool,
    ) -> Result<PromptFormat, ApiError> {
        match template {
            Some(text) if !text.is_empty() => Template::parse(text)
                .map(PromptFormat::Go)
                .map_err(|e| ApiError::bad_request(format!("template error: {e}"))),
            _ if has_chat_template => Ok(PromptFormat::ModelChatTemplate),
            _ => Ok(PromptFormat::Plain),
        }
    }
}

fn template_messages(messages: &[ChatMessage]) -> Vec<TemplateMessage> {
    messages
        .iter()
        .map(|m| TemplateMessage {
            role: m.role.clone(),
            content: m.content.clone(),
            tool_calls: m.tool_calls.clone(),
            tool_name: m.tool_name.clone(),
            tool_call_id: m.tool_call_id.clone(),
            thinking: m.thinking.clone(),
        })
        .collect()
}

/// Renders a Go template and tokenizes the text (with BOS when the model wants one).
async fn tokenize_go(
    engine: &Engine,
    template: &Template,
    values: &Values,
) -> Result<Vec<u32>, ApiError> {
    let text = template
        .execute(values)
        .map_err(|e| ApiError::internal(format!("template error: {e}")))?;
    engine
        .tokenize_text(&text, true)
        .await
        .map_err(engine_error)
}

fn engine_error(e: crate::engine::EngineError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Tokens for `/api/generate`.
pub async fn generate_tokens(
    engine: &Engine,
    format: &PromptFormat,
    system: &str,
    prompt: &str,
    suffix: &str,
    think: &Think,
) -> Result<Vec<u32>, ApiError> {
    match format {
        PromptFormat::Go(template) => {
            // The template module turns `system` and `prompt` into messages for templates
            // that range over `.Messages`, as Ollama's generate handler does.
            let values = Values {
                system: system.to_string(),
                prompt: prompt.to_string(),
                suffix: suffix.to_string(),
                ..think.template_values()
            };
            tokenize_go(engine, template, &values).await
        }
        PromptFormat::ModelChatTemplate => {
            let mut messages = Vec::new();
            if !system.is_empty() {
                messages.push(ChatMessage::new("system", system));
            }
            messages.push(ChatMessage::new("user", prompt));
            engine
                .tokenize_chat(&messages, think.enable_thinking())
                .await
                .map_err(engine_error)
        }
        PromptFormat::Plain => engine
            .tokenize_text(prompt, true)
            .await
            .map_err(engine_error),
    }
}

/// Tokens for `/api/chat`, dropping the oldest turns until the prompt fits `num_ctx`; the
/// flag says whether anything was dropped.
pub async fn chat_tokens(
    engine: &Engine,
    format: &PromptFormat,
    tools: &[serde_json::Value],
    mut messages: Vec<ChatMessage>,
    window: Window,
    think: &Think,
) -> Result<(Vec<u32>, bool), ApiError> {
    let mut truncated = false;
    loop {
        let ids = render_chat(engine, format, tools, &messages, think).await?;
        if ids.len() < window.num_ctx {
            return Ok((ids, truncated));
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
            None => return window.fit(ids),
        }
    }
}

async fn render_chat(
    engine: &Engine,
    format: &PromptFormat,
    tools: &[serde_json::Value],
    messages: &[ChatMessage],
    think: &Think,
) -> Result<Vec<u32>, ApiError> {
    match format {
        PromptFormat::Go(template) => {
            let values = Values {
                messages: template_messages(messages),
                tools: tools.to_vec(),
                ..think.template_values()
            };
            tokenize_go(engine, template, &values).await
        }
        PromptFormat::ModelChatTemplate => engine
            .tokenize_chat(messages, think.enable_thinking())
            .await
            .map_err(engine_error),
        PromptFormat::Plain => {
            let last_user = messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.as_str())
                .unwrap_or("");
            engine
                .tokenize_text(last_user, true)
                .await
                .map_err(engine_error)
        }
    }
}
