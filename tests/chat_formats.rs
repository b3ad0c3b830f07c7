//! llama.cpp's chat parsers through rollama's shim (`src/engine/chat.rs`), on replies written
//! as each model family writes them: the real chat templates of those families (from the
//! llama.cpp tree scripts/bench/build-llama-server.sh fetched: its `models/templates`) render
//! a chat with one tool, and the parser their format implies splits the recorded reply into
//! content, reasoning and tool calls, whole and while it streams (every partial parse's
//! content and reasoning grow into the final ones, so no tag fragment is ever sent).

#![cfg(feature = "llamacpp")]

mod common;

use rollama::engine::chat::{ChatParser, ChatTemplates};
use rollama::engine::ReplyParser;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `models/templates` of the llama.cpp tree beside the llama-server the tests use.
fn templates_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROLLAMA_TEST_CHAT_TEMPLATES") {
        return PathBuf::from(dir);
    }
    let server = common::llama_server::binary();
    // <cache>/llama.cpp-build/bin/llama-server → <cache>/llama.cpp-src/models/templates
    let dir = server
        .ancestors()
        .nth(3)
        .unwrap()
        .join("llama.cpp-src/models/templates");
    assert!(
        dir.is_dir(),
        "{} is missing: scripts/bench/build-llama-server.sh fetches it (scripts/test.sh runs it)",
        dir.display()
    );
    dir
}

/// One family: its template file, BOS and EOS texts, a reply as the family writes it, and
/// what the reply holds.
struct Case {
    template: &'static str,
    bos: &'static str,
    eos: &'static str,
    reply: &'static str,
    content: &'static str,
    reasoning: &'static str,
    /// (name, arguments) of each call.
    calls: &'static [(&'static str, &'static str)],
}

const PARIS: &[(&str, &str)] = &[("get_weather", r#"{"city": "Paris"}"#)];

const CASES: &[Case] = &[
    Case {
        template: "Qwen-Qwen2.5-7B-Instruct.jinja",
        bos: "",
        eos: "<|im_end|>",
        reply: "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        content: "Let me check.",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        template: "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        bos: "<|begin_of_text|>",
        eos: "<|im_end|>",
        reply: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        template: "meta-llama-Llama-3.1-8B-Instruct.jinja",
        bos: "<|begin_of_text|>",
        eos: "<|eot_id|>",
        reply: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        template: "meta-llama-Llama-3.2-3B-Instruct.jinja",
        bos: "<|begin_of_text|>",
        eos: "<|eot_id|>",
        reply: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        template: "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        bos: "<s>",
        eos: "</s>",
        reply: "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"a1b2c3d4e\"}]",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        template: "unsloth-mistral-Devstral-Small-2507.jinja",
        bos: "<s>",
        eos: "</s>",
        reply: "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        template: "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
        bos: "<s>",
        eos: "</s>",
        reply: "[THINK]The user wants the weather.[/THINK][TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
        content: "",
        reasoning: "The user wants the weather.",
        calls: PARIS,
    },
    Case {
        template: "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        bos: "<｜begin▁of▁sentence｜>",
        eos: "<｜end▁of▁sentence｜>",
        reply: "The user asks for a sum. 2 + 2 = 4.\n</think>\n\nThe answer is 4.",
        content: "The answer is 4.",
        reasoning: "The user asks for a sum. 2 + 2 = 4.",
        calls: &[],
    },
    Case {
        template: "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja",
        bos: "<BOS_TOKEN>",
        eos: "<|END_OF_TURN_TOKEN|>",
        reply: "<|START_THINKING|>I will look the weather up.<|END_THINKING|><|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}\n]<|END_ACTION|>",
        content: "",
        reasoning: "I will look the weather up.",
        calls: PARIS,
    },
    Case {
        template: "ibm-granite-granite-4.0.jinja",
        bos: "",
        eos: "<|end_of_text|>",
        reply: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
    Case {
        // Granite 3.3 thinks between <think> tags (its template renders no tool calls).
        template: "ibm-granite-granite-3.3-2B-Instruct.jinja",
        bos: "",
        eos: "<|end_of_text|>",
        reply: "<think>Paris is in France.</think><response>It is sunny.</response>",
        content: "<response>It is sunny.</response>",
        reasoning: "Paris is in France.",
        calls: &[],
    },
    Case {
        template: "openai-gpt-oss-120b.jinja",
        bos: "<|startoftext|>",
        eos: "<|return|>",
        reply: "<|channel|>analysis<|message|>The user wants the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}",
        content: "",
        reasoning: "The user wants the weather.",
        calls: PARIS,
    },
    Case {
        template: "openai-gpt-oss-120b.jinja",
        bos: "<|startoftext|>",
        eos: "<|return|>",
        reply: "<|channel|>analysis<|message|>A greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hello! How can I help?",
        content: "Hello! How can I help?",
        reasoning: "A greeting.",
        calls: &[],
    },
    Case {
        template: "Qwen-Qwen3-0.6B.jinja",
        bos: "",
        eos: "<|im_end|>",
        reply: "<think>\nThe user wants the weather in Paris.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        content: "",
        reasoning: "The user wants the weather in Paris.",
        calls: PARIS,
    },
    Case {
        template: "Qwen3-Coder.jinja",
        bos: "",
        eos: "<|im_end|>",
        reply: "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
        content: "",
        reasoning: "",
        calls: PARIS,
    },
];

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "description": "The current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}])
}

fn parser_for(case: &Case) -> (ChatParser, String) {
    let source = std::fs::read_to_string(templates_dir().join(case.template)).unwrap();
    let templates = ChatTemplates::new(&source, case.bos, case.eos)
        .unwrap_or_else(|e| panic!("{}: {e}", case.template));
    let rendered = templates
        .apply(&json!({
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": tools(),
            "enable_thinking": true,
        }))
        .unwrap_or_else(|e| panic!("{}: {e}", case.template));
    assert!(
        rendered.prompt.contains("get_weather") || case.calls.is_empty(),
        "{}: the tools reach the template: {}",
        case.template,
        rendered.prompt
    );
    let name = rendered.format_name.clone();
    (ChatParser::new(&rendered, true).unwrap(), name)
}

#[test]
fn each_familys_reply_splits_into_content_reasoning_and_calls() {
    for case in CASES {
        let (parser, format) = parser_for(case);
        let parsed = parser
            .parse(case.reply, false)
            .unwrap_or_else(|e| panic!("{} ({format}): {e}", case.template));
        let what = format!("{} ({format}): {parsed:?}", case.template);
        assert_eq!(parsed.content.trim(), case.content, "{what}");
        assert_eq!(parsed.reasoning_content.trim(), case.reasoning, "{what}");
        assert_eq!(parsed.tool_calls.len(), case.calls.len(), "{what}");
        for (call, (name, arguments)) in parsed.tool_calls.iter().zip(case.calls) {
            assert_eq!(call.name, *name, "{what}");
            let got: Value = serde_json::from_str(&call.arguments).unwrap();
            let wanted: Value = serde_json::from_str(arguments).unwrap();
            assert_eq!(got, wanted, "{what}");
        }
    }
}

#[test]
fn while_a_reply_streams_nothing_is_sent_that_the_whole_reply_takes_back() {
    for case in CASES {
        let (parser, format) = parser_for(case);
        let whole = parser.parse(case.reply, false).unwrap();
        let mut calls_seen = 0;
        for end in (1..case.reply.len()).filter(|i| case.reply.is_char_boundary(*i)) {
            let prefix = &case.reply[..end];
            let Ok(partial) = parser.parse(prefix, true) else {
                continue;
            };
            let what = format!("{} ({format}) after {prefix:?}: {partial:?}", case.template);
            assert!(whole.content.starts_with(&partial.content), "{what}");
            assert!(
                whole
                    .reasoning_content
                    .starts_with(&partial.reasoning_content),
                "{what}"
            );
            // A call that is followed by another is complete: its name is final.
            let complete = partial.tool_calls.len().saturating_sub(1);
            for (call, final_call) in partial.tool_calls[..complete].iter().zip(&whole.tool_calls) {
                assert_eq!(call.name, final_call.name, "{what}");
            }
            calls_seen = calls_seen.max(partial.tool_calls.len());
        }
        assert!(calls_seen <= whole.tool_calls.len(), "{}", case.template);
    }
}
