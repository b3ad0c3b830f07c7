//! Reranking through the real binary: the cross-encoder of scripts/make-test-reranker.py
//! (all-MiniLM-L6-v2's encoder and pooler under a random one-label classifier) imported from
//! its directory, then `/api/rerank` and `/v1/rerank` in the shapes clients send (Open
//! WebUI's external reranker, Jina/Cohere, TEI), scores compared with llama-server
//! `--reranking` on the very GGUF rollama wrote, and the refusals.

mod common;

use common::llama_server::LlamaServer;
use common::{post, stderr, Server};
use serde_json::{json, Value};

const QUERY: &str = "What animals live near Peru?";

fn documents() -> Vec<String> {
    [
        "The giant panda is a bear species endemic to China.",
        "The llama is a domesticated South American camelid.",
        "Guanacos are wild camelids native to South America.",
        "Capital punishment has existed in the United States since before it was a country.",
        "Vicuñas live at high altitude in the Andes.",
        "A ferry timetable lists departures from the harbour.",
    ]
    .map(str::to_string)
    .to_vec()
}

/// A server with the test reranker created as `reranker`.
fn server_with_reranker() -> Server {
    let server = Server::start();
    let log = common::import_dir(
        &server,
        "reranker",
        &common::test_model_dir("test-reranker"),
        &[],
    );
    assert!(log.contains("converting model"), "{log}");
    server
}

/// Scores by document index from a Jina/Cohere or native reply.
fn scores_by_index(reply: &Value, count: usize) -> Vec<f64> {
    let mut scores = vec![f64::NAN; count];
    for result in reply["results"].as_array().unwrap() {
        scores[result["index"].as_u64().unwrap() as usize] =
            result["relevance_score"].as_f64().unwrap();
    }
    assert!(scores.iter().all(|s| s.is_finite()), "{reply}");
    scores
}

async fn rerank(server: &Server, body: Value) -> Value {
    let (status, reply) = post(server, "/api/rerank", body).await;
    assert_eq!(status, 200, "{reply}");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_encoder_ranks_documents_as_llama_server_does() {
    let server = server_with_reranker();
    let (status, show) = post(&server, "/api/show", json!({"model": "reranker"})).await;
    assert_eq!(status, 200, "{show}");
    assert_eq!(show["capabilities"], json!(["rerank"]), "{show}");
    assert_eq!(show["model_info"]["bert.pooling_type"], 4);
    let tags = common::get_json(&server, "/api/tags").await;
    assert_eq!(
        tags["models"][0]["capabilities"],
        json!(["rerank"]),
        "{tags}"
    );

    // Native: every document scored, best first, each index once.
    let docs = documents();
    let reply = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": docs}),
    )
    .await;
    assert_eq!(reply["model"], "reranker");
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), docs.len());
    let ranked: Vec<f64> = results
        .iter()
        .map(|r| r["relevance_score"].as_f64().unwrap())
        .collect();
    assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "{reply}");
    let mut indexes: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..docs.len() as u64).collect::<Vec<_>>());
    assert!(results.iter().all(|r| r.get("document").is_none()));
    let scores = scores_by_index(&reply, docs.len());
    // The documents get different scores (the head is not constant).
    assert!(
        ranked.first().unwrap() - ranked.last().unwrap() > 0.01,
        "{reply}"
    );
    assert!(reply["prompt_eval_count"].as_u64().unwrap() > 6 * 10);

    // Deterministic: the same request gives the same bits; the same pairs in another order
    // (other batch neighbours: ggml's attention rounds a batch of 64 tokens or more
    // differently) give the same scores to within 2e-3.
    let again = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": docs}),
    )
    .await;
    assert_eq!(scores_by_index(&again, docs.len()), scores);
    let reversed: Vec<String> = docs.iter().rev().cloned().collect();
    let flipped = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": reversed}),
    )
    .await;
    let mut flipped_scores = scores_by_index(&flipped, docs.len());
    flipped_scores.reverse();
    for (a, b) in flipped_scores.iter().zip(&scores) {
        assert!((a - b).abs() < 2e-3, "{flipped_scores:?} vs {scores:?}");
    }

    // top_n and the documents returned.
    let top = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": docs, "top_n": 2,
               "return_documents": true}),
    )
    .await;
    let top_results = top["results"].as_array().unwrap();
    assert_eq!(top_results.len(), 2, "{top}");
    for (result, expected) in top_results.iter().zip(results) {
        assert_eq!(result["index"], expected["index"]);
        let index = result["index"].as_u64().unwrap() as usize;
        assert_eq!(result["document"], json!(docs[index]));
    }

    // Open WebUI's external reranker: its exact request, with its Bearer header.
    let open_webui = reqwest::Client::new()
        .post(server.url("/v1/rerank"))
        .header("Authorization", "Bearer sk-anything")
        .json(
            &json!({"model": "reranker", "query": QUERY, "documents": docs,
                      "top_n": docs.len()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(open_webui.status(), 200);
    let jina: Value = open_webui.json().await.unwrap();
    assert_eq!(jina["object"], "list");
    assert_eq!(jina["model"], "reranker");
    assert!(jina["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(scores_by_index(&jina, docs.len()), scores);
    // Jina's structured documents come back as {"text": …}.
    let (status, structured) = post(
        &server,
        "/v1/rerank",
        json!({"model": "reranker", "query": QUERY, "top_n": 1, "return_documents": true,
               "documents": docs.iter().map(|d| json!({"text": d})).collect::<Vec<_>>()}),
    )
    .await;
    assert_eq!(status, 200, "{structured}");
    let best = &structured["results"][0];
    assert_eq!(best["index"], results[0]["index"]);
    assert_eq!(
        best["document"]["text"],
        results[0]["index"]
            .as_u64()
            .map(|i| docs[i as usize].clone())
            .unwrap()
    );
    // TEI's shape: `texts` in, a flat array of {index, score, text} out.
    let (status, tei) = post(
        &server,
        "/v1/rerank",
        json!({"model": "reranker", "query": QUERY, "texts": docs, "return_text": true}),
    )
    .await;
    assert_eq!(status, 200, "{tei}");
    let tei = tei.as_array().unwrap_or_else(|| panic!("{tei}"));
    assert_eq!(tei.len(), docs.len());
    assert_eq!(tei[0]["index"], results[0]["index"]);
    assert_eq!(tei[0]["score"], results[0]["relevance_score"]);
    assert!(tei[0]["text"].is_string());

    // llama-server --reranking on the GGUF rollama wrote: the same scores (within the
    // rounding of different batch shapes), the same order.
    let blob = common::model_blob(&server.models, "reranker");
    let reference = LlamaServer::start(&["-m", blob.to_str().unwrap(), "--reranking"]).await;
    let expected = reference
        .post("/v1/rerank", json!({"query": QUERY, "documents": docs}))
        .await;
    let expected = scores_by_index(&expected, docs.len());
    for (got, want) in scores.iter().zip(&expected) {
        assert!(
            (got - want).abs() < 2e-3,
            "{scores:?} vs llama-server {expected:?}"
        );
    }
    let order = |s: &[f64]| {
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|a, b| s[*b].total_cmp(&s[*a]));
        order
    };
    assert_eq!(order(&scores), order(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_requests_are_checked_and_long_documents_cut_or_refused() {
    let server = server_with_reranker();
    let docs = documents();

    // No documents loads the model and answers no results (as /api/embed with no input).
    for path in ["/api/rerank", "/v1/rerank"] {
        let (status, reply) = post(
            &server,
            path,
            json!({"model": "reranker", "query": QUERY, "documents": []}),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["results"], json!([]));
    }
    let ps = common::get_json(&server, "/api/ps").await;
    assert_eq!(ps["models"][0]["name"], "reranker:latest", "{ps}");

    // A long list: every document scored, across many batches, the same score each gets in
    // a short list.
    let many: Vec<String> = (0..300)
        .map(|i| format!("{} (copy {i})", docs[i % docs.len()]))
        .collect();
    let reply = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": many}),
    )
    .await;
    assert_eq!(reply["results"].as_array().unwrap().len(), 300);
    let few = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": &many[..3]}),
    )
    .await;
    let (many_scores, few_scores) = (scores_by_index(&reply, 300), scores_by_index(&few, 3));
    for (a, b) in many_scores.iter().zip(&few_scores) {
        assert!((a - b).abs() < 2e-3, "{a} vs {b}");
    }

    // Bad requests: 400s that say what is wrong.
    let too_many: Vec<&str> = vec!["x"; 1001];
    let cases = [
        (
            json!({"model": "reranker", "documents": docs}),
            "query is required",
        ),
        (
            json!({"model": "reranker", "query": 5, "documents": docs}),
            "query must be a string",
        ),
        (
            json!({"model": "reranker", "query": QUERY, "documents": [1, 2]}),
            "documents must be an array",
        ),
        (
            json!({"model": "reranker", "query": QUERY, "documents": "one"}),
            "documents must be an array",
        ),
        (
            json!({"model": "reranker", "query": QUERY, "documents": docs, "top_n": -1}),
            "top_n must be a positive integer",
        ),
        (
            json!({"model": "reranker", "query": QUERY, "documents": too_many}),
            "too many documents: 1001 (at most 1000 per request)",
        ),
    ];
    for (body, message) in cases {
        let (status, reply) = post(&server, "/api/rerank", body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(
            reply["error"].as_str().unwrap().contains(message),
            "{body}: {reply}"
        );
        // The same refusal in OpenAI's error shape on /v1/rerank.
        let (status, reply) = post(&server, "/v1/rerank", body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{reply}"
        );
        assert_eq!(reply["error"]["type"], "invalid_request_error");
    }
    let (status, reply) = post(
        &server,
        "/api/rerank",
        json!({"model": "nothing-here", "query": QUERY, "documents": docs}),
    )
    .await;
    assert_eq!(status, 404, "{reply}");

    // A document longer than the context: cut to fit by default (the score is the cut
    // document's), refused with `truncate: false`, as Ollama's embeddings are.
    let long = "the committee met again about the ferry timetable ".repeat(60);
    let options = json!({"num_ctx": 64});
    let cut = rerank(
        &server,
        json!({"model": "reranker", "query": QUERY, "documents": [long], "options": options}),
    )
    .await;
    assert_eq!(cut["results"].as_array().unwrap().len(), 1);
    assert_eq!(cut["prompt_eval_count"], 64, "{cut}");
    let (status, reply) = post(
        &server,
        "/api/rerank",
        json!({"model": "reranker", "query": QUERY, "documents": [long], "options": options,
               "truncate": false}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["error"],
        "the input length exceeds the context length"
    );
    // A query that leaves no room for any document.
    let (status, reply) = post(
        &server,
        "/api/rerank",
        json!({"model": "reranker", "query": long, "documents": ["x"], "options": options}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("leaves no room for a document"),
        "{reply}"
    );

    // What a reranker is not: an embedding model, a chat model.
    for (path, body) in [
        ("/api/embed", json!({"model": "reranker", "input": "hello"})),
        (
            "/api/chat",
            json!({"model": "reranker", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/generate",
            json!({"model": "reranker", "prompt": "hi"}),
        ),
    ] {
        let (status, reply) = post(&server, path, body).await;
        assert_eq!(status, 400, "{path}: {reply}");
        assert!(
            reply["error"]
                .as_str()
                .unwrap()
                .contains("does not support"),
            "{path}: {reply}"
        );
    }

    // `rollama run` of a reranker: a one-line hint, not a chat.
    let output = server.run(&["run", "reranker", "hello"]);
    assert!(!output.status.success());
    let hint = stderr(&output);
    assert!(
        hint.contains("reranker is a reranking model") && hint.contains("/api/rerank"),
        "{hint}"
    );
    assert_eq!(hint.trim().lines().count(), 1, "{hint}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_without_rank_pooling_are_refused_with_what_they_are() {
    let server = Server::start();
    common::import_dir(
        &server,
        "minilm",
        &common::test_model_dir("all-minilm-l6-v2"),
        &[],
    );
    let output = common::create_from_gguf(&server, "smollm2", &common::test_gguf(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let body = |model: &str| json!({"model": model, "query": QUERY, "documents": ["a", "b"]});
    let (status, reply) = post(&server, "/api/rerank", body("minilm")).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["error"],
        "\"minilm\" does not support reranking: it is an embedding model (pooling: mean); a \
         reranker has a classification head (pooling: rank)"
    );
    let (status, reply) = post(&server, "/v1/rerank", body("smollm2")).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"smollm2\" does not support reranking: it is a text model"),
        "{reply}"
    );
}
