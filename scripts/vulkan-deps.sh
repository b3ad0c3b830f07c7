#!/usr/bin/env bash
# Installs what building the Vulkan flavor of rollama needs, and prints the directory to pass
# as VULKAN_SDK (scripts/cargo-env.sh does it for ROLLAMA_GPU=vulkan).
#
# - Debian's glslc (shader compiler), libvulkan-dev (the loader to link), spirv-headers, and
#   mesa-vulkan-drivers (lavapipe: a Vulkan driver that runs on the CPU, for the tests).
# - Vulkan headers new enough for the ggml-vulkan that llama-cpp-sys-2 ships: it uses
#   `vk::LayerSettingEXT` (Vulkan 1.3.261+), and Debian 12 has 1.3.239. Where the system headers
#   are older, Debian 13's libvulkan-dev is fetched with apt-get against a private state
#   directory (the system's sources and packages are left alone: nothing is upgraded), and
#   only unpacked into DIR (default ~/.cache/rollama/vulkan-sdk). Headers alone: the binary
#   still links against the system's loader (libvulkan.so.1), which is ABI-stable.
#
# Usage: scripts/vulkan-deps.sh [DIR]
set -euo pipefail

sdk="${1:-$HOME/.cache/rollama/vulkan-sdk}"
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi

missing=()
command -v glslc >/dev/null 2>&1 || missing+=(glslc)
[ -e /usr/include/vulkan/vulkan.h ] || missing+=(libvulkan-dev)
[ -d /usr/share/cmake/SPIRV-Headers ] || [ -d /usr/lib/cmake/SPIRV-Headers ] || missing+=(spirv-headers)
compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null || missing+=(mesa-vulkan-drivers)
command -v vulkaninfo >/dev/null 2>&1 || missing+=(vulkan-tools)
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "the Vulkan build needs: ${missing[*]} (a shader compiler, Vulkan headers and loader, SPIR-V headers); install them and run again" >&2
        exit 1
    fi
    echo "installing ${missing[*]} with apt-get..." >&2
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

# The header version: VK_HEADER_VERSION in vulkan_core.h.
header_version() {
    sed -n 's/^#define VK_HEADER_VERSION \([0-9]*\).*/\1/p' "$1/vulkan/vulkan_core.h" 2>/dev/null
}
need=261
have="$(header_version /usr/include)"
if [ -n "$have" ] && [ "$have" -ge "$need" ]; then
    echo /usr
    exit 0
fi
if [ -n "$(header_version "$sdk/include")" ] && [ "$(header_version "$sdk/include")" -ge "$need" ]; then
    echo "$sdk"
    exit 0
fi
if [ ! -r /etc/apt/sources.list.d/debian.sources ] && [ ! -r /etc/apt/sources.list ]; then
    echo "the system's Vulkan headers are 1.3.$have; ggml-vulkan needs 1.3.$need or later: install newer Vulkan headers (e.g. the LunarG SDK) and set VULKAN_SDK" >&2
    exit 1
fi
# The Debian mirror this machine's apt already uses.
mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)"
if [ -z "$mirror" ]; then
    mirror="$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | grep -v security | head -1)"
fi
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/sources.d"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$mirror" >"$state/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=$state/sources.d"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
echo "fetching Debian 13's Vulkan headers (unpacked into $sdk only)..." >&2
apt-get "${apt_private[@]}" update -qq >&2
(cd "$state" && apt-get "${apt_private[@]}" download -qq libvulkan-dev >&2)
rm -rf "$sdk.tmp"
dpkg-deb -x "$state"/libvulkan-dev_*.deb "$sdk.tmp"
rm -rf "$sdk"
mkdir -p "$sdk"
mv "$sdk.tmp/usr/include" "$sdk/include"
rm -rf "$sdk.tmp"
echo "$sdk"
