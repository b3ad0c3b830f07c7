#!/usr/bin/env bash
# The project's test command (README.md): fetch the test model and the Python client
# libraries, check formatting and lints, then build and run every test with the one
# optimised profile the binary uses.
set -euo pipefail
cd "$(dirname "$0")/.."

# The build settings every script shares (static glibc build on Linux, target directory).
. ./scripts/cargo-env.sh
# cmake, a C++ compiler and libclang, for the llama.cpp engine, and ruby and systemd-analyze
# for the packaging tests (apt-get where missing).
./scripts/build-deps.sh --test
ROLLAMA_TEST_GGUF="$(./scripts/fetch-test-models.sh "${ROLLAMA_TEST_MODELS:-$HOME/.cache/rollama/test-models}")"
export ROLLAMA_TEST_GGUF
# The official OpenAI/Anthropic/Ollama Python clients, for tests/clients.rs.
ROLLAMA_TEST_PYTHON="$(./scripts/python-clients.sh "${ROLLAMA_TEST_VENV:-$HOME/.cache/rollama/venv}")"
export ROLLAMA_TEST_PYTHON
# llama.cpp's own server, which tests/llama_server.rs checks greedy answers against (built
# once into ~/.cache/rollama, like the benchmarks' baseline).
ROLLAMA_TEST_LLAMA_SERVER="$(./scripts/bench/build-llama-server.sh)"
export ROLLAMA_TEST_LLAMA_SERVER
# The registry the pull/push tests (tests/registry.rs) run.
ROLLAMA_TEST_REGISTRY="$(./scripts/test-registry.sh)"
export ROLLAMA_TEST_REGISTRY

cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
# One test at a time: the inference tests measure CPU and memory of their own server, and
# two model-running servers at once on two cores make those measurements noisy.
cargo test --release --no-fail-fast -- --test-threads=1
# The same generation, chat and OpenAI/Anthropic tests again on the other engine: the harness
# passes ROLLAMA_ENGINE on to every server it starts (README: "Engines").
ROLLAMA_ENGINE=mistralrs cargo test --release --no-fail-fast --test inference --test compat -- --test-threads=1
