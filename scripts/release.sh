#!/usr/bin/env bash
# Builds the release artefacts into OUTDIR (default dist/):
#   rollama-<version>-linux-<arch>.tar.gz   the stripped static binary (CPU), shell completions,
#       man pages, LICENSE, README.md, install.sh and the starter-model fetcher, with a
#       SHA256SUMS of those files, all in a directory rollama-<version>-linux-<arch>/
#   rollama-<version>-linux-<arch>-vulkan.tar.gz, …-cuda.tar.gz   the same for each GPU flavor
#       whose toolchain is here (llama.cpp with that ggml backend; dynamically linked against
#       glibc and the GPU driver's loader only: libstdc++, OpenMP and, for CUDA, cudart and
#       cuBLAS are inside): vulkan where glslc is installed (scripts/vulkan-deps.sh installs
#       it), cuda where nvcc is on PATH. ROLLAMA_FLAVORS="cpu vulkan cuda" chooses explicitly.
#   rollama-<version>-linux-<arch>[-<gpu>].debug    each binary's debug info (gdb finds it
#       through the binary's .gnu_debuglink)
#   rollama-<version>-src.tar.gz            the source (git archive of HEAD), what the Homebrew
#       formula builds
#   rollama.rb                              packaging/homebrew/rollama.rb with that source
#       tarball's sha256 filled in (ROLLAMA_RELEASE_URL: where the tarballs will be published)
#   SHA256SUMS                              of the files above (install.sh --from checks it)
#
# The binaries are the ones the tests run: same profile and flags (scripts/cargo-env.sh), so
# after scripts/test.sh (and scripts/test-gpu.sh) the build steps here are no-ops.
# ROLLAMA_BINARY=PATH packages an already built CPU binary instead, ROLLAMA_VULKAN_BINARY and
# ROLLAMA_CUDA_BINARY the GPU ones (with ROLLAMA_BINARY set and no ROLLAMA_FLAVORS, only the
# flavors given a binary are packaged). The archives are reproducible for a given binary:
# entries sorted, times set to the commit's (SOURCE_DATE_EPOCH), owners 0, gzip without name
# or time.
#
# The CUDA flavor needs the CUDA toolkit (nvcc, cudart, cuBLAS). Without one, install NVIDIA's
# toolkit (or, on any distribution, the nvidia-cuda-nvcc-cu12, nvidia-cuda-runtime-cu12,
# nvidia-cublas-cu12 and nvidia-cuda-cccl-cu12 wheels with pip, putting their bin/ on PATH and
# CUDA_PATH at them) and run again.
#
# Usage: scripts/release.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-dist}"
[ "$(uname -s)" = Linux ] || { echo "release.sh builds Linux tarballs; on macOS use the Homebrew formula" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
name="rollama-$version-linux-$(uname -m)"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
url="${ROLLAMA_RELEASE_URL:-https://github.com/rollama/rollama/releases/download/v$version}"

# The flavors to package, and the binary of each (built here where none is given).
if [ -n "${ROLLAMA_FLAVORS:-}" ]; then
    flavors="$ROLLAMA_FLAVORS"
elif [ -n "${ROLLAMA_BINARY:-}" ]; then
    flavors="cpu"
    [ -n "${ROLLAMA_VULKAN_BINARY:-}" ] && flavors="$flavors vulkan"
    [ -n "${ROLLAMA_CUDA_BINARY:-}" ] && flavors="$flavors cuda"
else
    flavors="cpu"
    if command -v glslc >/dev/null 2>&1; then
        flavors="$flavors vulkan"
    else
        echo "no glslc: the Vulkan flavor is skipped (scripts/vulkan-deps.sh installs its tools)" >&2
    fi
    if command -v nvcc >/dev/null 2>&1; then
        flavors="$flavors cuda"
    else
        echo "no CUDA toolkit (nvcc): the CUDA flavor is skipped (see the top of this script for how to get one)" >&2
    fi
fi

binary_of() { # binary_of FLAVOR: prints the path of that flavor's binary, building it if needed
    local given
    case "$1" in
        cpu) given="${ROLLAMA_BINARY:-}" ;;
        vulkan) given="${ROLLAMA_VULKAN_BINARY:-}" ;;
        cuda) given="${ROLLAMA_CUDA_BINARY:-}" ;;
        *) echo "unknown flavor $1 (cpu, vulkan, cuda)" >&2; return 1 ;;
    esac
    if [ -n "$given" ]; then
        echo "$given"
        return
    fi
    (
        ./scripts/build-deps.sh >&2
        if [ "$1" = vulkan ]; then
            VULKAN_SDK="$(./scripts/vulkan-deps.sh)"
            export VULKAN_SDK
        fi
        if [ "$1" != cpu ]; then export ROLLAMA_GPU="$1"; fi
        # shellcheck source=scripts/cargo-env.sh
        . ./scripts/cargo-env.sh
        # shellcheck disable=SC2086
        cargo build --release --locked --bin rollama $ROLLAMA_FEATURES >&2
        echo "$ROLLAMA_BUILD_DIR/rollama"
    )
}

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
artefacts=()

package() { # package FLAVOR BINARY
    local flavor="$1" binary="$2" base="$name"
    [ "$flavor" = cpu ] || base="$name-$flavor"
    local dir="$stage/$base"
    mkdir -p "$dir/completions" "$dir/man" "$dir/scripts"
    # The debug info goes to its own file; the shipped binary is stripped and points at it.
    cp "$binary" "$dir/rollama"
    objcopy --only-keep-debug "$dir/rollama" "$out/$base.debug"
    (cd "$out" && objcopy --strip-all --add-gnu-debuglink="$base.debug" "$dir/rollama")
    chmod 0755 "$dir/rollama"
    if [ "$flavor" != cpu ]; then
        # A GPU build links the driver's loader and glibc dynamically, nothing else.
        local extra
        extra="$(ldd "$dir/rollama" | awk '{print $1}' \
            | grep -Ev '^(linux-vdso|/lib.*/ld-linux|ld-linux|libc|libm|libdl|libpthread|librt|libgcc_s|libvulkan|libcuda|libnvidia)[.-]' || true)"
        if [ -n "$extra" ]; then
            echo "the $flavor binary needs libraries a machine may lack: $extra" >&2
            return 1
        fi
    fi
    cp completions/rollama.bash completions/_rollama completions/rollama.fish "$dir/completions/"
    cp man/*.1 "$dir/man/"
    cp LICENSE README.md install.sh "$dir/"
    cp scripts/fetch-starter-model.sh scripts/smollm2.sha256 "$dir/scripts/"
    (cd "$dir" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort \
        | xargs sha256sum > SHA256SUMS)
    archive "$stage" "$base" "$out/$base.tar.gz"
    artefacts+=("$base.tar.gz" "$base.debug")
    echo "$flavor binary (stripped): $(stat -c %s "$dir/rollama") bytes" >&2
}

archive() { # archive SOURCE_DIR ENTRY OUTPUT
    tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$1" -cf - "$2" | gzip -9n > "$3"
}

for flavor in $flavors; do
    binary="$(binary_of "$flavor")"
    package "$flavor" "$binary"
done

if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
    src="rollama-$version-src.tar.gz"
    git archive --format=tar --prefix="rollama-$version/" HEAD | gzip -9n > "$out/$src"
    sha="$(sha256sum "$out/$src" | cut -d' ' -f1)"
    commit="$(git rev-parse --short=12 HEAD)"
    sed -e "s|^  url \".*\"|  url \"$url/$src\"|" \
        -e "s|^  sha256 \".*\"|  sha256 \"$sha\"|" \
        -e "s|ROLLAMA_GIT_COMMIT\"\] = \"[^\"]*\"|ROLLAMA_GIT_COMMIT\"] = \"$commit\"|" \
        packaging/homebrew/rollama.rb > "$out/rollama.rb"
    artefacts+=("$src" rollama.rb)
else
    echo "not a git checkout: no source tarball or Homebrew formula" >&2
fi
(cd "$out" && sha256sum "${artefacts[@]}" > SHA256SUMS)

for file in "${artefacts[@]}"; do
    printf '%s\t%s\n' "$(du -h "$out/$file" | cut -f1)" "$out/$file"
done
