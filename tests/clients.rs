//! The official OpenAI, Anthropic and Ollama Python clients against the real server and models
//! (SmolLM2, and all-MiniLM-L6-v2 for embeddings; `tests/clients/sdk_clients.py`), in a
//! virtual environment made by `scripts/python-clients.sh` (or the python named by
//! `ROLLAMA_TEST_PYTHON`).

mod common;

use common::{create_model, stderr, stdout, Server, THINKING_MODEL, TOOLS_MODEL};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ROLLAMA_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/python-clients.sh");
    let output = Command::new(script)
        .output()
        .expect("run python-clients.sh");
    assert!(output.status.success(), "{}", stderr(&output));
    PathBuf::from(stdout(&output).trim())
}

#[test]
fn official_python_clients_work_unchanged() {
    let python = python();
    let server = Server::start();
    let _plain = create_model(&server, "smol", MODEL);
    let _tools = create_model(&server, "smol-tools", TOOLS_MODEL);
    let _thinker = create_model(&server, "thinker", THINKING_MODEL);
    let minilm = common::test_model_dir("all-minilm-l6-v2");
    common::import_dir(&server, "minilm", &minilm, &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/sdk_clients.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(format!("http://{}", server.addr))
        .arg("smol")
        .arg("minilm")
        .arg("thinker")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the client script");
    // A generation that runs away must fail the test, not hang the suite.
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "client checks failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(stdout(&output).contains("all client checks passed"));
}
