//! Importing a llama-architecture Hugging Face directory (`FROM <dir>` with safetensors):
//! the directory is made from the SmolLM2 test GGUF by scripts/smollm2-to-safetensors.py
//! (dequantized with llama.cpp's own `gguf` package), imported to F16 through the real binary,
//! and compared with the original: tensors, tokens and greedy answers; then quantized.

mod common;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use common::{post, stderr, Server};
use serde_json::json;
use std::path::Path;

/// Each tensor of `path`, dequantized, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<f32>, Vec<usize>)> {
    let mut file = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let tensor = content.tensor(&mut file, name, &Device::Cpu).unwrap();
            let dims = tensor.shape().dims().to_vec();
            let values = tensor
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (name.clone(), values, dims)
        })
        .collect()
}

async fn tokens(server: &Server, model: &str, text: &str) -> serde_json::Value {
    let (status, reply) = post(
        server,
        "/api/tokenize",
        json!({"model": model, "content": text}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    reply["tokens"].clone()
}

async fn greedy(server: &Server, model: &str, prompt: &str) -> String {
    let (status, body) = post(
        server,
        "/api/chat",
        json!({"model": model, "messages": [{"role": "user", "content": prompt}],
               "stream": false, "options": {"temperature": 0, "num_predict": 24}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["message"]["content"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_llama_safetensors_directory_imports_to_f16_and_answers_like_the_original() {
    let models = tempfile::tempdir().unwrap();
    let server = Server::start_with_store(models.path());
    let dir = common::test_model_dir("smollm2-safetensors");
    let log = common::import_dir(&server, "smol-import", &dir, &[]);
    assert!(log.contains("converting model"), "{log}");
    let output = common::create_from_gguf(&server, "smol-orig", &common::test_gguf(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));

    let (status, show) = post(&server, "/api/show", json!({"model": "smol-import"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["details"]["family"], "llama");
    assert_eq!(show["details"]["quantization_level"], "F16");
    assert_eq!(show["details"]["parameter_size"], "134.52M", "{show}");
    assert!(show["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("completion")));

    // The same tensors under the same names (llama.cpp's), equal up to F16 rounding; query and
    // key rows back in llama.cpp's rotary order.
    let original = tensors(&common::test_gguf());
    let imported = tensors(&common::model_blob(models.path(), "smol-import"));
    assert_eq!(
        original.iter().map(|t| &t.0).collect::<Vec<_>>(),
        imported.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    for ((name, want, want_dims), (_, got, got_dims)) in original.iter().zip(&imported) {
        assert_eq!(want_dims, got_dims, "{name}");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let worst = want
            .iter()
            .zip(got)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= scale * 1e-3,
            "{name}: max error {worst} of {scale}"
        );
    }

    // The same tokens (tokenizer.json read back into GGUF keys).
    for text in [
        "Hello, world!",
        "  numbers 12345 and émojis 🎉",
        "<|im_start|>user\nhi<|im_end|>",
    ] {
        assert_eq!(
            tokens(&server, "smol-import", text).await,
            tokens(&server, "smol-orig", text).await,
            "{text:?}"
        );
    }

    // The same greedy answers. These prompts are chosen where the two agree for 24 tokens:
    // on others the answers part after a few tokens, because the original's Q4_1 matmuls
    // quantize the activations to Q8 and the F16 model's do not (the weights are equal, above).
    for prompt in [
        "What is 2+2?",
        "Who wrote Romeo and Juliet?",
        "What is the largest planet?",
    ] {
        let want = greedy(&server, "smol-orig", prompt).await;
        let got = greedy(&server, "smol-import", prompt).await;
        assert_eq!(got, want, "{prompt:?}");
    }

    // Quantized at create time from the directory: smaller, reported right, and answering.
    let (_, f16_size) = common::level_and_size(&server, "smol-import").await;
    let mut previous = f16_size;
    for (kind, expected) in [("q8_0", "Q8_0"), ("q4_K_M", "Q4_K_M")] {
        let name = format!("smol-import-{kind}");
        let log = common::import_dir(&server, &name, &dir, &["-q", kind]);
        assert!(
            log.contains(&format!("quantizing F16 model to {expected}")),
            "{log}"
        );
        let (level, size) = common::level_and_size(&server, &name).await;
        assert_eq!(level, expected);
        assert!(size < previous, "{kind}: {size} not below {previous}");
        previous = size;
        let answer = greedy(&server, &name, "What is 2+2?").await;
        assert!(answer.contains('4'), "{kind}: {answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_that_are_not_importable_get_clear_errors() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let refused = |config: &str, safetensors: &[u8], expected: &str| {
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), safetensors).unwrap();
        let output = common::create_from_dir(&server, "bad", dir.path(), &[]);
        assert!(!output.status.success());
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    };
    // An architecture the converter does not know.
    refused(
        r#"{"architectures":["GPT2LMHeadModel"]}"#,
        b"\x08\0\0\0\0\0\0\0{}      ",
        "unsupported architecture \"GPT2LMHeadModel\"",
    );
    // Safetensors that are not safetensors.
    refused(
        r#"{"architectures":["BertModel"],"num_attention_heads":2}"#,
        b"not a safetensors file",
        "model.safetensors",
    );

    // A directory with neither GGUF nor safetensors files.
    let empty = tempfile::tempdir().unwrap();
    let output = common::create_from_dir(&server, "bad", empty.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no GGUF or safetensors files"),
        "{}",
        stderr(&output)
    );
    let tags = common::get_json(&server, "/api/tags").await;
    assert_eq!(tags["models"], json!([]));
}
