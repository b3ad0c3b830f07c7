#!/usr/bin/env python3
"""Structured output and chat side by side: `rollama serve` against `llama-server`.

Both servers run the same GGUF (the test model, SmolLM2-135M Q4_1, or `BENCH_GGUF`), and every
request goes to `/v1/chat/completions` of both, alternately (A/B, then B/A, ...). Rows:
  - json_schema: the extraction schema of tests/llama_server.rs as `response_format`, greedy,
    up to 96 tokens: the grammar sampler runs on every token;
  - chat: a plain greedy chat reply of 128 tokens: the reply parser (llama.cpp's, on rollama's
    native path) runs on every token.
For each, the decode rate as the client sees the stream, (chunks - 1) / (last - first), median
over the rounds, and the ratio rollama / llama-server per round (median). The answers of the
two servers are also compared (they must be equal: greedy, same grammar).

Python 3.11 standard library only; reuses bench.py's server classes. Usage:
  scripts/bench/build-llama-server.sh && python3 scripts/bench/structured.py [--no-write]
Writes its table into BENCHMARKS.md between `<!-- structured:begin -->` and
`<!-- structured:end -->`. Env: LLAMA_SERVER, ROLLAMA, BENCH_GGUF, BENCH_THREADS (2),
BENCH_REPS (5).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "5"))
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def rows():
    return {
        "json_schema": {
            "messages": [{"role": "user", "content":
                          "Extract the person's name and age from: Jason is 25 years old."}],
            "max_tokens": 96, "temperature": 0,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "person", "schema": SCHEMA}},
        },
        "chat": {
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
            "max_tokens": 128, "temperature": 0,
        },
    }


def ask(server: bench.Server, body: dict) -> tuple[float, str]:
    """Decode tokens per second as the client sees the SSE stream, and the answer."""
    body = {**body, "stream": True}
    if isinstance(server, bench.Rollama):
        body["model"] = bench.MODEL_NAME
    stamps, text = [], ""
    for at, line in bench.stream_lines(server.port, "/v1/chat/completions", body):
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        for choice in event.get("choices", []):
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                stamps.append(at)
                text += piece
    if len(stamps) < 2:
        raise RuntimeError(f"{server.name}: too short an answer: {text!r}")
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), text


def main() -> int:
    write = "--no-write" not in sys.argv[1:]

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    llama_binary = Path(os.environ.get("LLAMA_SERVER",
                                       bench.CACHE / "llama.cpp-build" / "bin" / "llama-server"))
    rollama_binary = Path(os.environ.get("ROLLAMA", bench.BUILD / "rollama"))
    gguf = bench.bench_gguf()
    workdir = bench.private_copy(rollama_binary)
    servers = [bench.LlamaServer(llama_binary, gguf), bench.Rollama(workdir / "rb-server", gguf)]
    for server in servers:
        server.start()
    results: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {}
    answers_equal: dict[str, bool] = {}
    try:
        for name, body in rows().items():
            for server in servers:
                ask(server, body)  # warm-up: loads, caches, first-token costs
            for rep in range(REPS):
                order = servers if rep % 2 == 0 else list(reversed(servers))
                rates, texts = {}, {}
                for server in order:
                    rates[server.name], texts[server.name] = ask(server, body)
                    results.setdefault((server.name, name), []).append(rates[server.name])
                ratios.setdefault(name, []).append(rates["rollama"] / rates["llama-server"])
                answers_equal[name] = answers_equal.get(name, True) and (
                    texts["rollama"] == texts["llama-server"])
                log(f"{name} round {rep + 1}: rollama {rates['rollama']:.1f} tok/s, "
                    f"llama-server {rates['llama-server']:.1f} tok/s")
    finally:
        for server in servers:
            bench.stop(server.process)
    info = bench.machine()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {info.get('cpu', '?')} ({bench.THREADS} threads "
        f"each), `python3 scripts/bench/structured.py`, {gguf.name}, {REPS} alternating rounds "
        "after a warm-up, both servers on `/v1/chat/completions`, streamed.",
        "",
        "| row | rollama tok/s | llama-server tok/s | ratio (median of rounds) | same answer |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in rows():
        ours = statistics.median(results[("rollama", name)])
        theirs = statistics.median(results[("llama-server", name)])
        lines.append(f"| {name} | {ours:.1f} | {theirs:.1f} | "
                     f"{statistics.median(ratios[name]):.2f}x | {'yes' if answers_equal[name] else 'no'} |")
    section = "\n".join(lines)
    print(section)
    if write:
        bench.write_benchmarks(section, marker="structured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
