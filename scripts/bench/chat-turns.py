"""Diagnostic for the chat row of bench.py: one 8-turn chat, built exactly as bench.py builds it,
on freshly started servers (llama-server, then rollama, on SmolLM2 Q4_K_M from bench.py's
cache), printing each turn's time to first token and how many prompt tokens each server
evaluated for it. Run after bench.py has made its models: python3 scripts/bench/chat-turns.py [--fill N]

`--fill N` first sends N distinct ~500-token prompts (one token each), as bench.py's earlier
rows do, so that the chat runs beside idle sequences that hold cached prompts.
"""
import sys, json, time, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench
gguf = bench.CACHE / "bench-formats" / "SmolLM2-135M-Instruct.Q4_K_M.gguf"
llama = Path(os.path.expanduser("~/.cache/rollama/llama.cpp-build/bin/llama-server"))
servers = [bench.LlamaServer(llama, gguf), bench.Rollama(bench.BUILD / "rollama", gguf)]
fill = int(sys.argv[sys.argv.index("--fill") + 1]) if "--fill" in sys.argv else 0
for s in servers:
    s.start()
try:
    for s in servers:
        for i in range(fill):
            s.generate(f"Request {i}. {bench.PREFILL_TEXT}", 1, cache=True)
        prompt = bench.chat_start(9)
        for turn in range(bench.CHAT_TURNS):
            prompt += bench.chat_question(turn)
            if s.name == "llama-server":
                body = {"prompt": prompt, "n_predict": bench.CHAT_TOKENS, "stream": True, "temperature": 0, "seed": 1, "cache_prompt": True}
                sent = time.monotonic(); first = None; text = ""
                for at, line in bench.stream_lines(s.port, "/completion", body):
                    if not line.startswith(b"data: "): continue
                    ev = json.loads(line[6:])
                    if ev.get("content"):
                        first = first or at; text += ev["content"]
                    if ev.get("stop"):
                        t = ev["timings"]; evald = t["prompt_n"]; total = ev.get("tokens_evaluated"); pms = t["prompt_ms"]
            else:
                body = {"model": bench.MODEL_NAME, "prompt": prompt, "raw": True, "stream": True, "options": {"num_predict": bench.CHAT_TOKENS, "temperature": 0, "seed": 1}}
                sent = time.monotonic(); first = None; text = ""
                for at, line in bench.stream_lines(s.port, "/api/generate", body):
                    if not line: continue
                    ch = json.loads(line)
                    if ch.get("response"):
                        first = first or at; text += ch["response"]
                    if ch.get("done"):
                        evald = ch["prompt_eval_count"]; total = None; pms = ch["prompt_eval_duration"] / 1e6
            print(f"{s.name:12} turn {turn+1}: ttft {1000*(first-sent):7.1f} ms  evaluated {evald:5} (of {total})  prompt_ms {pms:7.1f}", flush=True)
            prompt += text + "<|im_end|>\n"
finally:
    for s in servers:
        bench.stop(s.process)
