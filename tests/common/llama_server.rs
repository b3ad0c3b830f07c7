//! llama.cpp's own `llama-server`, the reference the tests compare rollama with.
//! `ROLLAMA_TEST_LLAMA_SERVER` names the binary (scripts/test.sh builds it with
//! scripts/bench/build-llama-server.sh); the default is where that script puts it.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The llama-server binary the tests use (which may not exist yet).
pub fn binary() -> PathBuf {
    std::env::var_os("ROLLAMA_TEST_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/rollama/llama.cpp-build/bin/llama-server")
        })
}

/// A running llama-server on a free loopback port, stopped on drop.
pub struct LlamaServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LlamaServer {
    /// llama-server with `args` (the model, context size, `--jinja`…) on two threads and one
    /// slot, once it answers `/health`.
    pub async fn start(args: &[&str]) -> LlamaServer {
        let binary = binary();
        assert!(
            binary.exists(),
            "{} is missing: build it with scripts/bench/build-llama-server.sh (scripts/test.sh does)",
            binary.display()
        );
        let port = super::free_port();
        let child = Command::new(&binary)
            .args(args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", "2", "-np", "1", "--no-webui"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let mut server = LlamaServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            let health = reqwest::get(format!("{}/health", server.base)).await;
            if health.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60)
                    && server.child.try_wait().unwrap().is_none(),
                "llama-server did not become ready with {args:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs `body` to `path`, asserting a 200; the reply as JSON.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}
