"""Time to first token of a chat's first and second turn about one image, rollama beside
llama-server, with the same GGUF and projector, in alternating rounds.

The model is SmolLM2-135M-Instruct (its chat template renders both servers' prompts through
llama.cpp's chat code) with a random-weight gemma3 projector of 256 positions per image, as
real Gemma 3 projectors give (scripts/fetch-test-models.sh makes it). Each round uses a new
image, so turn 1 always encodes it; turn 2 repeats turn 1 and its answer, then asks again:
a server that keeps the image in its KV cache evaluates only the new text.

usage: python3 scripts/bench/image-turns.py [ROUNDS]   (after a release build and the
       test-model fetch; llama-server from scripts/bench/build-llama-server.sh)
"""
import base64
import json
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

MODELS = bench.CACHE / "test-models"
GGUF = MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf"
MMPROJ = MODELS / "projectors" / "gemma3-576-256.gguf"
LLAMA = bench.CACHE / "llama.cpp-build" / "bin" / "llama-server"
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
TOKENS = 8


def png(seed: int, side: int = 512) -> bytes:
    """An RGB PNG whose pixels depend on `seed`."""
    rows = b"".join(
        b"\0" + bytes(((x * (seed + 3) + y * 7) % 256, (y * (seed + 5)) % 256, (x ^ y ^ seed) % 256)[c]
                      for x in range(side) for c in range(3))
        for y in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


class LlamaVision(bench.LlamaServer):
    def command(self) -> list[str]:
        return super().command() + ["--mmproj", str(MMPROJ)]


class RollamaVision(bench.Rollama):
    def start(self) -> dict:
        if not self.created:
            modelfile = Path(self.home) / "Modelfile"
            modelfile.write_text(f"FROM {self.gguf}\nFROM {MMPROJ}\n"
                                 f"PARAMETER num_thread {bench.THREADS}\n")
            self.port = bench.free_port()
            process = bench.subprocess.Popen(self.command(), env=self.env(),
                                             stdout=self.log, stderr=self.log)
            bench.wait_until(self.port, "/", process)
            bench.subprocess.run([str(self.binary), "create", bench.MODEL_NAME, "-f",
                                  str(modelfile)], env=self.env(), check=True,
                                 capture_output=True)
            bench.stop(process)
            self.created = True
        return super().start()


def turn(server, messages) -> tuple[float, str, int]:
    """Time to first token (s), the answer, and the prompt tokens the server reports."""
    body = {"model": bench.MODEL_NAME, "messages": messages, "max_tokens": TOKENS,
            "temperature": 0, "seed": 1, "stream": True,
            "stream_options": {"include_usage": True}}
    sent = time.monotonic()
    first, text, prompt_tokens = None, "", 0
    for at, line in bench.stream_lines(server.port, "/v1/chat/completions", body):
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = json.loads(line[6:])
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                first = first or at
                text += piece
        if event.get("usage"):
            prompt_tokens = event["usage"]["prompt_tokens"]
    return (first or time.monotonic()) - sent, text, prompt_tokens


def main() -> None:
    servers = [LlamaVision(LLAMA, GGUF), RollamaVision(bench.BUILD / "rollama", GGUF)]
    times: dict[str, dict[str, list[float]]] = {s.name: {"turn 1": [], "turn 2": []} for s in servers}
    for server in servers:
        server.start()
    try:
        for round_ in range(ROUNDS + 1):
            order = servers if round_ % 2 == 0 else servers[::-1]
            for server in order:
                image = base64.b64encode(png(round_ * 2 + (server is servers[1]))).decode()
                messages = [{"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}]}]
                first, answer, count1 = turn(server, messages)
                messages += [{"role": "assistant", "content": answer},
                             {"role": "user", "content": "And what colour is it?"}]
                second, _, count2 = turn(server, messages)
                if round_ == 0:
                    continue  # warm-up: the first image also sets up each server's buffers
                times[server.name]["turn 1"].append(first)
                times[server.name]["turn 2"].append(second)
                print(f"round {round_} {server.name:12} turn 1 {first * 1000:7.1f} ms "
                      f"({count1} prompt tokens)  turn 2 {second * 1000:7.1f} ms "
                      f"({count2} prompt tokens)", flush=True)
    finally:
        for server in servers:
            bench.stop(server.process)
    print()
    print("| server | turn 1 TTFT (median) | turn 2 TTFT (median) | turn 2 / turn 1 |")
    print("|---|---|---|---|")
    medians = {}
    for name, turns in times.items():
        one, two = statistics.median(turns["turn 1"]), statistics.median(turns["turn 2"])
        medians[name] = (one, two)
        print(f"| {name} | {one * 1000:.0f} ms | {two * 1000:.0f} ms | {two / one:.2f}x |")
    (l1, l2), (r1, r2) = medians["llama-server"], medians["rollama"]
    print(f"\nrollama / llama-server: turn 1 {r1 / l1:.2f}x, turn 2 {r2 / l2:.2f}x")


if __name__ == "__main__":
    main()
