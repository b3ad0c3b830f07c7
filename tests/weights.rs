//! Weight formats: every model loads as it is by default (Q4_0 included); on the mistralrs
//! engine, with `ROLLAMA_CONVERT_WEIGHTS=q8_0`, Q4_1 and Q5_0 weights (scalar kernels in
//! candle) load from a Q8_0 copy made once, with the same greedy answers on these prompts;
//! copies of removed models go at the next start.

mod common;

use common::{stderr, Server};

fn converted(models: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(models.join(".rollama/converted"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn create_from(server: &Server, name: &str, gguf: &std::path::Path) {
    let output = common::create_from_gguf(server, name, gguf, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// Prompts whose 12-token greedy answers stay the same when Q4_1 runs from a Q8_0 copy. (On
/// "What is the capital of France?" the answers part after five tokens: the copy is not
/// lossless, which is why it is opt-in.)
const PROMPTS: [&str; 2] = ["Say hello.", "What is 2+2?"];

async fn answers(server: &Server, model: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for prompt in PROMPTS {
        texts.push(common::greedy_answer(server, model, prompt).await);
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q4_0_models_answer_and_scalar_kernel_weights_convert_to_q8_0_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let q4_0 = common::requantized(dir.path(), rollama::quantize::Target::Q4_0);
    // SmolLM2's rows (576) are too short for K-quant blocks: its Q4_K_M is mostly Q5_0.
    let q4_k_m = common::requantized(dir.path(), rollama::quantize::Target::Q4KM);

    // By default every model runs as it is, Q4_0 included.
    let store = tempfile::tempdir().unwrap();
    let models = store.path().join("models");
    let server = Server::start_with_store_env(&models, &[]);
    create_from(&server, "q41", &common::test_gguf());
    create_from(&server, "q40", &q4_0);
    create_from(&server, "q4km", &q4_k_m);
    let text = common::greedy_answer(&server, "q40", "What is the capital of France?").await;
    assert!(!text.trim().is_empty(), "Q4_0 answered nothing");
    drop(server);

    // The copies are the mistralrs engine's (llama.cpp has fast kernels for every type).
    let mistralrs = ("ROLLAMA_ENGINE", "mistralrs");
    let server = Server::start_with_store_env(&models, &[mistralrs]);
    let q4_1_as_is = answers(&server, "q41").await;
    let q4_k_m_as_is = answers(&server, "q4km").await;
    assert_eq!(converted(&models), Vec::<String>::new());
    drop(server);

    // Opted in: the Q4_1 and Q5_0 tensors load from Q8_0 copies, Q4_0 as it is.
    let convert = [("ROLLAMA_CONVERT_WEIGHTS", "q8_0"), mistralrs];
    let server = Server::start_with_store_env(&models, &convert);
    assert_eq!(answers(&server, "q41").await, q4_1_as_is);
    // The Q5_0 copy keeps the first answer; on the second both say 4, in other words.
    let q4_k_m_copy = answers(&server, "q4km").await;
    assert_eq!(q4_k_m_copy[0], q4_k_m_as_is[0]);
    for text in [&q4_k_m_copy[1], &q4_k_m_as_is[1]] {
        assert!(text.contains('4'), "{text:?}");
    }
    assert!(!common::greedy_answer(&server, "q40", "Hi").await.is_empty());
    let names = converted(&models);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("-q4_1-q8_0.gguf")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.contains("-q5_0")), "{names:?}");

    // A removed model's converted copy goes at the next start.
    let rm = server.run(&["rm", "q41"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    drop(server);
    let _server = Server::start_with_store_env(&models, &convert);
    let names = converted(&models);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains("-q5_0"), "{names:?}");
}
