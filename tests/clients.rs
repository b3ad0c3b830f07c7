//! The official OpenAI, Anthropic and Ollama Python clients against the real server and models
//! (SmolLM2, and all-MiniLM-L6-v2 for embeddings; `tests/clients/sdk_clients.py`), in a
//! virtual environment made by `scripts/python-clients.sh` (or the python named by
//! `ROLLAMA_TEST_PYTHON`).

mod common;

use common::{create_model, run_client_script, stdout, Server, THINKING_MODEL, TOOLS_MODEL};

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

#[test]
fn official_python_clients_work_unchanged() {
    let server = Server::start();
    let _plain = create_model(&server, "smol", MODEL);
    let _tools = create_model(&server, "smol-tools", TOOLS_MODEL);
    let _thinker = create_model(&server, "thinker", THINKING_MODEL);
    let minilm = common::test_model_dir("all-minilm-l6-v2");
    common::import_dir(&server, "minilm", &minilm, &[]);
    let address = format!("http://{}", server.addr);
    let output = run_client_script("sdk_clients.py", &[&address, "smol", "minilm", "thinker"]);
    assert!(stdout(&output).contains("all client checks passed"));
}
