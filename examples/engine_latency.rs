//! Measures what rollama's HTTP layer costs per request: the same short generation run through
//! the engine in-process and through `POST /api/generate` (`stream:false`, `raw:true`) on a
//! running `rollama serve` that has the same GGUF loaded.
//!
//! Requests alternate (in-process, HTTP, in-process, …) so drift in machine load hits both
//! sides alike. `raw:true` keeps the server from rendering a template, so both sides tokenize
//! the same text and generate the same tokens; the difference is JSON parsing, routing, model
//! lookup, the scheduler lease and the response encoding.
//!
//! Short generations (1 token by default) keep the engine's own run-to-run jitter, which is
//! what hides a sub-millisecond difference, as small as it gets.
//!
//! Usage (`scripts/bench/bench.py` runs it):
//!   engine_latency GGUF --url http://127.0.0.1:PORT --model NAME [--requests N] [--tokens T]
//! Prints one JSON object with the per-request times in milliseconds, including the server
//! handler's own `total_duration` for each HTTP request.

use rollama::engine::sampler::SamplingOptions;
use rollama::engine::{Engine, EngineKind, Event, GenerateRequest, LoadOptions};
use rollama::gguf::Gguf;
use rollama::store::Digest;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PROMPT: &str = "The capital of France is";

struct Args {
    gguf: PathBuf,
    url: String,
    model: String,
    requests: usize,
    tokens: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut gguf = None;
    let mut url = None;
    let mut model = "smollm2".to_string();
    let mut requests = 60;
    let mut tokens = 1;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value("--url")?),
            "--model" => model = value("--model")?,
            "--requests" => {
                requests = value("--requests")?
                    .parse()
                    .map_err(|e| format!("--requests: {e}"))?
            }
            "--tokens" => {
                tokens = value("--tokens")?
                    .parse()
                    .map_err(|e| format!("--tokens: {e}"))?
            }
            _ if gguf.is_none() && !arg.starts_with("--") => gguf = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument `{arg}`")),
        }
    }
    Ok(Args {
        gguf: gguf.ok_or(
            "usage: engine_latency GGUF --url URL [--model NAME] [--requests N] [--tokens T]",
        )?,
        url: url.ok_or("--url is required")?,
        model,
        requests,
        tokens,
    })
}

/// One in-process generation, timed from tokenizing to the final event.
async fn in_process(engine: &Engine, tokens: usize) -> Result<Timing, String> {
    let started = Instant::now();
    let prompt = engine
        .tokenize_text(PROMPT, true)
        .await
        .map_err(|e| e.to_string())?;
    let mut events = engine
        .generate(GenerateRequest {
            prompt,
            sampling: SamplingOptions {
                temperature: 0.0,
                seed: Some(1),
                ..Default::default()
            },
            max_tokens: tokens,
            stop: vec![],
            format: None,
            num_ctx: 4096,
            num_keep: 4,
            draft_max: None,
            grammar: None,
            preserved_tokens: Vec::new(),
            images: Vec::new(),
        })
        .await
        .map_err(|e| e.to_string())?;
    while let Some(event) = events.recv().await {
        match event {
            Event::Text(_) | Event::Logprobs(_) => {}
            Event::Done(summary) => {
                return Ok(Timing {
                    elapsed: started.elapsed(),
                    engine: summary.prompt_duration + summary.eval_duration,
                    tokens: summary.tokens.len(),
                })
            }
            Event::Failed(message) | Event::Rejected(message) => return Err(message),
        }
    }
    Err("the engine stopped without a final event".to_string())
}

/// The same generation through the server, timed from sending to the whole body read.
async fn over_http(client: &reqwest::Client, args: &Args) -> Result<(Timing, Duration), String> {
    let body = serde_json::json!({
        "model": args.model,
        "prompt": PROMPT,
        "raw": true,
        "stream": false,
        "options": {"num_predict": args.tokens, "temperature": 0, "seed": 1},
    });
    let started = Instant::now();
    let response = client
        .post(format!("{}/api/generate", args.url))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let reply: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let count = reply["eval_count"]
        .as_u64()
        .ok_or_else(|| format!("no eval_count in {reply}"))?;
    // The handler's own clock, from its first line to the reply it builds: what is left of
    // `elapsed` is the HTTP transport (connection, actix, body encoding, the client).
    let handler = Duration::from_nanos(reply["total_duration"].as_u64().unwrap_or(0));
    let nanos = |key: &str| Duration::from_nanos(reply[key].as_u64().unwrap_or(0));
    let timing = Timing {
        elapsed,
        engine: nanos("prompt_eval_duration") + nanos("eval_duration"),
        tokens: count as usize,
    };
    Ok((timing, handler))
}

/// One request's wall time and the engine's share of it: the time from handing the prompt to
/// the engine to its last sampling step, clocked inside `Engine::generate` on both paths.
/// `elapsed - engine` is what surrounds the engine, with its run-to-run jitter taken out.
struct Timing {
    elapsed: Duration,
    engine: Duration,
    tokens: usize,
}

fn millis(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let gguf = Gguf::open(&args.gguf).map_err(|e| e.to_string())?;
    // `Engine::load` blocks on the engine's own runtime, so it runs before ours starts.
    // The engine `ROLLAMA_ENGINE` names, with the server's defaults; the digest only names
    // converted copies mistralrs may make, so the path's stands in for the file's.
    let kind = EngineKind::from_env()?;
    let options = LoadOptions {
        blob_digest: Digest::of(args.gguf.to_string_lossy().as_bytes()),
        num_ctx: 4096,
        num_parallel: 1,
        num_batch: 512,
        num_thread: 0,
        // Where a store's derived files would be, were the file in one (as before).
        derived_dir: rollama::store::derived_dir_of(
            args.gguf.parent().unwrap_or(std::path::Path::new(".")),
        ),
        projector: None,
        draft: None,
        // Wherever the fit puts it, as the server does with no other model loaded.
        placement: Default::default(),
        gpu_in_use: Vec::new(),
        predicted_vram: 0,
        layers: rollama::engine::gpu::layers(&gguf),
        require_full: false,
    };
    let engine = Engine::load(kind, &args.gguf, &options, &gguf).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        // Warm both sides up (first-request allocations, the server's model load).
        for _ in 0..2 {
            in_process(&engine, args.tokens).await?;
            over_http(&client, &args).await?;
        }
        let (mut local, mut local_engine) = (Vec::new(), Vec::new());
        let (mut remote, mut remote_engine, mut handler) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.requests {
            let here = in_process(&engine, args.tokens).await?;
            local.push(here.elapsed);
            local_engine.push(here.engine);
            let (http, handler_time) = over_http(&client, &args).await?;
            remote.push(http.elapsed);
            remote_engine.push(http.engine);
            handler.push(handler_time);
            if here.tokens != http.tokens {
                return Err(format!(
                    "in-process generated {} tokens, HTTP {}",
                    here.tokens, http.tokens
                ));
            }
        }
        let report = serde_json::json!({
            "prompt": PROMPT,
            "tokens": args.tokens,
            "requests": args.requests,
            "in_process_ms": millis(&local),
            "in_process_engine_ms": millis(&local_engine),
            "http_ms": millis(&remote),
            "http_engine_ms": millis(&remote_engine),
            "http_handler_ms": millis(&handler),
        });
        println!("{report}");
        Ok(())
    })
}
