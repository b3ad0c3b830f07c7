//! Clients that leave: a `stream: false` request whose client gives up, and a request still
//! queued behind it whose client gives up too, must stop their work (the slot goes free, the
//! queued one never starts, the CPU goes quiet), on the native and OpenAI routes alike. And a
//! request that waited in the queue reports no load time for a model that was loaded already.
//! All through the real server with default settings (one slot) and the real model.

mod common;

use common::{create_model, get_json, metric, metrics_text, post, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MODEL: &str = "FROM ./model.gguf\nPARAMETER stop <|im_end|>\n";

/// A prompt the model answers at length: greedy, it counts on far past 600 tokens' worth of
/// time (the token counter below tells if it ever finished instead of being cut short).
const COUNT: &str = "Count from 1 to 1000, separated by commas.";

/// One route's request bodies: a 600-token answer and a 1-token one.
struct Route {
    path: &'static str,
    long: Value,
    short: Value,
}

fn routes() -> Vec<Route> {
    let chat = |tokens: u32| {
        json!({"model": "smol", "messages": [{"role": "user", "content": COUNT}], "stream": false,
               "options": {"temperature": 0, "num_predict": tokens}})
    };
    vec![
        Route {
            path: "/api/generate",
            long: json!({"model": "smol", "prompt": COUNT, "stream": false,
                         "options": {"temperature": 0, "num_predict": 600}}),
            short: json!({"model": "smol", "prompt": COUNT, "stream": false,
                          "options": {"temperature": 0, "num_predict": 1}}),
        },
        Route {
            path: "/api/chat",
            long: chat(600),
            short: chat(1),
        },
        Route {
            path: "/v1/chat/completions",
            long: json!({"model": "smol", "messages": [{"role": "user", "content": COUNT}],
                         "temperature": 0, "max_tokens": 600}),
            short: json!({"model": "smol", "messages": [{"role": "user", "content": COUNT}],
                          "temperature": 0, "max_tokens": 1}),
        },
    ]
}

/// Sends `body` and gives up after `patience`, as a client with a time-out does; panics if
/// the server answered first.
fn abandon(
    server: &Server,
    path: &str,
    body: &Value,
    patience: Duration,
) -> tokio::task::JoinHandle<()> {
    let request = reqwest::Client::new()
        .post(server.url(path))
        .json(body)
        .timeout(patience);
    tokio::spawn(async move {
        match request.send().await {
            Err(error) if error.is_timeout() => {}
            Err(error) => panic!("the request failed before its client gave up: {error}"),
            Ok(response) => panic!(
                "the server answered before the client gave up: {}",
                response.status()
            ),
        }
    })
}

async fn loaded_server() -> (Server, tempfile::TempDir) {
    let server = Server::start();
    let dir = create_model(&server, "smol", MODEL);
    let (status, body) = post(&server, "/api/generate", json!({"model": "smol"})).await;
    assert_eq!(status, 200, "{body}");
    (server, dir)
}

#[tokio::test]
async fn clients_that_leave_free_the_slot_and_queued_ones_never_start() {
    let (server, _dir) = loaded_server().await;
    for route in routes() {
        let started = metric(&server, "rollama_generations_started_total").await;
        let generated = metric(&server, "rollama_generated_tokens_total").await;
        let abandoned = metric(&server, "rollama_queue_abandoned_requests_total").await;

        // The first client waits half a second for its 600 tokens; a second one, queued
        // behind it, gives up sooner.
        let first = abandon(&server, route.path, &route.long, Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let queued = abandon(&server, route.path, &route.long, Duration::from_millis(250));
        queued.await.unwrap();
        first.await.unwrap();

        let left = Instant::now();
        let (status, body) = post(&server, route.path, route.short.clone()).await;
        let took = left.elapsed();
        assert_eq!(status, 200, "{} {body}", route.path);
        assert!(
            took < Duration::from_millis(1500),
            "{}: a 1-token request after the client left took {took:?}",
            route.path
        );
        assert_eq!(
            metric(&server, "rollama_generations_started_total").await - started,
            2.0,
            "{}: only the first request and the 1-token one started generating",
            route.path
        );
        assert_eq!(
            metric(&server, "rollama_queue_abandoned_requests_total").await - abandoned,
            1.0,
            "{}: the queued request was abandoned",
            route.path
        );
        assert_eq!(
            metric(&server, "rollama_generated_tokens_total").await - generated,
            1.0,
            "{}: the abandoned generation never finished (only the 1-token answer did)",
            route.path
        );
    }
}

#[tokio::test]
async fn the_cpu_goes_idle_within_a_second_of_a_client_leaving() {
    let (server, _dir) = loaded_server().await;
    for route in routes() {
        abandon(&server, route.path, &route.long, Duration::from_millis(500))
            .await
            .unwrap();
        server.assert_goes_idle().await;
    }
}

#[tokio::test]
async fn waiting_in_the_queue_is_not_reported_as_load_time() {
    let (server, _dir) = loaded_server().await;
    for path in ["/api/generate", "/api/chat"] {
        let route = routes().into_iter().find(|r| r.path == path).unwrap();
        let mut long = route.long.clone();
        // Long enough to outlast the short request's head start on either engine.
        long["options"]["num_predict"] = json!(150);
        let url = server.url(path);
        let running = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&long)
                .send()
                .await
                .unwrap()
                .status()
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, body) = post(&server, path, route.short.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(running.await.unwrap(), 200);
        let total = Duration::from_nanos(body["total_duration"].as_u64().unwrap());
        let load = Duration::from_nanos(body["load_duration"].as_u64().unwrap());
        assert!(
            total > Duration::from_millis(200),
            "{path}: the request waited behind the running one: {body}"
        );
        assert!(
            load < Duration::from_millis(50),
            "{path}: load_duration {load:?} for a loaded model"
        );
    }
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("rollama_queue_wait_seconds_count"),
        "{metrics}"
    );
    assert!(metric(&server, "rollama_queue_wait_seconds_sum").await > 0.2);
    // The model stays loaded throughout.
    assert_eq!(
        get_json(&server, "/api/ps").await["models"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
