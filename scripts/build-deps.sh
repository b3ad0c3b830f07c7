#!/usr/bin/env bash
# Installs what building rollama needs besides Rust: the llama.cpp engine (the `llama-cpp-2`
# crate) compiles llama.cpp's C/C++ sources with cmake and a C++ compiler, and generates its
# bindings with bindgen, which needs libclang. On Debian/Ubuntu the missing ones come from
# apt-get (with sudo when not root); elsewhere the script says what to install and fails.
#
# With --test it also installs what the packaging tests check with: `ruby` (`ruby -c` on the
# Homebrew formula) and `systemd` (`systemd-analyze verify` on install.sh's unit).
set -euo pipefail

missing=()
if [ "${1:-}" = --test ]; then
    command -v ruby >/dev/null 2>&1 || missing+=(ruby)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
fi
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
# bindgen loads libclang.so at build time.
has_libclang() {
    [ -n "${LIBCLANG_PATH:-}" ] && return 0
    local pattern
    # libclang-14.so.1 is libclang; libclang-cpp.so.14 (the C++ library) is not.
    for pattern in '/usr/lib/llvm-*/lib/libclang.so*' '/usr/lib/*-linux-gnu/libclang.so*' \
        '/usr/lib/*-linux-gnu/libclang-[0-9]*.so*' '/usr/lib64/libclang.so*'; do
        compgen -G "$pattern" >/dev/null && return 0
    done
    return 1
}
has_libclang || missing+=(libclang-dev)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "building rollama needs: ${missing[*]} (cmake, a C++ compiler and libclang); install them and run again" >&2
    exit 1
fi
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
echo "installing ${missing[*]} with apt-get..." >&2
$sudo_cmd apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
