//! `create --quantize` through the real binary: an F16 model (made here from the test model
//! with the same re-quantizer) quantized to Q8_0 and Q4_K_M, each smaller, reporting its
//! `quantization_level`, loading in the engine and answering.

mod common;

use common::{stderr, Server};
use serde_json::{json, Value};

/// The test model re-quantized to F16 (what an F16 GGUF from llama.cpp's converter holds).
fn f16_model(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("smollm2-f16.gguf");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    rollama::quantize::requantize(
        &common::test_gguf(),
        rollama::quantize::Target::F16,
        &mut file,
        |_, _| {},
    )
    .unwrap();
    drop(file);
    path
}

fn create(
    server: &Server,
    name: &str,
    gguf: &std::path::Path,
    quantize: Option<&str>,
) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(gguf, dir.path().join("model.gguf")).unwrap();
    std::fs::write(
        dir.path().join("Modelfile"),
        "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n",
    )
    .unwrap();
    let modelfile = dir.path().join("Modelfile");
    let mut args = vec!["create", name, "-f", modelfile.to_str().unwrap()];
    if let Some(kind) = quantize {
        args.extend(["-q", kind]);
    }
    server.run(&args)
}

async fn level_and_size(server: &Server, name: &str) -> (String, u64) {
    let (status, show) = common::post(server, "/api/show", json!({"model": name})).await;
    assert_eq!(status, 200, "{show}");
    let tags: Value = reqwest::get(server.url("/api/tags"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let size = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == format!("{name}:latest"))
        .unwrap()["size"]
        .as_u64()
        .unwrap();
    (
        show["details"]["quantization_level"]
            .as_str()
            .unwrap()
            .to_string(),
        size,
    )
}

async fn answer(server: &Server, name: &str) -> String {
    common::greedy_answer(server, name, "What is the capital of France?").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_models_quantize_to_q8_0_and_q4_k_m_and_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let f16 = f16_model(dir.path());
    let server = Server::start();
    let output = create(&server, "smol-f16", &f16, None);
    assert!(output.status.success(), "{}", stderr(&output));
    let (level, f16_size) = level_and_size(&server, "smol-f16").await;
    assert_eq!(level, "F16");
    let reference = answer(&server, "smol-f16").await;
    assert!(reference.contains("Paris"), "{reference}");

    let mut previous = f16_size;
    for (kind, expected) in [("q8_0", "Q8_0"), ("q4_K_M", "Q4_K_M")] {
        let name = format!("smol-{kind}");
        let output = create(&server, &name, &f16, Some(kind));
        assert!(output.status.success(), "{kind}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains(&format!("quantizing F16 model to {expected}")),
            "{err}"
        );
        let (level, size) = level_and_size(&server, &name).await;
        assert_eq!(level, expected);
        assert!(
            size < previous,
            "{kind}: {size} bytes, not below {previous}"
        );
        previous = size;
        // Greedy text may differ from F16's: quantized matmuls also quantize the activations
        // (to Q8), and this 135M model's greedy choice flips easily. It must load and answer.
        let text = answer(&server, &name).await;
        assert!(!text.trim().is_empty(), "{kind}: empty answer");
        eprintln!("{expected}: {size} bytes (F16 {f16_size}): {text:?}");
    }
    // Ollama's errors for an unsupported type or an already-quantized source: tests/cli.rs.
}
