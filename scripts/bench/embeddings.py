#!/usr/bin/env python3
"""Embeddings side by side: rollama against llama.cpp's `llama-server --embeddings`, on the
same GGUF (the one rollama writes when it imports all-MiniLM-L6-v2), same thread count.

1. rollama imports the all-MiniLM-L6-v2 directory (`rollama create`) and quantizes a copy to
   Q8_0; llama-server is then started on the very blob rollama wrote.
2. Correctness: both embed the sentences of tests/data/all-minilm-reference.json; the report
   gives the lowest cosine similarity of each against sentence-transformers' reference vectors
   and against each other (F16, and rollama's Q8_0).
3. Speed: embeddings/s for batches of 1, 16 and 256 sentences (OpenAI `/v1/embeddings` on
   both, one request per batch), alternating between the servers, median of BENCH_REPS runs.

Writes the report into BENCHMARKS.md between `<!-- embed:begin -->` and `<!-- embed:end -->`
(unless --no-write). Python 3.11 standard library only. Usage:
  scripts/bench/build-llama-server.sh && python3 scripts/bench/embeddings.py [--no-write]
Env: LLAMA_SERVER, ROLLAMA (binaries), BENCH_THREADS (2), BENCH_REPS (3), MINILM_DIR (the
model directory; default ~/.cache/rollama/test-models/all-minilm-l6-v2).
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
REPS = bench.REPS
MINILM = Path(os.environ.get("MINILM_DIR", bench.CACHE / "test-models" / "all-minilm-l6-v2"))
REFERENCE = REPO / "tests" / "data" / "all-minilm-reference.json"
BATCHES = [1, 16, 64]


def post(port: int, path: str, body: dict, timeout=600.0) -> dict:
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


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def sentences(n: int) -> list[str]:
    """n distinct sentences of ordinary lengths (8 to 40 words)."""
    words = ("the harbour committee reviewed a report on ferry timetables lighthouse repairs "
             "library budgets rainfall tides fishing quotas and school buses before agreeing "
             "to meet again next month in the town hall").split()
    return [f"Item {i}: " + " ".join(words[(i * 7 + j) % len(words)] for j in range(8 + i % 33))
            for i in range(n)]


def main() -> int:
    write = "--no-write" not in sys.argv
    rollama_bin = Path(os.environ.get("ROLLAMA", bench.TARGET / "release" / "rollama"))
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
               OLLAMA_HOST=f"127.0.0.1:{port}", RAYON_NUM_THREADS=str(THREADS),
               OLLAMA_KEEP_ALIVE="-1")
    rollama = subprocess.Popen([str(rollama_bin), "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    llama = None
    try:
        bench.wait_until(port, "/", rollama)
        modelfile = home / "Modelfile"
        modelfile.write_text(f"FROM {MINILM}\n")
        for name, extra in (("minilm", []), ("minilm-q8", ["-q", "q8_0"])):
            subprocess.run([str(rollama_bin), "create", name, "-f", str(modelfile), *extra],
                           env=env, check=True, capture_output=True)
        manifest = json.loads((home / "models" / "manifests" / "registry.ollama.ai" / "library"
                               / "minilm" / "latest").read_text())
        layer = next(l for l in manifest["layers"] if l["mediaType"].endswith(".model"))
        blob = home / "models" / "blobs" / layer["digest"].replace(":", "-")

        llama_port = bench.free_port()
        llama = subprocess.Popen(
            [str(llama_bin), "-m", str(blob), "--embeddings", "--host", "127.0.0.1",
             "--port", str(llama_port), "-t", str(THREADS), "-c", "8192", "-np", "8",
             "-b", "2048", "-ub", "2048"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bench.wait_until(llama_port, "/health", llama)

        servers = {"llama-server": (llama_port, "minilm"), "rollama": (port, "minilm")}
        vectors = {name: embed(p, m, ref_texts) for name, (p, m) in servers.items()}
        vectors["rollama Q8_0"] = embed(port, "minilm-q8", ref_texts)
        rows = []
        for name, got in vectors.items():
            worst = min(cosine(a, b) for a, b in zip(got, ref_vectors))
            rows.append(f"| {name} vs sentence-transformers | {worst:.6f} |")
        worst_pair = min(cosine(a, b) for a, b in zip(vectors["rollama"], vectors["llama-server"]))
        rows.append(f"| rollama vs llama-server (same GGUF) | {worst_pair:.6f} |")

        speed: dict[tuple[str, int], list[float]] = {}
        for batch in BATCHES:
            texts = sentences(batch)
            for name, (p, m) in servers.items():
                embed(p, m, texts[:2])  # warm
            for rep in range(REPS):
                order = list(servers.items()) if rep % 2 == 0 else list(reversed(servers.items()))
                for name, (p, m) in order:
                    started = time.perf_counter()
                    got = embed(p, m, texts)
                    elapsed = time.perf_counter() - started
                    assert len(got) == batch
                    speed.setdefault((name, batch), []).append(batch / elapsed)
        machine = bench.machine()
        lines = [
            f"Measured {machine['date']} at {machine['commit']} on {machine['cpu']} "
            f"({machine['nproc']} cores), {THREADS} threads each, median of {REPS}; "
            f"command: `python3 scripts/bench/embeddings.py`. Model: all-MiniLM-L6-v2 imported "
            f"by rollama to an F16 GGUF ({blob.stat().st_size / 1e6:.1f} MB); llama-server "
            f"runs that same file (`--embeddings -c 8192 -np 8 -b 2048 -ub 2048`).",
            "",
            "| Lowest cosine similarity over the 24 reference sentences | |",
            "|---|---|",
            *rows,
            "",
            "| Batch (sentences per request) | llama-server emb/s | rollama emb/s | rollama / llama-server |",
            "|---|---|---|---|",
        ]
        for batch in BATCHES:
            a = statistics.median(speed[("llama-server", batch)])
            b = statistics.median(speed[("rollama", batch)])
            lines.append(f"| {batch} | {a:.1f} | {b:.1f} | {b / a:.2f}× |")
        section = "\n".join(lines)
        print(section)
        if write:
            bench.write_benchmarks(section, marker="embed")
        return 0
    finally:
        for process in (rollama, llama):
            if process is not None:
                bench.stop(process)


if __name__ == "__main__":
    sys.exit(main())
