# Sourced (not run) by the scripts that build rollama: test.sh, install.sh, release.sh and the
# benchmarks, so that the tests, the installed binary and the release tarball are one build.
#
# On Linux with glibc the binary is linked statically (glibc static-pie, with llama.cpp's
# libstdc++ and libgomp inside): `-C target-feature=+crt-static`. rustc refuses that flag for
# proc-macro crates, which are host code, so cargo must build for an explicit `--target`
# (CARGO_BUILD_TARGET): the flag then reaches only the target's artefacts, and build scripts
# and proc macros stay ordinary host programs. The flags given here are added to those in
# .cargo/config.toml. Elsewhere (macOS) nothing changes.
#
# Exports CARGO_TARGET_DIR (default ~/.cache/rollama/target) and ROLLAMA_BUILD_DIR, the
# directory the optimised `rollama` binary is written to.

#
# ROLLAMA_GPU=vulkan|cuda|rocm|metal selects a GPU flavor: llama.cpp with that ggml backend
# (the cargo feature of the same name, in ROLLAMA_FEATURES). A GPU driver's loader (libvulkan,
# libcuda) cannot be linked into a static binary, so a GPU flavor is an ordinary dynamically
# linked build, for the host, without the static flags: its artefacts go to
# $CARGO_TARGET_DIR/release, beside the static build's $CARGO_TARGET_DIR/<triple>/release, and
# the two share the target directory's host-side build scripts and proc macros.
# For vulkan, VULKAN_SDK must name headers new enough for ggml-vulkan
# (scripts/vulkan-deps.sh installs them and prints the directory).

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rollama/target}"
rollama_host="$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')"
case "${ROLLAMA_GPU:-cpu}" in
    cpu) export ROLLAMA_FEATURES="" ;;
    vulkan | cuda | rocm | metal)
        export ROLLAMA_FEATURES="--features $ROLLAMA_GPU"
        rollama_host="gpu"
        unset CARGO_BUILD_TARGET
        ;;
    *)
        echo "ROLLAMA_GPU=$ROLLAMA_GPU: expected cpu, vulkan, cuda, rocm or metal" >&2
        return 1
        ;;
esac
case "$rollama_host" in
    *-linux-gnu)
        export CARGO_BUILD_TARGET="$rollama_host"
        rollama_var="CARGO_TARGET_$(echo "$rollama_host" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
        # getrandom 0.3/0.4 find glibc's getrandom() with dlsym, which a static binary does
        # not have, and then read /dev/urandom, which an empty chroot or a minimal container
        # lacks: have them call getrandom() directly (glibc 2.25+, Linux 3.17+).
        export "$rollama_var=-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""
        export ROLLAMA_BUILD_DIR="$CARGO_TARGET_DIR/$rollama_host/release"
        unset rollama_var
        ;;
    *)
        export ROLLAMA_BUILD_DIR="$CARGO_TARGET_DIR/release"
        ;;
esac
unset rollama_host
