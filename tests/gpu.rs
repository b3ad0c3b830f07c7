//! GPU offload on a real Vulkan driver that runs on the CPU (Mesa's lavapipe), in the Vulkan
//! build (`cargo test --features vulkan --test gpu`; scripts/test-gpu.sh): Ollama's
//! `num_gpu`, automatic fit, `OLLAMA_GPU_OVERHEAD`, eviction for GPU room, `size_vram` and
//! `rollama ps`'s PROCESSOR column, `OLLAMA_KV_CACHE_TYPE`, and the device memory coming
//! back on unload. ggml skips CPU-type Vulkan devices unless `GGML_VK_VISIBLE_DEVICES` names
//! them, so every server here names lavapipe (device 0).
//!
//! lavapipe reports a 2 GiB heap and no usage (no memory-budget extension), so what rollama's
//! models hold is its own accounting; on a real GPU the driver's free memory moves too.
//! Generations stay a few tokens long: lavapipe runs SmolLM2 at about a token a second.

#![cfg(feature = "vulkan")]

mod common;

use common::{create_from_gguf, metric, post, stdout, test_gguf, Server};
use serde_json::{json, Value};
use std::path::PathBuf;

/// llama-server's default fit target, which rollama's fit leaves free on each device.
const FIT_MARGIN: f64 = 1024.0 * 1024.0 * 1024.0;
/// Context for every load here (small: lavapipe's compute is slow, and a smaller context
/// means smaller buffers).
const NUM_CTX: u64 = 1024;
/// A prompt whose greedy continuation has clear margins at every token: ggml's Vulkan and CPU
/// kernels round differently in the last bits, which flips near-ties (Gemma 3's answer to "The
/// three primary colors are" parts from the CPU's at its fourth token, ", and" against " and").
const PROMPT: &str = "Counting from one to thirty: 1, 2, 3, 4,";

fn gemma_gguf() -> PathBuf {
    test_gguf().with_file_name("gemma-3-270m-q4_k_m.gguf")
}

/// A server that sees lavapipe, with `env` besides.
fn gpu_server(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("GGML_VK_VISIBLE_DEVICES", "0")];
    all.extend_from_slice(env);
    let server = Server::start_with_env(&all);
    for (name, gguf) in [("smol", test_gguf()), ("gemma", gemma_gguf())] {
        let output = create_from_gguf(&server, name, &gguf, &[]);
        assert!(output.status.success(), "{}", common::stderr(&output));
    }
    server
}

/// A short greedy completion of [`PROMPT`] with `options` added.
async fn complete(server: &Server, model: &str, options: Value) -> String {
    let mut all = json!({"temperature": 0, "num_predict": 16, "num_ctx": NUM_CTX, "seed": 1});
    for (key, value) in options.as_object().unwrap() {
        all[key] = value.clone();
    }
    let (status, body) = post(
        server,
        "/api/generate",
        json!({"model": model, "prompt": PROMPT, "raw": true, "stream": false, "options": all}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["response"].as_str().unwrap().to_string()
}

/// `size` and `size_vram` of `model` in `/api/ps`.
async fn sizes(server: &Server, model: &str) -> (u64, u64) {
    let ps = common::get_json(server, "/api/ps").await;
    let entry = ps["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == format!("{model}:latest"))
        .unwrap_or_else(|| panic!("{model} is not loaded: {ps}"))
        .clone();
    (
        entry["size"].as_u64().unwrap(),
        entry["size_vram"].as_u64().unwrap(),
    )
}

/// The PROCESSOR column `rollama ps` prints for `model`.
fn processor(server: &Server, model: &str) -> String {
    let out = stdout(&server.run(&["ps"]));
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{model}:latest")))
        .unwrap_or_else(|| panic!("{model} not in ps: {out}"));
    ["100% GPU", "100% CPU", "CPU/GPU"]
        .iter()
        .find(|p| line.contains(*p))
        .map(|p| {
            if *p == "CPU/GPU" {
                line.split_whitespace()
                    .find(|w| w.contains('%') && w.contains('/'))
                    .unwrap()
                    .to_string()
                    + " CPU/GPU"
            } else {
                p.to_string()
            }
        })
        .unwrap_or_else(|| panic!("no PROCESSOR in {line}"))
}

async fn unload(server: &Server, model: &str) {
    let (status, body) = post(
        server,
        "/api/generate",
        json!({"model": model, "keep_alive": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..100 {
        let ps = common::get_json(server, "/api/ps").await;
        if ps["models"].as_array().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{model} did not unload");
}

/// A fully offloaded model answers as on the CPU; `num_gpu` 0 keeps it on the CPU, a smaller
/// `num_gpu` splits it; `/api/ps`, `rollama ps` and `/metrics` say where it is, and unloading
/// gives the device memory back.
#[tokio::test]
async fn num_gpu_places_the_model_and_ps_reports_it() {
    let server = gpu_server(&[]);
    assert!(metric(&server, "rollama_gpu_memory_total_bytes").await > 0.0);
    let free_before = metric(&server, "rollama_gpu_memory_free_bytes").await;

    let on_cpu = complete(&server, "smol", json!({"num_gpu": 0})).await;
    assert_eq!(sizes(&server, "smol").await.1, 0);
    assert_eq!(processor(&server, "smol"), "100% CPU");

    for (model, layers) in [("smol", 31), ("gemma", 19)] {
        let cpu = if model == "smol" {
            on_cpu.clone()
        } else {
            complete(&server, model, json!({"num_gpu": 0})).await
        };
        // Default: as many layers as fit, which is all of them.
        let gpu = complete(&server, model, json!({})).await;
        let (size, vram) = sizes(&server, model).await;
        eprintln!("{model}: whole on the GPU, size {size}, size_vram {vram}");
        assert!(
            vram > 0 && vram == size,
            "{model}: size {size}, size_vram {vram}"
        );
        assert_eq!(processor(&server, model), "100% GPU");
        assert_eq!(
            metric(&server, "rollama_gpu_memory_models_bytes").await,
            vram as f64
        );
        // Another backend's kernels: the same 16 greedy tokens.
        assert_eq!(gpu, cpu, "{model}: GPU and CPU greedy answers differ");

        // Part of the layers.
        let partial = complete(&server, model, json!({"num_gpu": layers / 2})).await;
        let (size, vram) = sizes(&server, model).await;
        eprintln!(
            "{model}: {} of {layers} layers, size {size}, size_vram {vram}",
            layers / 2
        );
        assert!(
            vram > 0 && vram < size,
            "{model}: size {size}, size_vram {vram}"
        );
        let split = processor(&server, model);
        assert!(split.ends_with("CPU/GPU"), "{split}");
        assert_eq!(partial, cpu, "{model}: partly offloaded answer differs");

        unload(&server, model).await;
        assert_eq!(
            metric(&server, "rollama_gpu_memory_models_bytes").await,
            0.0
        );
        // ggml's device memory query, after the unload, reports what it did before.
        assert_eq!(
            metric(&server, "rollama_gpu_memory_free_bytes").await,
            free_before
        );
    }
}

/// `OLLAMA_GPU_OVERHEAD` leaves less room than the model needs: the fit offloads part of it.
#[tokio::test]
async fn gpu_overhead_makes_the_fit_offload_part() {
    let probe = gpu_server(&[]);
    let free = metric(&probe, "rollama_gpu_memory_free_bytes").await;
    complete(&probe, "smol", json!({})).await;
    let (_, whole) = sizes(&probe, "smol").await;
    drop(probe);

    let overhead = (free - FIT_MARGIN - whole as f64 / 2.0) as u64;
    let server = gpu_server(&[("OLLAMA_GPU_OVERHEAD", &overhead.to_string())]);
    complete(&server, "smol", json!({})).await;
    let (size, vram) = sizes(&server, "smol").await;
    eprintln!("overhead {overhead}: size {size}, size_vram {vram} (whole: {whole})");
    assert!(
        vram > 0 && vram < whole && vram < size,
        "overhead {overhead}: size {size}, size_vram {vram}, whole {whole}"
    );
    assert!(processor(&server, "smol").ends_with("CPU/GPU"));
}

/// Room for one model only: the second evicts the first, idle one and goes wholly to the GPU.
#[tokio::test]
async fn a_second_model_that_does_not_fit_evicts_the_first() {
    let probe = gpu_server(&[]);
    let free = metric(&probe, "rollama_gpu_memory_free_bytes").await;
    complete(&probe, "smol", json!({})).await;
    complete(&probe, "gemma", json!({})).await;
    let (_, smol) = sizes(&probe, "smol").await;
    let (_, gemma) = sizes(&probe, "gemma").await;
    drop(probe);
    let room = smol.max(gemma) as f64 * 1.1;
    eprintln!("size_vram: smol {smol}, gemma {gemma}; room for {room}");
    assert!(room < (smol + gemma) as f64, "smol {smol}, gemma {gemma}");

    let overhead = (free - FIT_MARGIN - room) as u64;
    let server = gpu_server(&[("OLLAMA_GPU_OVERHEAD", &overhead.to_string())]);
    complete(&server, "smol", json!({})).await;
    assert_eq!(processor(&server, "smol"), "100% GPU");
    complete(&server, "gemma", json!({})).await;
    let ps = common::get_json(&server, "/api/ps").await;
    let names: Vec<&str> = ps["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gemma:latest"], "{ps}");
    assert_eq!(processor(&server, "gemma"), "100% GPU");
    assert_eq!(
        metric(&server, "rollama_gpu_memory_models_bytes").await,
        sizes(&server, "gemma").await.1 as f64
    );
}

/// `OLLAMA_KV_CACHE_TYPE=q8_0`: the KV cache on the GPU takes about half the bytes of f16.
#[tokio::test]
async fn q8_0_kv_cache_halves_the_kv_part_of_size_vram() {
    // A long context, so that the cache dominates what differs between the two loads.
    let context = json!({"num_ctx": 8192, "num_predict": 1});
    let f16_server = gpu_server(&[]);
    complete(&f16_server, "smol", context.clone()).await;
    let (_, f16) = sizes(&f16_server, "smol").await;
    drop(f16_server);
    let q8_server = gpu_server(&[("OLLAMA_KV_CACHE_TYPE", "q8_0")]);
    complete(&q8_server, "smol", context).await;
    let (size, q8) = sizes(&q8_server, "smol").await;
    assert_eq!(size, q8, "the q8_0 cache still fits wholly on the GPU");

    // SmolLM2: 30 layers, 3 KV heads of 64: K and V of 8,192 tokens in f16.
    let kv_f16 = 30.0 * 2.0 * 3.0 * 64.0 * 8192.0 * 2.0;
    // q8_0 stores 32 values in 34 bytes.
    let kv_q8 = kv_f16 / 2.0 * 34.0 / 32.0;
    let saved = f16 as f64 - q8 as f64;
    eprintln!("size_vram with an f16 cache {f16}, with q8_0 {q8}");
    let expected = kv_f16 - kv_q8;
    assert!(
        (saved - expected).abs() < expected * 0.1,
        "f16 {f16}, q8_0 {q8}: saved {saved}, expected {expected}"
    );
}
