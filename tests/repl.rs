//! The interactive chat driven through its line-source seam against a real server and the
//! real model: /set, /show, /save, """ multi-line input, Ctrl-C in the middle of an answer
//! (the session goes on), /bye.

mod common;

use common::{create_model, Server};
use rollama::chat::{self, LineSource, ReadResult};
use rollama::cli::interactive::ClientBackend;
use rollama::client::Client;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Feeds scripted lines; `Some(delay)` before a line raises the cancel flag after that delay
/// once the line has been handed over (a Ctrl-C while the answer streams).
struct Script {
    lines: Vec<(String, Option<Duration>)>,
    cancel: Arc<AtomicBool>,
}

impl LineSource for Script {
    fn read_line(&mut self, _prompt: &str) -> std::io::Result<ReadResult> {
        if self.lines.is_empty() {
            return Ok(ReadResult::Eof);
        }
        let (line, interrupt_after) = self.lines.remove(0);
        if let Some(delay) = interrupt_after {
            let cancel = self.cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                cancel.store(true, Ordering::SeqCst);
            });
        }
        Ok(ReadResult::Line(line))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_sets_shows_saves_and_survives_ctrl_c() {
    let server = Server::start();
    let _dir = create_model(
        &server,
        "smol",
        "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n",
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let lines = vec![
        ("/set parameter num_predict 6".to_string(), None),
        ("/set system You are terse.".to_string(), None),
        ("Hello there".to_string(), None),
        ("/show system".to_string(), None),
        ("\"\"\"First line".to_string(), None),
        ("second line\"\"\"".to_string(), None),
        ("/set parameter num_predict 2000".to_string(), None),
        (
            "Tell me a very long story about the sea.".to_string(),
            Some(Duration::from_millis(1500)),
        ),
        ("/set parameter num_predict 4".to_string(), None),
        ("Still there?".to_string(), None),
        ("/save smol-saved".to_string(), None),
        ("/bye".to_string(), None),
    ];
    let mut script = Script {
        lines,
        cancel: cancel.clone(),
    };
    let url = format!("http://{}", server.addr);
    let handle = tokio::runtime::Handle::current();
    let (out, err) = tokio::task::spawn_blocking(move || {
        let mut backend = ClientBackend::new(Client::new(&url), handle, None, None);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let options = chat::Options::new("smol");
        let started = std::time::Instant::now();
        chat::run(
            options,
            &mut script,
            &mut backend,
            &mut out,
            &mut err,
            &cancel,
        )
        .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Ctrl-C did not stop the long answer"
        );
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    })
    .await
    .unwrap();

    assert!(out.contains("Set parameter 'num_predict' to '6'"), "{out}");
    assert!(out.contains("Set system message."), "{out}");
    assert!(out.contains("You are terse."), "{out}");
    assert!(
        out.contains("Created new model 'smol-saved'"),
        "{out}\n{err}"
    );

    let show: Value = reqwest::Client::new()
        .post(server.url("/api/show"))
        .json(&json!({"model": "smol-saved"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["system"], "You are terse.", "{show}");
    let messages = show["messages"].as_array().unwrap();
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(contents.contains(&"Hello there"), "{contents:?}");
    assert!(
        contents.contains(&"First line\nsecond line"),
        "{contents:?}"
    );
    assert!(
        contents.contains(&"Still there?"),
        "the session went on after Ctrl-C: {contents:?}"
    );
    // Answers were recorded for the turns that finished.
    assert!(messages.iter().any(|m| m["role"] == "assistant"));
}

/// Ctrl+G in a real terminal: `rollama run` under `script` (a pseudo-terminal), the line typed
/// so far handed to `OLLAMA_EDITOR`, what the editor saved put back on the prompt, and Enter
/// sending it.
#[test]
fn ctrl_g_composes_the_prompt_in_the_editor() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let _dir = create_model(
        &server,
        "smol",
        "FROM ./model.gguf\nPARAMETER num_predict 4\nPARAMETER stop <|im_end|>\n",
    );
    let scratch = tempfile::tempdir().unwrap();
    let editor = scratch.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nprintf ' and more' >> \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &format!("{} run smol", common::BIN), "/dev/null"])
        .env("OLLAMA_HOST", &server.addr)
        .env("HOME", server.home.path())
        .env("OLLAMA_EDITOR", &editor)
        .env_remove("XDG_DATA_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) runs the REPL in a pseudo-terminal");
    let mut keys = child.stdin.take().unwrap();
    let pause = || std::thread::sleep(Duration::from_millis(800));
    pause();
    for input in ["Say hi", "\x07", "\r"] {
        keys.write_all(input.as_bytes()).unwrap();
        keys.flush().unwrap();
        pause();
    }
    std::thread::sleep(Duration::from_secs(3));
    keys.write_all(b"/bye\r").unwrap();
    keys.flush().unwrap();
    pause();
    drop(keys);
    // A REPL that never ends must fail the test, not hang the suite.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(screen.contains(">>> Say hi and more"), "{screen:?}");
    // What was sent is the edited line (the REPL's history holds each message sent).
    let history_file = server.home.path().join(".local/share/rollama/history");
    let history = std::fs::read_to_string(history_file).unwrap();
    let sent: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(sent, ["Say hi and more", "/bye"], "{history:?}");
}
