#!/usr/bin/env bash
# The project's test command (README.md): fetch the test model and the Python client
# libraries, check formatting and lints, then build and run every test with the one
# optimised profile the binary uses.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rollama/target}"
ROLLAMA_TEST_GGUF="$(./scripts/fetch-test-models.sh "${ROLLAMA_TEST_MODELS:-$HOME/.cache/rollama/test-models}")"
export ROLLAMA_TEST_GGUF
# The official OpenAI/Anthropic/Ollama Python clients, for tests/clients.rs.
ROLLAMA_TEST_PYTHON="$(./scripts/python-clients.sh "${ROLLAMA_TEST_VENV:-$HOME/.cache/rollama/venv}")"
export ROLLAMA_TEST_PYTHON
# The registry the pull/push tests (tests/registry.rs) run.
ROLLAMA_TEST_REGISTRY="$(./scripts/test-registry.sh)"
export ROLLAMA_TEST_REGISTRY

cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
# One test at a time: the inference tests measure CPU and memory of their own server, and
# two model-running servers at once on two cores make those measurements noisy.
cargo test --release -- --test-threads=1
