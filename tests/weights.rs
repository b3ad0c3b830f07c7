//! 4-bit weights: a Q4_0 model loads and answers as it is; with `ROLLAMA_CONVERT_WEIGHTS=q8_0`
//! Q4_0 and Q4_1 models are loaded from a Q8_0 copy made once; copies of removed models go at
//! the next start.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q4_0_models_answer_and_4_bit_weights_convert_to_q8_0_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let q4_0 = common::requantized(dir.path(), rollama::quantize::Target::Q4_0);

    // By default nothing is converted, and Q4_0 runs as it is.
    let store = tempfile::tempdir().unwrap();
    let models = store.path().join("models");
    let server = Server::start_with_store_env(&models, &[]);
    create_from(&server, "q41", &common::test_gguf());
    create_from(&server, "q40", &q4_0);
    let text = common::greedy_answer(&server, "q40", "What is the capital of France?").await;
    assert!(!text.trim().is_empty(), "Q4_0 answered nothing");
    assert!(!common::greedy_answer(&server, "q41", "Hi").await.is_empty());
    assert_eq!(converted(&models), Vec::<String>::new());
    drop(server);

    // Opted in: both are loaded from Q8_0 copies.
    let convert = [("ROLLAMA_CONVERT_WEIGHTS", "q8_0")];
    let server = Server::start_with_store_env(&models, &convert);
    assert!(!common::greedy_answer(&server, "q41", "Hi").await.is_empty());
    assert!(!common::greedy_answer(&server, "q40", "Hi").await.is_empty());
    let names = converted(&models);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("-q4_1-q8_0.gguf")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("-q4_0-q8_0.gguf")),
        "{names:?}"
    );

    // A removed model's converted copy goes at the next start.
    let rm = server.run(&["rm", "q40"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    drop(server);
    let _server = Server::start_with_store_env(&models, &convert);
    let names = converted(&models);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("-q4_1-q8_0.gguf"), "{names:?}");
}
