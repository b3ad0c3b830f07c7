#!/usr/bin/env python3
"""Embeddings and reranking side by side: rollama against llama.cpp's `llama-server`, on the
same GGUFs (the ones rollama writes when it imports the test models), same thread count.
Run as `python3 scripts/bench/bench.py --embeddings` (or this file directly).

1. rollama imports three model directories with `rollama create`: all-MiniLM-L6-v2 (and a
   Q8_0 copy), the tiny random NomicBERT of scripts/make-tiny-nomic-bert.py, and the
   cross-encoder of scripts/make-test-reranker.py. llama-server is then started on each blob
   rollama wrote (`--embeddings`, or `--reranking`), one model at a time.
2. Correctness: MiniLM against sentence-transformers' reference vectors
   (tests/data/all-minilm-reference.json) and both servers against each other; the
   reranker's scores against llama-server's.
3. Speed, alternating between the servers (A/B, then B/A), median of max(BENCH_REPS, 5)
   samples: sentences/s for requests of 1, 16 and 64 sentences (`/v1/embeddings`; each
   sample sends about 128 sentences: 128 requests of 1, 8 of 16, 2 of 64), and rerank
   requests/s for a query with 32 documents (`/v1/rerank`, 4 requests a sample). rollama
   holds one model at a time, as each llama-server does (see `unload`).

Writes the report into BENCHMARKS.md between `<!-- embed:begin -->` and `<!-- embed:end -->`
(unless --no-write). Python 3.11 standard library only.
Env: LLAMA_SERVER, ROLLAMA (binaries), BENCH_THREADS (2), BENCH_REPS, ROLLAMA_TEST_MODELS
(the directory scripts/fetch-test-models.sh fills).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (process and machine helpers of the main benchmark)

REPO = bench.REPO
THREADS = bench.THREADS
REPS = max(bench.REPS, 5)
MODELS_DIR = Path(os.environ.get("ROLLAMA_TEST_MODELS", bench.CACHE / "test-models"))
REFERENCE = REPO / "tests" / "data" / "all-minilm-reference.json"
BATCHES = [1, 16, 64]
SENTENCES_PER_SAMPLE = 128
RERANK_DOCUMENTS = 32
RERANK_REQUESTS = 4
LLAMA_FLAGS = ["-c", "8192", "-np", "8", "-b", "2048", "-ub", "2048"]

# (name, model directory, what it does)
MODELS = [
    ("minilm", "all-minilm-l6-v2", "embed"),
    ("nomic", "tiny-nomic-bert", "embed"),
    ("reranker", "test-reranker", "rerank"),
]


def post(port: int, path: str, body: dict, timeout=600.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path} on {port}: {response.status} {data[:300]!r}")
    return json.loads(data)


def embed(port: int, model: str, texts: list[str]) -> list[list[float]]:
    reply = post(port, "/v1/embeddings", {"model": model, "input": texts})
    return [item["embedding"] for item in sorted(reply["data"], key=lambda d: d["index"])]


def scores(port: int, model: str, query: str, documents: list[str]) -> list[float]:
    reply = post(port, "/v1/rerank", {"model": model, "query": query, "documents": documents})
    by_index = {r["index"]: r["relevance_score"] for r in reply["results"]}
    return [by_index[i] for i in range(len(documents))]


def unload(port: int, model: str, kind: str) -> None:
    """Unloads `model` from rollama (keep_alive 0 and no input). Each loaded model's thread
    keeps an OpenMP team, and with more OpenMP threads than cores libgomp stops spinning at
    barriers, which slowed the measured model by 5-15% (BENCHMARKS.md); llama-server runs one
    model a process, so rollama is measured with one loaded too."""
    if kind == "embed":
        post(port, "/api/embed", {"model": model, "keep_alive": 0})
    else:
        post(port, "/api/rerank", {"model": model, "query": "", "keep_alive": 0})


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


WORDS = ("the harbour committee reviewed a report on ferry timetables lighthouse repairs "
         "library budgets rainfall tides fishing quotas and school buses before agreeing "
         "to meet again next month in the town hall").split()


def sentences(n: int, start: int = 0) -> list[str]:
    """n distinct sentences of ordinary lengths (8 to 40 words), numbered from `start`."""
    return [f"Item {i}: " + " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(8 + i % 33))
            for i in range(start, start + n)]


def rollama_blob(home: Path, name: str) -> Path:
    manifest = json.loads((home / "models" / "manifests" / "registry.ollama.ai" / "library"
                           / name / "latest").read_text())
    layer = next(l for l in manifest["layers"] if l["mediaType"].endswith(".model"))
    return home / "models" / "blobs" / layer["digest"].replace(":", "-")


def alternate(servers: dict, run) -> dict[str, float]:
    """`run(port, model, rep)` (a rate) for each server, alternating the order, median."""
    samples: dict[str, list[float]] = {}
    for rep in range(REPS):
        order = list(servers.items()) if rep % 2 == 0 else list(reversed(servers.items()))
        for name, (port, model) in order:
            # Each sample starts on a quiet machine: the other server's threads (OpenMP spins
            # for a while after its last batch) have gone to sleep.
            time.sleep(0.5)
            samples.setdefault(name, []).append(run(port, model, rep))
    return {name: statistics.median(values) for name, values in samples.items()}


def embedding_rate(batch: int):
    requests = max(1, SENTENCES_PER_SAMPLE // batch)

    def run(port: int, model: str, rep: int) -> float:
        texts = sentences(batch * requests, start=rep * 1000)
        started = time.perf_counter()
        for r in range(requests):
            got = embed(port, model, texts[r * batch:(r + 1) * batch])
            assert len(got) == batch
        return batch * requests / (time.perf_counter() - started)
    return run


def rerank_rate(port: int, model: str, rep: int) -> float:
    documents = sentences(RERANK_DOCUMENTS, start=rep * 1000)
    started = time.perf_counter()
    for r in range(RERANK_REQUESTS):
        got = scores(port, model, f"When does committee {r} meet about the ferry?", documents)
        assert len(got) == RERANK_DOCUMENTS
    return RERANK_REQUESTS / (time.perf_counter() - started)


def main(write: bool = True) -> int:
    rollama_bin = Path(os.environ.get("ROLLAMA", bench.BUILD / "rollama"))
    llama_bin = Path(os.environ.get("LLAMA_SERVER", bench.CACHE / "llama.cpp-build" / "bin" / "llama-server"))
    for binary in (rollama_bin, llama_bin):
        if not binary.exists():
            print(f"missing {binary}", file=sys.stderr)
            return 1
    reference = json.loads(REFERENCE.read_text())
    ref_texts = [s["text"] for s in reference["sentences"]]
    ref_vectors = [s["vector"] for s in reference["sentences"]]

    home = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    port = bench.free_port()
    env = dict(os.environ, HOME=str(home), OLLAMA_MODELS=str(home / "models"),
               OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_KEEP_ALIVE="-1",
               OLLAMA_MAX_LOADED_MODELS="4")
    rollama = subprocess.Popen([str(rollama_bin), "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    llama = None
    quality: list[str] = []
    speed: list[str] = []
    sizes: list[str] = []
    try:
        bench.wait_until(port, "/", rollama)
        for name, directory, _ in MODELS:
            modelfile = home / f"Modelfile.{name}"
            modelfile.write_text(f"FROM {MODELS_DIR / directory}\n")
            quantized = [("minilm-q8", ["-q", "q8_0"])] if name == "minilm" else []
            for created, extra in [(name, []), *quantized]:
                subprocess.run([str(rollama_bin), "create", created, "-f", str(modelfile), *extra],
                               env=env, check=True, capture_output=True)
        for name, directory, kind in MODELS:
            blob = rollama_blob(home, name)
            sizes.append(f"{name} {blob.stat().st_size / 1e6:.1f} MB")
            llama_port = bench.free_port()
            mode = "--embeddings" if kind == "embed" else "--reranking"
            llama = subprocess.Popen(
                [str(llama_bin), "-m", str(blob), mode, "--host", "127.0.0.1",
                 "--port", str(llama_port), "-t", str(THREADS), *LLAMA_FLAGS],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bench.wait_until(llama_port, "/health", llama)
            servers = {"llama-server": (llama_port, name), "rollama": (port, name)}
            if kind == "embed":
                vectors = {s: embed(p, m, ref_texts) for s, (p, m) in servers.items()}
                if name == "minilm":
                    vectors["rollama Q8_0"] = embed(port, "minilm-q8", ref_texts)
                    unload(port, "minilm-q8", kind)
                    for s, got in vectors.items():
                        worst = min(cosine(a, b) for a, b in zip(got, ref_vectors))
                        quality.append(f"| {name}: {s} vs sentence-transformers, lowest cosine | {worst:.6f} |")
                worst = min(cosine(a, b) for a, b in zip(vectors["rollama"], vectors["llama-server"]))
                quality.append(f"| {name}: rollama vs llama-server (same GGUF), lowest cosine | {worst:.6f} |")
                for batch in BATCHES:
                    for s, (p, m) in servers.items():
                        embed(p, m, sentences(2))  # warm
                    rates = alternate(servers, embedding_rate(batch))
                    a, b = rates["llama-server"], rates["rollama"]
                    speed.append(f"| {name} | embed, {batch} a request | {a:.1f} sentences/s "
                                 f"| {b:.1f} sentences/s | {b / a:.2f}× |")
            else:
                documents = ref_texts
                query = "What is the man doing?"
                got = {s: scores(p, m, query, documents) for s, (p, m) in servers.items()}
                diff = max(abs(x - y) for x, y in zip(got["rollama"], got["llama-server"]))
                same = (sorted(range(len(documents)), key=lambda i: -got["rollama"][i])
                        == sorted(range(len(documents)), key=lambda i: -got["llama-server"][i]))
                quality.append(f"| {name}: rollama vs llama-server scores (same GGUF), largest "
                               f"difference | {diff:.2e} ({'same' if same else 'different'} order) |")
                for s, (p, m) in servers.items():
                    scores(p, m, query, documents[:2])  # warm
                rates = alternate(servers, rerank_rate)
                a, b = rates["llama-server"], rates["rollama"]
                speed.append(f"| {name} | rerank, query + {RERANK_DOCUMENTS} documents | "
                             f"{a:.2f} requests/s | {b:.2f} requests/s | {b / a:.2f}× |")
            unload(port, name, kind)
            bench.stop(llama)
            llama = None
        machine = bench.machine()
        section = "\n".join([
            f"Measured {machine['date']} at {machine['commit']} on {machine['cpu']} "
            f"({machine['nproc']} cores), {THREADS} threads each, median of {REPS} alternating "
            f"samples; command: `python3 scripts/bench/bench.py --embeddings`. GGUFs written by "
            f"rollama's import (F16: {', '.join(sizes)}); llama-server runs the same files "
            f"(`{' '.join(LLAMA_FLAGS)}`, `--embeddings` or `--reranking`).",
            "",
            "| Check | |",
            "|---|---|",
            *quality,
            "",
            "| Model | Work | llama-server | rollama | rollama / llama-server |",
            "|---|---|---|---|---|",
            *speed,
        ])
        print(section)
        if write:
            bench.write_benchmarks(section, marker="embed")
        return 0
    finally:
        for process in (rollama, llama):
            if process is not None:
                bench.stop(process)


if __name__ == "__main__":
    sys.exit(main("--no-write" not in sys.argv[1:]))
