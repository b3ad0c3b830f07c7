//! Whole sessions against a scripted terminal and a fake server.

use super::*;
use std::collections::VecDeque;

/// Lines typed by the "user", then Ctrl-D.
struct Script {
    reads: VecDeque<ReadResult>,
    prompts: Vec<String>,
    history: Vec<String>,
    history_enabled: Vec<bool>,
}

impl Script {
    fn new(reads: Vec<ReadResult>) -> Self {
        Self {
            reads: reads.into(),
            prompts: Vec::new(),
            history: Vec::new(),
            history_enabled: Vec::new(),
        }
    }

    fn lines(lines: &[&str]) -> Self {
        Self::new(
            lines
                .iter()
                .map(|l| ReadResult::Line(l.to_string()))
                .collect(),
        )
    }
}

impl LineSource for Script {
    fn read_line(&mut self, prompt: &str) -> io::Result<ReadResult> {
        self.prompts.push(prompt.to_string());
        Ok(self.reads.pop_front().unwrap_or(ReadResult::Eof))
    }

    fn add_history(&mut self, line: &str) {
        self.history.push(line.to_string());
    }

    fn set_history_enabled(&mut self, on: bool) {
        self.history_enabled.push(on);
    }
}

/// What the fake server does for one chat request.
enum Answer {
    /// Streams these chunks, then a final `done` chunk with metrics.
    Chunks(Vec<Value>),
    /// Streams these chunks, then is canceled (as if Ctrl-C arrived).
    CanceledAfter(Vec<Value>),
    /// Fails with this message.
    Fails(&'static str),
}

#[derive(Default)]
struct FakeServer {
    answers: VecDeque<Answer>,
    chats: Vec<Value>,
    shows: Vec<Value>,
    creates: Vec<Value>,
    loads: Vec<String>,
    show_response: Value,
    missing_models: Vec<String>,
}

fn content(text: &str) -> Value {
    json!({"message": {"role": "assistant", "content": text}, "done": false})
}

fn thinking(text: &str) -> Value {
    json!({"message": {"role": "assistant", "content": "", "thinking": text}, "done": false})
}

fn final_chunk() -> Value {
    json!({
        "message": {"role": "assistant", "content": ""},
        "done": true,
        "total_duration": 1_500_000_000u64,
        "eval_count": 10,
        "eval_duration": 500_000_000u64,
    })
}

impl Backend for FakeServer {
    fn chat(
        &mut self,
        request: &Value,
        on_chunk: &mut dyn FnMut(&Value),
        cancel: &AtomicBool,
    ) -> Result<Value, String> {
        self.chats.push(request.clone());
        match self
            .answers
            .pop_front()
            .unwrap_or(Answer::Chunks(vec![content("ok")]))
        {
            Answer::Chunks(chunks) => {
                for chunk in &chunks {
                    on_chunk(chunk);
                }
                let last = final_chunk();
                on_chunk(&last);
                Ok(last)
            }
            Answer::CanceledAfter(chunks) => {
                for chunk in &chunks {
                    on_chunk(chunk);
                }
                cancel.store(true, Ordering::SeqCst);
                Err("canceled".to_string())
            }
            Answer::Fails(message) => Err(message.to_string()),
        }
    }

    fn show(&mut self, request: &Value) -> Result<Value, String> {
        self.shows.push(request.clone());
        let model = request["model"].as_str().unwrap_or_default().to_string();
        if self.missing_models.contains(&model) {
            return Err(format!("model '{model}' not found"));
        }
        Ok(self.show_response.clone())
    }

    fn create(&mut self, request: &Value) -> Result<(), String> {
        self.creates.push(request.clone());
        match request["model"].as_str() {
            Some("BAD!") => Err("invalid model name".to_string()),
            _ => Ok(()),
        }
    }

    fn list(&mut self) -> Result<String, String> {
        Ok("NAME    ID    SIZE    MODIFIED \nqwen:0.5b    abc    1 GB    now    \n".to_string())
    }

    fn load(&mut self, model: &str) -> Result<(), String> {
        self.loads.push(model.to_string());
        Ok(())
    }
}

/// What one session printed.
struct Transcript {
    out: String,
    err: String,
    result: io::Result<()>,
}

fn session(options: Options, script: &mut Script, server: &mut FakeServer) -> Transcript {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let cancel = AtomicBool::new(false);
    let result = run(options, script, server, &mut out, &mut err, &cancel);
    Transcript {
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
        result,
    }
}

fn chat_with(lines: &[&str], server: &mut FakeServer) -> Transcript {
    session(Options::new("qwen"), &mut Script::lines(lines), server)
}

fn roles(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| m["role"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_chat_turn_streams_the_answer_and_keeps_it_for_the_next_turn() {
    let mut server = FakeServer::default();
    server
        .answers
        .push_back(Answer::Chunks(vec![content("Hel"), content("lo!")]));
    let transcript = chat_with(&["hi", "again"], &mut server);
    assert!(transcript.result.is_ok());
    assert!(
        transcript.out.starts_with("Hello!\n\n"),
        "{:?}",
        transcript.out
    );
    assert_eq!(server.chats.len(), 2);
    let first = &server.chats[0];
    assert_eq!(first["model"], "qwen");
    assert_eq!(first["stream"], true);
    assert_eq!(
        first["messages"],
        json!([{"role": "user", "content": "hi"}])
    );
    assert_eq!(
        server.chats[1]["messages"],
        json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "again"},
        ])
    );
}

#[test]
fn the_model_is_loaded_before_the_first_prompt() {
    let mut server = FakeServer::default();
    chat_with(&[], &mut server);
    assert_eq!(server.loads, ["qwen"]);
}

#[test]
fn a_failing_load_ends_the_session_with_its_error() {
    struct NoModel;
    impl Backend for NoModel {
        fn chat(
            &mut self,
            _: &Value,
            _: &mut dyn FnMut(&Value),
            _: &AtomicBool,
        ) -> Result<Value, String> {
            Err("unreachable".into())
        }
        fn show(&mut self, _: &Value) -> Result<Value, String> {
            Err("unreachable".into())
        }
        fn create(&mut self, _: &Value) -> Result<(), String> {
            Ok(())
        }
        fn list(&mut self) -> Result<String, String> {
            Ok(String::new())
        }
        fn load(&mut self, model: &str) -> Result<(), String> {
            Err(format!("model '{model}' not found"))
        }
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    let result = run(
        Options::new("nope"),
        &mut Script::lines(&["hi"]),
        &mut NoModel,
        &mut out,
        &mut err,
        &AtomicBool::new(false),
    );
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("model 'nope' not found".to_string())
    );
}

#[test]
fn settings_and_options_go_into_the_chat_request() {
    let mut server = FakeServer::default();
    let mut options = Options::new("qwen");
    options.keep_alive = Some("5m".into());
    options.think = Some(json!("high"));
    options.format = Some("json".into());
    session(options, &mut Script::lines(&["hi"]), &mut server);
    let request = &server.chats[0];
    assert_eq!(request["keep_alive"], "5m");
    assert_eq!(request["think"], "high");
    assert_eq!(request["format"], "json");
    assert_eq!(request["options"], json!({}));
}

#[test]
fn set_parameter_types_the_value_into_the_next_request() {
    let mut server = FakeServer::default();
    let transcript = chat_with(
        &[
            "/set parameter temperature 0.7",
            "/set parameter num_ctx 4096",
            "/set parameter stop <end> ###",
            "hi",
        ],
        &mut server,
    );
    assert!(transcript
        .out
        .contains("Set parameter 'temperature' to '0.7'\n"));
    assert!(transcript
        .out
        .contains("Set parameter 'stop' to '<end>, ###'\n"));
    let options = &server.chats[0]["options"];
    assert_eq!(options["temperature"], json!(0.7));
    assert_eq!(options["num_ctx"], json!(4096));
    assert_eq!(options["stop"], json!(["<end>", "###"]));
}

#[test]
fn set_parameter_reports_bad_values_in_ollamas_words() {
    let mut server = FakeServer::default();
    let transcript = chat_with(
        &["/set parameter seed abc", "/set parameter colour red", "hi"],
        &mut server,
    );
    assert!(transcript
        .out
        .contains("Couldn't set parameter: \"invalid int value [abc]\"\n"));
    assert!(transcript
        .out
        .contains("Couldn't set parameter: \"unknown parameter 'colour'\"\n"));
    assert_eq!(server.chats[0]["options"], json!({}));
}

#[test]
fn set_parameter_without_a_value_prints_the_parameter_list() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/set parameter"], &mut server);
    assert!(transcript.err.starts_with("Available Parameters:\n"));
}

#[test]
fn set_system_becomes_the_system_message_of_the_next_request() {
    let mut server = FakeServer::default();
    let transcript = chat_with(
        &[
            "/set system You are a pirate.",
            "/set system Be brief.",
            "hi",
        ],
        &mut server,
    );
    assert_eq!(transcript.out.matches("Set system message.\n").count(), 2);
    assert_eq!(
        server.chats[0]["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ])
    );
}

#[test]
fn a_multiline_system_message_is_collected_with_the_continuation_prompt() {
    let mut server = FakeServer::default();
    let mut script = Script::lines(&[r#"/set system """You are"#, r#"a pirate.""""#, "hi"]);
    let transcript = session(Options::new("qwen"), &mut script, &mut server);
    assert!(transcript.out.contains("Set system message.\n"));
    assert_eq!(script.prompts[..3], [">>> ", "... ", ">>> "]);
    assert_eq!(
        server.chats[0]["messages"][0],
        json!({"role": "system", "content": "You are\na pirate."})
    );
}

#[test]
fn a_multiline_message_is_sent_once_the_quotes_close() {
    let mut server = FakeServer::default();
    let mut script = Script::lines(&[r#""""Line one"#, "line two", r#"end""""#]);
    session(Options::new("qwen"), &mut script, &mut server);
    assert_eq!(server.chats.len(), 1);
    assert_eq!(
        server.chats[0]["messages"][0]["content"],
        "Line one\nline two\nend"
    );
    assert_eq!(script.prompts[..4], [">>> ", "... ", "... ", ">>> "]);
}

#[test]
fn show_parameters_lists_model_and_user_values() {
    let mut server = FakeServer {
        show_response: json!({"parameters": "temperature 0.6"}),
        ..FakeServer::default()
    };
    let transcript = chat_with(
        &["/set parameter top_k 20", "/show parameters"],
        &mut server,
    );
    assert!(transcript.out.contains(&format!(
        "Model defined parameters:\n  temperature 0.6\n\nUser defined parameters:\n  top_k{} 20\n\n",
        " ".repeat(25)
    )));
    assert_eq!(server.shows[0]["options"], json!({"top_k": 20}));
}

#[test]
fn show_system_prefers_the_session_system_message() {
    let mut server = FakeServer {
        show_response: json!({"system": "From the model."}),
        ..FakeServer::default()
    };
    let transcript = chat_with(
        &["/show system", "/set system Mine.", "/show system"],
        &mut server,
    );
    assert!(transcript
        .out
        .starts_with("From the model.\n\nSet system message.\nMine.\n\n"));
    assert_eq!(server.shows[1]["system"], "Mine.");
}

#[test]
fn show_says_when_the_model_has_no_system_template_or_license() {
    let mut server = FakeServer {
        show_response: json!({}),
        ..FakeServer::default()
    };
    let transcript = chat_with(
        &["/show system", "/show template", "/show license"],
        &mut server,
    );
    assert_eq!(
        transcript.out,
        "No system message was specified for this model.\n\
         No prompt template was specified for this model.\n\
         No license was specified for this model.\n\n"
    );
}

#[test]
fn show_prints_the_template_license_and_modelfile_as_stored() {
    let mut server = FakeServer {
        show_response: json!({
            "template": "{{ .Prompt }}",
            "license": "MIT",
            "modelfile": "FROM qwen",
        }),
        ..FakeServer::default()
    };
    let transcript = chat_with(
        &["/show template", "/show license", "/show modelfile"],
        &mut server,
    );
    assert_eq!(transcript.out, "{{ .Prompt }}\nMIT\nFROM qwen\n\n");
}

#[test]
fn show_info_goes_to_stderr_through_the_given_renderer() {
    let mut server = FakeServer::default();
    let mut options = Options::new("qwen");
    options.show_info = Some(|_| "INFO TABLE\n".to_string());
    let transcript = session(options, &mut Script::lines(&["/show info"]), &mut server);
    assert_eq!(transcript.err, "INFO TABLE\n");
}

#[test]
fn show_alone_and_unknown_topics_print_help_or_an_error() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/show", "/show tensors"], &mut server);
    assert!(transcript
        .err
        .starts_with("Available Commands:\n  /show info"));
    assert!(transcript
        .out
        .contains("Unknown command '/show tensors'. Type /? for help\n"));
}

#[test]
fn save_sends_the_session_as_a_create_request() {
    let mut server = FakeServer::default();
    let transcript = chat_with(
        &[
            "/set system Be brief.",
            "/set parameter seed 7",
            "hi",
            "/save mine",
        ],
        &mut server,
    );
    assert!(transcript.out.contains("Created new model 'mine'\n"));
    assert_eq!(
        server.creates[0],
        json!({
            "model": "mine",
            "from": "qwen",
            "system": "Be brief.",
            "parameters": {"seed": 7},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "ok"},
            ],
        })
    );
}

#[test]
fn save_builds_on_the_parent_model_and_keeps_loaded_messages() {
    let mut server = FakeServer::default();
    let mut options = Options::new("mine");
    options.parent_model = Some("qwen:0.5b".into());
    options.loaded_messages = vec![json!({"role": "user", "content": "old"})];
    let transcript = session(options, &mut Script::lines(&["/save copy"]), &mut server);
    assert!(transcript.out.starts_with(">>> old\n"));
    assert_eq!(
        server.creates[0],
        json!({"model": "copy", "from": "qwen:0.5b", "messages": [{"role": "user", "content": "old"}]})
    );
}

#[test]
fn save_reports_usage_and_invalid_names() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/save", "/save a b", "/save BAD!"], &mut server);
    assert_eq!(
        transcript.out,
        "Usage:\n  /save <modelname>\nUsage:\n  /save <modelname>\n\
         error: The model name 'BAD!' is invalid\n\n"
    );
}

#[test]
fn load_switches_models_and_starts_a_fresh_conversation() {
    let mut server = FakeServer {
        show_response: json!({"capabilities": ["completion", "thinking"]}),
        ..FakeServer::default()
    };
    let transcript = chat_with(&["hi", "/load llama", "hello"], &mut server);
    assert!(transcript.out.contains("Loading model 'llama'\n"));
    assert_eq!(server.loads, ["qwen", "llama"]);
    let request = &server.chats[1];
    assert_eq!(request["model"], "llama");
    assert_eq!(roles(request), ["user"]);
    // The new model can think and nobody chose otherwise, so thinking turns on.
    assert_eq!(request["think"], true);
}

#[test]
fn load_of_a_missing_model_keeps_the_session() {
    let mut server = FakeServer {
        missing_models: vec!["ghost".into()],
        ..FakeServer::default()
    };
    let transcript = chat_with(&["hi", "/load ghost", "again"], &mut server);
    assert!(transcript
        .out
        .contains("Loading model 'ghost'\nCouldn't find model 'ghost'\n"));
    assert_eq!(server.chats[1]["model"], "qwen");
    assert_eq!(roles(&server.chats[1]), ["user", "assistant", "user"]);
}

#[test]
fn clear_forgets_the_conversation_but_keeps_the_system_message() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/set system Sys.", "hi", "/clear", "again"], &mut server);
    assert!(transcript.out.contains("Cleared session context\n"));
    assert_eq!(
        server.chats[1]["messages"],
        json!([
            {"role": "system", "content": "Sys."},
            {"role": "user", "content": "again"},
        ])
    );
}

#[test]
fn list_prints_the_servers_table() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/list"], &mut server);
    assert!(transcript.out.starts_with("NAME    ID"));
}

#[test]
fn ctrl_c_at_the_prompt_explains_how_to_leave() {
    let mut server = FakeServer::default();
    let mut script = Script::new(vec![ReadResult::Interrupted, ReadResult::Eof]);
    let transcript = session(Options::new("qwen"), &mut script, &mut server);
    assert_eq!(transcript.out, "\nUse Ctrl + d or /bye to exit.\n\n");
    assert!(transcript.result.is_ok());
}

#[test]
fn ctrl_c_drops_a_half_typed_multiline_message() {
    let mut server = FakeServer::default();
    let mut script = Script::new(vec![
        ReadResult::Line(r#""""draft"#.into()),
        ReadResult::Interrupted,
        ReadResult::Line("fresh".into()),
    ]);
    session(Options::new("qwen"), &mut script, &mut server);
    assert_eq!(script.prompts[..3], [">>> ", "... ", ">>> "]);
    assert_eq!(server.chats[0]["messages"][0]["content"], "fresh");
}

#[test]
fn ctrl_c_during_an_answer_returns_to_the_prompt_without_keeping_it() {
    let mut server = FakeServer::default();
    server
        .answers
        .push_back(Answer::CanceledAfter(vec![content("Once upon")]));
    let transcript = chat_with(&["tell a story", "short one"], &mut server);
    assert!(transcript.result.is_ok());
    assert!(
        transcript.out.starts_with("Once upon\nok\n\n"),
        "{:?}",
        transcript.out
    );
    // Like Ollama, the unanswered question stays; the partial answer does not.
    assert_eq!(roles(&server.chats[1]), ["user", "user"]);
}

#[test]
fn bye_exit_and_ctrl_d_end_the_session() {
    for ending in ["/bye", "/exit"] {
        let mut server = FakeServer::default();
        let mut script = Script::lines(&[ending, "never sent"]);
        let transcript = session(Options::new("qwen"), &mut script, &mut server);
        assert!(transcript.result.is_ok());
        assert!(server.chats.is_empty());
        assert_eq!(transcript.out, "");
    }
    let mut server = FakeServer::default();
    let mut script = Script::new(vec![ReadResult::Eof, ReadResult::Line("never".into())]);
    let transcript = session(Options::new("qwen"), &mut script, &mut server);
    assert_eq!(transcript.out, "\n");
    assert!(server.chats.is_empty());
}

#[test]
fn unknown_commands_are_reported_not_sent() {
    let mut server = FakeServer::default();
    let transcript = chat_with(
        &["/foo bar", "/set colour", "/set format yaml"],
        &mut server,
    );
    assert_eq!(
        transcript.out,
        "Unknown command '/foo'. Type /? for help\n\
         Unknown command '/set colour'. Type /? for help\n\
         Invalid or missing format. For 'json' mode use '/set format json'\n\n"
    );
    assert!(server.chats.is_empty());
}

#[test]
fn help_texts_go_to_stderr() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/?", "/? set", "/help shortcuts", "/? show"], &mut server);
    assert_eq!(
        transcript.err,
        [help::COMMANDS, help::SET, help::SHORTCUTS, help::SHOW].concat()
    );
    assert!(help::COMMANDS.contains("  /load <model>   Load a session or model\n"));
    assert!(help::SHORTCUTS.contains("  Ctrl + d            Exit ollama (/bye)\n"));
}

#[test]
fn verbose_prints_the_metrics_after_each_answer() {
    let mut server = FakeServer::default();
    let transcript = chat_with(&["/set verbose", "hi", "/set quiet", "again"], &mut server);
    assert!(transcript
        .out
        .starts_with("Set 'verbose' mode.\nok\n\nSet 'quiet' mode.\n"));
    assert_eq!(
        transcript.err,
        "total duration:       1.5s\n\
         eval count:           10 token(s)\n\
         eval duration:        500ms\n\
         eval rate:            20.00 tokens/s\n"
    );
}

#[test]
fn thinking_is_shown_between_markers_and_kept_in_the_history() {
    let mut server = FakeServer::default();
    server.answers.push_back(Answer::Chunks(vec![
        thinking("Hmm, "),
        thinking("let me see."),
        content("42"),
    ]));
    let transcript = chat_with(&["question", "next"], &mut server);
    assert!(transcript
        .out
        .starts_with("Thinking...\nHmm, let me see.\n...done thinking.\n\n42\n\n"));
    assert_eq!(
        server.chats[1]["messages"][1],
        json!({"role": "assistant", "content": "42", "thinking": "Hmm, let me see."})
    );
}

#[test]
fn hidden_thinking_is_neither_printed_nor_kept() {
    let mut server = FakeServer::default();
    server
        .answers
        .push_back(Answer::Chunks(vec![thinking("secret"), content("42")]));
    let mut options = Options::new("qwen");
    options.hide_thinking = true;
    let transcript = session(options, &mut Script::lines(&["q", "next"]), &mut server);
    assert!(transcript.out.starts_with("42\n\n"));
    assert_eq!(
        server.chats[1]["messages"][1],
        json!({"role": "assistant", "content": "42"})
    );
}

#[test]
fn set_think_and_nothink_change_the_request_and_warn_when_unsupported() {
    let mut server = FakeServer {
        show_response: json!({"capabilities": ["completion"]}),
        ..FakeServer::default()
    };
    let transcript = chat_with(&["/set think low", "a", "/set nothink", "b"], &mut server);
    assert!(transcript.out.contains("Set 'think' mode to 'low'.\n"));
    assert!(transcript.out.contains("Set 'nothink' mode.\n"));
    assert!(transcript
        .err
        .contains("warning: model \"qwen\" does not support thinking output\n"));
    assert_eq!(server.chats[0]["think"], "low");
    assert_eq!(server.chats[1]["think"], false);
}

#[test]
fn format_and_wordwrap_switches_print_their_modes() {
    let mut server = FakeServer::default();
    let transcript = chat_with(
        &[
            "/set format json",
            "a",
            "/set noformat",
            "/set nowordwrap",
            "/set wordwrap",
        ],
        &mut server,
    );
    assert_eq!(
        transcript.out,
        "Set format to 'json' mode.\nok\n\nDisabled format.\nSet 'nowordwrap' mode.\nSet 'wordwrap' mode.\n\n"
    );
    assert_eq!(server.chats[0]["format"], "json");
}

#[test]
fn history_switches_reach_the_line_source() {
    let mut server = FakeServer::default();
    let mut script = Script::lines(&["/set nohistory", "", "/set history"]);
    session(Options::new("qwen"), &mut script, &mut server);
    assert_eq!(script.history_enabled, [false, true]);
    assert_eq!(script.history, ["/set nohistory", "/set history"]);
}

#[test]
fn answers_wrap_between_words_at_the_terminal_width() {
    let mut server = FakeServer::default();
    server.answers.push_back(Answer::Chunks(vec![
        content("The quick brown fox ju"),
        content("mps over the lazy dog"),
    ]));
    let mut options = Options::new("qwen");
    options.word_wrap = true;
    options.width = 25;
    let transcript = session(options, &mut Script::lines(&["go"]), &mut server);
    assert_eq!(
        transcript.out,
        "The quick brown fox\njumps over the lazy\ndog\n\n\n"
    );
}

#[test]
fn upstream_errors_print_ollamas_retry_message_and_continue() {
    let mut server = FakeServer::default();
    server
        .answers
        .push_back(Answer::Fails("upstream error: 502"));
    let transcript = chat_with(&["hi", "again"], &mut server);
    assert!(transcript.out.starts_with(
        "An error occurred while processing your message. Please try again.\n\nok\n\n"
    ));
    assert_eq!(server.chats.len(), 2);
}

#[test]
fn other_chat_errors_end_the_session() {
    let mut server = FakeServer::default();
    server.answers.push_back(Answer::Fails("model crashed"));
    let transcript = chat_with(&["hi", "again"], &mut server);
    assert_eq!(
        transcript.result.map_err(|e| e.to_string()),
        Err("model crashed".to_string())
    );
    assert_eq!(server.chats.len(), 1);
}

#[test]
fn blank_lines_send_nothing() {
    let mut server = FakeServer::default();
    chat_with(&["", ""], &mut server);
    assert!(server.chats.is_empty());
}

#[test]
fn tool_calls_are_reported_as_non_existent_functions() {
    let mut server = FakeServer::default();
    server.answers.push_back(Answer::Chunks(vec![json!({
        "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ]},
    })]));
    let transcript = chat_with(&["weather?"], &mut server);
    assert!(transcript.out.starts_with(
        "  Model called a non-existent function 'get_weather()' with arguments: {\"city\":\"Paris\"}"
    ));
}

#[test]
fn a_vision_model_attaches_image_paths_and_keeps_them_until_a_text_model_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("cat.png");
    std::fs::write(&picture, b"\x89PNG\r\n\x1a\npixels").unwrap();
    let mut server = FakeServer {
        show_response: json!({"capabilities": ["completion"]}),
        ..FakeServer::default()
    };
    let options = Options {
        multimodal: true,
        ..Options::new("gemma3")
    };
    let first = format!("{} what is this?", picture.display());
    let after_load = format!("and {}", picture.display());
    let lines = [
        first.as_str(),
        "and now?",
        "/load textonly",
        after_load.as_str(),
    ];
    let transcript = session(options, &mut Script::lines(&lines), &mut server);
    // A line starting with an image path is a message, with the image attached.
    assert!(
        !transcript.out.contains("Unknown command"),
        "{}",
        transcript.out
    );
    assert!(transcript
        .err
        .contains(&format!("Added image '{}'", picture.display())));
    let turn1 = &server.chats[0]["messages"][0];
    assert_eq!(turn1["content"], "what is this?");
    assert_eq!(turn1["images"].as_array().map(Vec::len), Some(1));
    // The next turn sends the conversation with the image still in it.
    assert_eq!(server.chats[1]["messages"][0]["images"], turn1["images"]);
    // A model without `vision`: paths are text again.
    let last = &server.chats[2]["messages"][0];
    assert_eq!(last["content"], after_load);
    assert!(last.get("images").is_none());
}
