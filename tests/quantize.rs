//! `create --quantize` through the real binary: an F16 model (made here from the test model
//! with the same re-quantizer) quantized to Q8_0 and Q4_K_M, each smaller, reporting its
//! `quantization_level`, loading in the engine and answering.

mod common;

use common::{stderr, Server};

async fn answer(server: &Server, name: &str) -> String {
    common::greedy_answer(server, name, "What is the capital of France?").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_models_quantize_to_q8_0_and_q4_k_m_and_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let f16 = common::requantized(dir.path(), rollama::quantize::Target::F16);
    let server = Server::start();
    let output = common::create_from_gguf(&server, "smol-f16", &f16, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (level, f16_size) = common::level_and_size(&server, "smol-f16").await;
    assert_eq!(level, "F16");
    let reference = answer(&server, "smol-f16").await;
    assert!(reference.contains("Paris"), "{reference}");

    let mut previous = f16_size;
    for (kind, expected) in [("q8_0", "Q8_0"), ("q4_K_M", "Q4_K_M")] {
        let name = format!("smol-{kind}");
        let output = common::create_from_gguf(&server, &name, &f16, &["-q", kind]);
        assert!(output.status.success(), "{kind}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains(&format!("quantizing F16 model to {expected}")),
            "{err}"
        );
        let (level, size) = common::level_and_size(&server, &name).await;
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
