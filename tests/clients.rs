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

/// Images from the official clients: ollama-python's `images` (a path, bytes or base64),
/// OpenAI's `image_url` data URLs and Anthropic's base64 image blocks
/// (`tests/clients/image_clients.py`), to SmolLM2 with a random-weight projector.
#[test]
fn official_python_clients_send_images() {
    let server = Server::start();
    let projector = common::test_gguf()
        .with_file_name("projectors")
        .join("gemma3-576.gguf");
    let dir =
        common::modelfile_dir("FROM ./model.gguf\nFROM ./mmproj.gguf\nPARAMETER stop <|im_end|>\n");
    std::os::unix::fs::symlink(&projector, dir.path().join("mmproj.gguf")).unwrap();
    let modelfile = dir.path().join("Modelfile");
    let created = server.run(&["create", "smolv", "-f", modelfile.to_str().unwrap()]);
    assert!(created.status.success(), "{}", common::stderr(&created));
    let _plain = create_model(&server, "smol", MODEL);
    let image = dir.path().join("picture.png");
    std::fs::write(
        &image,
        common::png(32, 32, |x, y| [(x * 8) as u8, (y * 8) as u8, 90]),
    )
    .unwrap();
    let address = format!("http://{}", server.addr);
    let output = run_client_script(
        "image_clients.py",
        &[&address, "smolv", "smol", image.to_str().unwrap()],
    );
    assert!(stdout(&output).contains("all image client checks passed"));
}
