//! Ollama's `template_test.go`, ported: the golden renderings of the bundled templates, the
//! message/suffix/date/collate/tool cases, parse errors, and hostile templates.

use serde_json::json;

use super::*;

/// Ollama's bundled templates with their golden outputs (`template/testdata`).
macro_rules! goldens {
    ($($name:literal),* $(,)?) => {
        &[$((
            $name,
            include_str!(concat!("testdata/", $name)),
            [
                ("user", include_str!(concat!("testdata/", $name, ".out/user"))),
                ("user-assistant-user", include_str!(concat!("testdata/", $name, ".out/user-assistant-user"))),
                (
                    "system-user-assistant-user",
                    include_str!(concat!("testdata/", $name, ".out/system-user-assistant-user")),
                ),
            ],
        )),*]
    };
}

type Golden = (
    &'static str,
    &'static str,
    [(&'static str, &'static str); 3],
);

const GOLDENS: &[Golden] = goldens!(
    "alfred.gotmpl",
    "alpaca.gotmpl",
    "chatml.gotmpl",
    "chatqa.gotmpl",
    "codellama-70b-instruct.gotmpl",
    "command-r.gotmpl",
    "falcon-instruct.gotmpl",
    "gemma-instruct.gotmpl",
    "gemma3-instruct.gotmpl",
    "granite-instruct.gotmpl",
    "llama2-chat.gotmpl",
    "llama3-instruct.gotmpl",
    "magicoder.gotmpl",
    "mistral-instruct.gotmpl",
    "openchat.gotmpl",
    "phi-3.gotmpl",
    "solar-instruct.gotmpl",
    "starcoder2-instruct.gotmpl",
    "vicuna.gotmpl",
    "zephyr.gotmpl",
);

fn conversation(case: &str) -> Vec<Message> {
    let mut messages = Vec::new();
    if case.starts_with("system") {
        messages.push(Message::new("system", "You are a helpful assistant."));
    }
    messages.push(Message::new("user", "Hello, how are you?"));
    if case.contains("assistant") {
        messages.push(Message::new(
            "assistant",
            "I'm doing great. How can I help you today?",
        ));
        messages.push(Message::new(
            "user",
            "I'd like to show off how chat templating works!",
        ));
    }
    messages
}

fn render(template: &str, values: &Values) -> String {
    match Template::parse(template).and_then(|t| t.execute(values)) {
        Ok(out) => out,
        Err(e) => format!("ERROR: {e}"),
    }
}

fn messages(pairs: &[(&str, &str)]) -> Vec<Message> {
    pairs
        .iter()
        .map(|(role, content)| Message::new(role, content))
        .collect()
}

#[test]
fn bundled_templates_render_their_golden_outputs() {
    let mut failures = Vec::new();
    for (name, source, cases) in GOLDENS {
        for (case, expected) in cases {
            let mut got = render(
                source,
                &Values {
                    messages: conversation(case),
                    ..Values::default()
                },
            );
            // Ollama's test drops one trailing space for these templates.
            let trims = [
                "chatqa.gotmpl",
                "llama2-chat.gotmpl",
                "mistral-instruct.gotmpl",
                "openchat.gotmpl",
                "vicuna.gotmpl",
            ];
            if trims.contains(name) && got.ends_with(' ') {
                got.pop();
            }
            if got != *expected {
                failures.push(format!(
                    "{name}/{case}:\n--- got\n{got:?}\n--- want\n{expected:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bundled_templates_all_use_messages() {
    for (name, source, _) in GOLDENS {
        let template = Template::parse(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(template.uses_messages(), "{name}");
    }
}

const MISTRAL_NO_RESPONSE: &str =
    "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] ";
const MISTRAL_RESPONSE: &str =
    "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}";
const MISTRAL_MESSAGES: &str = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n{{- if eq .Role \"user\" }}{{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}[INST] {{ end }}\n{{- end }}";

#[test]
fn legacy_and_messages_templates_agree_on_a_mistral_chat() {
    let values = Values {
        messages: messages(&[
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
        ]),
        ..Values::default()
    };
    for template in [MISTRAL_NO_RESPONSE, MISTRAL_RESPONSE, MISTRAL_MESSAGES] {
        assert_eq!(
            render(template, &values),
            "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "
        );
    }
}

#[test]
fn legacy_and_messages_templates_agree_with_a_system_prompt() {
    let values = Values {
        messages: messages(&[
            ("system", "You are a helpful assistant!"),
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
        ]),
        ..Values::default()
    };
    for template in [MISTRAL_NO_RESPONSE, MISTRAL_RESPONSE, MISTRAL_MESSAGES] {
        assert_eq!(
            render(template, &values),
            "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] "
        );
    }
}

#[test]
fn a_trailing_assistant_message_is_continued_not_closed() {
    let values = Values {
        messages: messages(&[
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
            ("assistant", "My name is Ollama and I"),
        ]),
        ..Values::default()
    };
    let templates = [
        "[INST] {{ .Prompt }}[/INST] ",
        "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
        "\n{{- range $i, $m := .Messages }}\n{{- if eq .Role \"user\" }}[INST] {{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}{{ end }}\n{{- end }}",
    ];
    for template in templates {
        assert_eq!(
            render(template, &values),
            "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"
        );
    }
}

#[test]
fn chatml_renders_the_same_from_legacy_and_messages_templates() {
    let values = Values {
        messages: messages(&[
            ("system", "You are a helpful assistant!"),
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
        ]),
        ..Values::default()
    };
    let legacy = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n";
    let modern = "\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
    let expected = "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(render(legacy, &values), expected);
    assert_eq!(render(modern, &values), expected);
}

const SUFFIX_TEMPLATE: &str =
    "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n{{- else }}{{ .Prompt }}\n{{- end }}";

#[test]
fn a_suffix_template_renders_messages_without_suffix() {
    let values = Values {
        messages: messages(&[("user", "hello")]),
        ..Values::default()
    };
    assert_eq!(render(SUFFIX_TEMPLATE, &values), "hello");
}

#[test]
fn prompt_and_suffix_render_fill_in_the_middle() {
    let values = Values {
        prompt: "def add(".into(),
        suffix: "return x".into(),
        ..Values::default()
    };
    assert_eq!(
        render(SUFFIX_TEMPLATE, &values),
        "<PRE> def add( <SUF>return x <MID>"
    );
}

#[test]
fn uses_suffix_reports_the_insert_capability() {
    let template = Template::parse(SUFFIX_TEMPLATE).expect("parses");
    assert!(template.uses_suffix());
    assert!(!template.uses_messages());
    assert!(!template.uses_tools());
}

#[test]
fn a_bare_prompt_is_rendered_as_a_user_message() {
    let values = Values {
        prompt: "hi".into(),
        ..Values::default()
    };
    assert_eq!(render("{{ .Prompt }}", &values), "hi");
}

#[test]
fn the_system_field_acts_as_a_leading_system_message() {
    let values = Values {
        system: "be brief".into(),
        messages: messages(&[("user", "hi")]),
        ..Values::default()
    };
    assert_eq!(
        render("{{ .System }}|{{ .Prompt }}", &values),
        "be brief|hi"
    );
    assert_eq!(
        render(
            "{{ .System }}{{ range .Messages }}|{{ .Role }}{{ end }}",
            &values
        ),
        "be brief|system|user"
    );
}

#[test]
fn current_and_yesterday_dates_use_the_local_calendar() {
    let today = chrono::Local::now().date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    let values = Values {
        messages: messages(&[("user", "Hello")]),
        ..Values::default()
    };
    assert_eq!(
        render(
            "{{- range .Messages }}{{ .Content }}{{ end }} Today is {{ currentDate }}",
            &values
        ),
        format!("Hello Today is {}", today.format("%Y-%m-%d"))
    );
    assert_eq!(
        render(
            "{{- range .Messages }}{{ end }}{{ yesterdayDate \"%Y\" }}",
            &values
        ),
        yesterday.format("%Y-%m-%d").to_string()
    );
}

#[test]
fn collate_merges_consecutive_roles_but_not_tool_messages() {
    let mut tool_a = Message::new("tool", "sunny");
    tool_a.tool_name = "get_weather".into();
    let mut tool_b = Message::new("tool", "72F");
    tool_b.tool_name = "get_temperature".into();
    let input = vec![
        Message::new("system", "You are helpful"),
        Message::new("user", "Hello"),
        Message::new("user", "How are you?"),
        tool_a,
        tool_b,
        Message::new("system", "Be brief"),
    ];
    let (system, collated) = collate(&input);
    assert_eq!(system, "You are helpful\n\nBe brief");
    let summary: Vec<(String, String, String)> = collated
        .into_iter()
        .map(|m| (m.role, m.content, m.tool_name))
        .collect();
    let expected = [
        ("system", "You are helpful", ""),
        ("user", "Hello\n\nHow are you?", ""),
        ("tool", "sunny", "get_weather"),
        ("tool", "72F", "get_temperature"),
        ("system", "Be brief", ""),
    ];
    assert_eq!(
        summary,
        expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
}

fn tool_call_message() -> Message {
    Message {
        role: "assistant".into(),
        tool_calls: vec![
            json!({"function": {"name": "get_weather", "arguments": {"unit": "celsius", "location": "Tokyo", "days": 3}}}),
        ],
        ..Message::default()
    }
}

#[test]
fn tool_call_arguments_print_as_json() {
    let values = Values {
        messages: vec![tool_call_message()],
        ..Values::default()
    };
    assert_eq!(
        render("{{- range .Messages }}{{- range .ToolCalls }}{{ .Function.Name }}{{ .Function.Arguments }}{{- end }}{{- end }}", &values),
        r#"get_weather{"days":3,"location":"Tokyo","unit":"celsius"}"#
    );
}

#[test]
fn tool_call_arguments_can_be_ranged_in_key_order() {
    let values = Values {
        messages: vec![tool_call_message()],
        ..Values::default()
    };
    assert_eq!(
        render("{{- range .Messages }}{{- range .ToolCalls }}{{- range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{- end }}{{- end }}{{- end }}", &values),
        "days=3;location=Tokyo;unit=celsius;"
    );
}

#[test]
fn tool_calls_without_arguments_print_empty_braces() {
    let message = Message {
        role: "assistant".into(),
        tool_calls: vec![json!({"function": {"name": "now"}})],
        ..Message::default()
    };
    let values = Values {
        messages: vec![message],
        ..Values::default()
    };
    assert_eq!(render("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}", &values), "{}");
}

fn weather_tool() -> serde_json::Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get <current> weather",
            "parameters": {
                "type": "object",
                "required": ["location"],
                "properties": {
                    "location": {"type": "string", "description": "City name"},
                    "unit": {"type": ["string", "null"], "enum": ["c", "f"]}
                }
            }
        }
    })
}

#[test]
fn tool_properties_print_as_json_and_range_with_types() {
    let values = Values {
        messages: messages(&[("user", "test")]),
        tools: vec![weather_tool()],
        ..Values::default()
    };
    assert_eq!(
        render("{{- range .Messages }}{{- end }}{{- range .Tools }}{{ .Function.Parameters.Properties }}{{- end }}", &values),
        r#"{"location":{"type":"string","description":"City name"},"unit":{"type":["string","null"],"enum":["c","f"]}}"#
    );
    assert_eq!(
        render("{{- range .Messages }}{{- end }}{{- range .Tools }}{{- range $name, $prop := .Function.Parameters.Properties }}{{ $name }}:{{ $prop.Type }}:{{ toTypeScriptType $prop }};{{- end }}{{- end }}", &values),
        "location:string:string;unit:[string null]:string | null;"
    );
}

#[test]
fn tools_print_and_encode_as_go_json_with_html_escaping() {
    let values = Values {
        messages: messages(&[("user", "test")]),
        tools: vec![weather_tool()],
        ..Values::default()
    };
    let expected = r#"[{"type":"function","function":{"name":"get_weather","description":"Get \u003ccurrent\u003e weather","parameters":{"type":"object","required":["location"],"properties":{"location":{"type":"string","description":"City name"},"unit":{"type":["string","null"],"enum":["c","f"]}}}}}]"#;
    assert_eq!(
        render("{{ if .Messages }}{{ .Tools }}{{ end }}", &values),
        expected
    );
    assert_eq!(
        render("{{ if .Messages }}{{ json .Tools }}{{ end }}", &values),
        expected
    );
    let template = Template::parse("{{ range .Messages }}{{ end }}{{ .Tools }}").expect("parses");
    assert!(template.uses_tools());
}

#[test]
fn no_tools_are_falsy() {
    let values = Values {
        messages: messages(&[("user", "x")]),
        ..Values::default()
    };
    assert_eq!(
        render(
            "{{ range .Messages }}{{ end }}{{ if .Tools }}tools{{ else }}none{{ end }}",
            &values
        ),
        "none"
    );
}

#[test]
fn json_of_a_message_uses_go_field_names() {
    let values = Values {
        messages: messages(&[("user", "a<b")]),
        ..Values::default()
    };
    assert_eq!(
        render("{{ range .Messages }}{{ json . }}{{ end }}", &values),
        r#"{"Role":"user","Content":"a\u003cb","Thinking":"","Images":null,"ToolCalls":null,"ToolName":"","ToolCallID":""}"#
    );
}

#[test]
fn think_values_reach_the_template() {
    let values = Values {
        messages: messages(&[("user", "x")]),
        think: true,
        think_level: "high".into(),
        is_think_set: true,
        ..Values::default()
    };
    assert_eq!(
        render(
            "{{ range .Messages }}{{ end }}{{ .Think }} {{ .ThinkLevel }} {{ .IsThinkSet }}",
            &values
        ),
        "true high true"
    );
}

#[test]
fn force_legacy_renders_messages_templates_per_turn() {
    let values = Values {
        messages: messages(&[("user", "a"), ("assistant", "b"), ("user", "c")]),
        force_legacy: true,
        ..Values::default()
    };
    assert_eq!(
        render(
            "{{ range .Messages }}x{{ end }}[{{ .Prompt }}]{{ .Response }}|",
            &values
        ),
        "[a]b|[c]"
    );
}

#[test]
fn legacy_rendering_cuts_everything_after_response() {
    let values = Values {
        messages: messages(&[("user", "q")]),
        ..Values::default()
    };
    assert_eq!(
        render(
            "{{ .Prompt }}:{{ if .Prompt }}A{{ .Response }}B{{ end }}C",
            &values
        ),
        "q:A"
    );
}

#[test]
fn templates_without_response_get_it_appended() {
    let template = Template::parse("{{ .Prompt }}").expect("parses");
    assert_eq!(template.vars(), ["prompt", "response"]);
    let values = Values {
        messages: messages(&[("user", "a"), ("assistant", "b"), ("user", "c")]),
        ..Values::default()
    };
    assert_eq!(template.execute(&values).expect("renders"), "abc");
}

#[test]
fn vars_match_ollama() {
    let cases: &[(&str, &[&str])] = &[
        ("{{ .System }} {{ .Prompt }} {{ .Response }}", &["prompt", "response", "system"]),
        ("{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}", &["prompt", "response", "system", "tools"]),
        ("{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}", &["content", "messages", "role"]),
        (
            "{{ range .Messages }}{{ if eq .Role \"tool\" }}Tool Result: {{ .ToolName }} {{ .Content }}{{ end }}{{ end }}",
            &["content", "messages", "role", "toolname"],
        ),
        (
            "{{- if .Messages }}\n{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ else -}}\n{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n{{- end -}}",
            &["content", "messages", "prompt", "response", "role", "system"],
        ),
    ];
    for (source, expected) in cases {
        let template = Template::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(template.vars(), *expected, "{source}");
    }
}

fn parse_error(source: &str) -> String {
    match Template::parse(source) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_unclosed_action_is_a_parse_error() {
    assert_eq!(parse_error("{{ .Prompt "), "template: :1: unclosed action");
}

#[test]
fn a_template_call_without_data_is_rejected_like_ollama() {
    assert!(
        parse_error(r#"{{define "x"}}{{template "x"}}{{end}}{{template "x"}}"#)
            .contains("undefined template specified")
    );
}

#[test]
fn an_unknown_function_is_a_parse_error() {
    assert_eq!(
        parse_error("{{ upper .Prompt }}"),
        "template: :1: function \"upper\" not defined"
    );
}

#[test]
fn a_bad_pipeline_is_a_parse_error() {
    assert!(parse_error("{{ .Prompt | }}").contains("missing command"));
    assert!(parse_error("{{ .Prompt | \"x\" }}").contains("non executable command"));
    assert!(parse_error("{{ if }}{{ end }}").contains("missing value for if"));
}

#[test]
fn parse_errors_report_the_line() {
    assert_eq!(
        parse_error("a\nb\n{{ if .X }}"),
        "template: :3: unexpected EOF in if"
    );
}

#[test]
fn an_unterminated_comment_is_a_parse_error() {
    assert!(parse_error("{{/* never closed").contains("unclosed comment"));
    assert!(parse_error("{{/* c */ .X }}").contains("comment ends before closing delimiter"));
}

#[test]
fn execution_errors_name_the_problem() {
    let values = Values {
        messages: messages(&[("user", "x")]),
        ..Values::default()
    };
    let error = Template::parse("{{ range .Messages }}{{ .Nope }}{{ end }}")
        .and_then(|t| t.execute(&values));
    let message = error.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("can't evaluate field Nope in type *template.templateMessage"),
        "{message}"
    );
}

#[test]
fn hostile_templates_fail_cleanly() {
    let values = Values {
        messages: messages(&[("user", "x")]),
        ..Values::default()
    };
    let deep = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
    assert!(Template::parse(&deep).is_err());
    let recursion =
        r#"{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}{{ .Messages }}"#;
    assert!(render(recursion, &values).contains("maximum template depth"));
    let spin =
        "{{ range .Messages }}{{ end }}{{ range 1000000000000 }}{{ range 1000 }}{{ end }}{{ end }}";
    assert!(render(spin, &values).contains("evaluation steps"));
    let garbage = [
        "{{",
        "}}",
        "{{{{",
        "{{ ( }}",
        "{{ ) }}",
        "{{ $ := 1 }}",
        "{{ 'ab' }}",
        "{{ \"\\q\" }}",
        "{{ 0x }}",
        "{{ .. }}",
        "\u{0}{{ é }}",
    ];
    for source in garbage {
        let _ = Template::parse(source).and_then(|t| t.execute(&values));
    }
}

#[test]
fn nesting_at_the_parse_limit_still_executes() {
    let depth = parse::MAX_PARSE_DEPTH;
    let source = format!(
        "{}x{}",
        "{{ if 1 }}{{ range $.Messages }}".repeat(depth / 2),
        "{{ end }}{{ end }}".repeat(depth / 2)
    );
    let values = Values {
        messages: messages(&[("user", "x")]),
        ..Values::default()
    };
    let result = Template::parse(&source).and_then(|t| t.execute(&values));
    assert_eq!(result.ok().as_deref(), Some("x"));
    let too_deep = format!(
        "{}x{}",
        "{{ if 1 }}".repeat(depth + 1),
        "{{ end }}".repeat(depth + 1)
    );
    assert!(parse_error(&too_deep).contains("nests deeper"));
}

#[test]
fn a_tool_prints_as_json_and_its_function_as_a_go_struct() {
    let values = Values {
        messages: messages(&[("user", "x")]),
        tools: vec![weather_tool()],
        ..Values::default()
    };
    let out = render(
        "{{ range .Messages }}{{ end }}{{ range .Tools }}{{ . }}|{{ .Function.Name }}{{ end }}",
        &values,
    );
    assert!(
        out.starts_with(r#"{"type":"function","function":{"name":"get_weather""#),
        "{out}"
    );
    assert!(out.ends_with("}|get_weather"), "{out}");
    let function = render(
        "{{ range .Messages }}{{ end }}{{ range .Tools }}{{ .Function }}{{ end }}",
        &values,
    );
    assert!(
        function.starts_with("{get_weather Get <current> weather {object <nil> <nil> [location] {"),
        "{function}"
    );
}

/// Qwen 2.5's tool template from the Ollama library, abridged: `slice`, `len`, `$` and JSON
/// arguments together.
#[test]
fn a_qwen_style_tool_conversation_renders() {
    let source = r#"{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ json .Function }}}
{{- end }}
</tools>
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}
{{- else }}{{ .Prompt }}{{ end }}"#;
    let mut tool = Message::new("tool", "sunny");
    tool.tool_name = "get_weather".into();
    let values = Values {
        messages: vec![Message::new("user", "Weather?"), tool_call_message(), tool],
        tools: vec![weather_tool()],
        ..Values::default()
    };
    let expected = r#"<|im_start|>system
<tools>
{"type": "function", "function": {"name":"get_weather","description":"Get \u003ccurrent\u003e weather","parameters":{"type":"object","required":["location"],"properties":{"location":{"type":"string","description":"City name"},"unit":{"type":["string","null"],"enum":["c","f"]}}}}}
</tools><|im_end|>
<|im_start|>user
Weather?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "get_weather", "arguments": {"days":3,"location":"Tokyo","unit":"celsius"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
sunny
</tool_response><|im_end|>
<|im_start|>assistant
"#;
    assert_eq!(render(source, &values), expected);
}

#[test]
fn every_prefix_of_real_templates_parses_or_fails_without_panicking() {
    let values = Values {
        messages: vec![Message::new("user", "q"), tool_call_message()],
        tools: vec![weather_tool()],
        ..Values::default()
    };
    for (_, source, _) in GOLDENS.iter().take(8) {
        for (end, _) in source.char_indices() {
            let _ = Template::parse(&source[..end]).and_then(|t| t.execute(&values));
        }
    }
}

#[test]
fn thinking_tags_are_the_text_around_a_messages_thinking() {
    let qwen3 = "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n\
        {{- if eq .Role \"assistant\" }}<|im_start|>assistant\n\
        {{ if and $.IsThinkSet (and $last .Thinking) -}}\n<think>\n{{ .Thinking }}\n</think>\n{{ end }}\
        {{ .Content }}<|im_end|>\n{{ end }}{{ end }}";
    let template = Template::parse(qwen3).unwrap();
    assert_eq!(
        template.thinking_tags(),
        Some(("<think>".to_string(), "</think>".to_string()))
    );
    // Outside a range over .Messages, or without text on both sides, there are no tags.
    for text in [
        "{{ .Thinking }}",
        "{{ range .Tools }}<t>{{ .Thinking }}</t>{{ end }}",
        "{{ range .Messages }}{{ if .Thinking }}{{ .Thinking }}</t>{{ end }}{{ end }}",
        "{{ range .Messages }}{{ .Content }}{{ end }}",
    ] {
        assert_eq!(
            Template::parse(text).unwrap().thinking_tags(),
            None,
            "{text}"
        );
    }
}
