//! The Jinja chat templates GGUF files carry (`tokenizer.chat_template`), rendered the way
//! Hugging Face's `apply_chat_template` renders them: `trim_blocks` and `lstrip_blocks` on,
//! Python string methods (`.strip()`, `.startswith()`), `raise_exception`, `strftime_now`,
//! and `bos_token`/`eos_token` as variables. Used by the llama.cpp engine, which has no
//! Jinja of its own.

use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::{json, Value as Json};

/// One chat turn as Jinja templates read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JinjaMessage {
    pub role: String,
    pub content: String,
}

/// What a template sees besides the messages.
#[derive(Debug, Clone, Default)]
pub struct JinjaContext {
    pub bos_token: String,
    pub eos_token: String,
    /// Open the assistant's turn at the end.
    pub add_generation_prompt: bool,
    /// The request's `think`, for templates that read `enable_thinking` (Qwen3's).
    pub enable_thinking: Option<bool>,
}

fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(format: String) -> String {
    chrono::Local::now().format(&format).to_string()
}

/// Renders `source` with `messages`; errors name the template's own complaint.
pub fn render_chat(
    source: &str,
    messages: &[JinjaMessage],
    context: &JinjaContext,
) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env.add_template("chat", source)
        .map_err(|e| format!("chat template error: {e}"))?;
    let messages: Vec<Json> = messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut values = json!({
        "messages": messages,
        "bos_token": context.bos_token,
        "eos_token": context.eos_token,
        "add_generation_prompt": context.add_generation_prompt,
    });
    if let Some(enable) = context.enable_thinking {
        values["enable_thinking"] = json!(enable);
    }
    env.get_template("chat")
        .and_then(|t| t.render(Value::from_serialize(&values)))
        .map_err(|e| format!("chat template error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn user(text: &str) -> JinjaMessage {
        JinjaMessage {
            role: "user".into(),
            content: text.into(),
        }
    }

    #[test]
    fn renders_chatml_with_the_assistant_turn_opened() {
        let context = JinjaContext {
            add_generation_prompt: true,
            ..JinjaContext::default()
        };
        assert_eq!(
            render_chat(CHATML, &[user("hi")], &context).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_bos_and_exceptions_work_as_in_transformers() {
        let source = "{{ bos_token }}{% if messages[0]['role'] != 'user' %}{{ raise_exception('roles must start with user') }}{% endif %}{% for m in messages %}{{ m['content'] | trim }}|{{ m['content'].strip().startswith('a') }}\n{% endfor %}";
        let context = JinjaContext {
            bos_token: "<bos>".into(),
            ..JinjaContext::default()
        };
        assert_eq!(
            render_chat(source, &[user("  abc ")], &context).unwrap(),
            "<bos>abc|True\n"
        );
        let system = JinjaMessage {
            role: "system".into(),
            content: "x".into(),
        };
        let error = render_chat(source, &[system], &context).unwrap_err();
        assert!(error.contains("roles must start with user"), "{error}");
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        let error = render_chat("{% for %}", &[user("x")], &JinjaContext::default()).unwrap_err();
        assert!(error.starts_with("chat template error"), "{error}");
    }
}
