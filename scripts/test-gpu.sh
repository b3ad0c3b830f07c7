#!/usr/bin/env bash
# The GPU tests (README "GPUs"), a step of .ci/run after scripts/test.sh: builds the Vulkan
# flavor (cargo --features vulkan: llama.cpp's ggml-vulkan, dynamically linked) and runs
# tests/gpu.rs on Mesa's lavapipe, a real Vulkan driver that runs on the CPU, so every offload
# rule is checked on a machine without a GPU. Then it packages the CPU and Vulkan tarballs with
# scripts/release.sh and installs each with install.sh --from.
#
# It shares the target directory with the CPU build (scripts/cargo-env.sh): the Vulkan flavor
# builds into $CARGO_TARGET_DIR/release, the static CPU one into $CARGO_TARGET_DIR/<triple>/release.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-deps.sh
# glslc, the Vulkan loader and headers, SPIR-V headers, lavapipe.
VULKAN_SDK="$(./scripts/vulkan-deps.sh)"
export VULKAN_SDK
ROLLAMA_TEST_GGUF="$(./scripts/fetch-test-models.sh "${ROLLAMA_TEST_MODELS:-$HOME/.cache/rollama/test-models}")"
export ROLLAMA_TEST_GGUF
cpu_binary="$(. ./scripts/cargo-env.sh && echo "$ROLLAMA_BUILD_DIR/rollama")"

export ROLLAMA_GPU=vulkan
# shellcheck source=scripts/cargo-env.sh
. ./scripts/cargo-env.sh
started=$SECONDS
# shellcheck disable=SC2086
cargo build --release --locked --bin rollama $ROLLAMA_FEATURES
echo "Vulkan build: $((SECONDS - started)) s" >&2
vulkan_binary="$ROLLAMA_BUILD_DIR/rollama"
# shellcheck disable=SC2086
cargo test --release --locked $ROLLAMA_FEATURES --test gpu -- --test-threads=1 --nocapture

# The release: both flavors' tarballs, each installable with install.sh --from.
if [ ! -x "$cpu_binary" ]; then
    echo "no CPU build at $cpu_binary (run scripts/test.sh first): skipping the release check" >&2
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ROLLAMA_BINARY="$cpu_binary" ROLLAMA_VULKAN_BINARY="$vulkan_binary" ./scripts/release.sh "$work/dist"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
for flavor in "" -vulkan; do
    tarball="rollama-$version-linux-$(uname -m)$flavor.tar.gz"
    grep -q " $tarball\$" "$work/dist/SHA256SUMS" || { echo "$tarball is not in SHA256SUMS" >&2; exit 1; }
    tar -xzOf "$work/dist/$tarball" "${tarball%.tar.gz}/SHA256SUMS" | grep -q ' rollama$' \
        || { echo "$tarball has no SHA256SUMS of its binary" >&2; exit 1; }
done
# install.sh picks the Vulkan tarball here (a Vulkan loader is installed), and --gpu cpu the CPU one.
./install.sh --from "$work/dist" --prefix "$work/vulkan" --no-model --no-service | tee "$work/log"
grep -q "installing the vulkan flavor" "$work/log" || { echo "install.sh did not pick the Vulkan tarball" >&2; exit 1; }
ldd "$work/vulkan/bin/rollama" | grep -q libvulkan || { echo "the installed Vulkan binary does not link libvulkan" >&2; exit 1; }
"$work/vulkan/bin/rollama" --help >/dev/null
./install.sh --from "$work/dist" --gpu cpu --prefix "$work/cpu" --no-model --no-service | tee "$work/log"
grep -q "installing the cpu flavor" "$work/log" || { echo "install.sh --gpu cpu did not take the CPU tarball" >&2; exit 1; }
if ldd "$work/cpu/bin/rollama" 2>&1 | grep -q '=>'; then
    echo "the installed CPU binary is not static" >&2
    exit 1
fi
echo "release check: CPU and Vulkan tarballs written and installed" >&2
