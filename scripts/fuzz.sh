#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers with cargo fuzz (libFuzzer): the Modelfile parser, the
# model-name parser, the GGUF header reader, the Go-template renderer and request-body decoding
# (fuzz/fuzz_targets/, entry points in src/fuzzing.rs).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# Needs a nightly toolchain (`rustup toolchain list`) and cargo-fuzz (installed here when
# missing). Found corpora grow in fuzz/corpus/; a crash is saved in fuzz/artifacts/<target>/
# and fails the script: copy it to fuzz/regressions/<target>/ with the fix, so that
# tests/fuzz_seeds.rs replays it in every test run. Prints executions per target at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(modelfile model_name gguf_header template request_body)
fi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz.sh: no nightly toolchain; cargo fuzz needs one (tests/fuzz_seeds.rs still replays the seeds)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
target_dir="${ROLLAMA_FUZZ_TARGET_DIR:-$HOME/.cache/rollama/fuzz-target}"

# Instrumented build of every target, of rollama without its engines (fuzz/Cargo.toml).
cargo +nightly fuzz build -s none --target-dir "$target_dir" >&2

summary=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run -s none --target-dir "$target_dir" "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz.sh: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)"
    summary+=("$target: $runs executions in ${seconds} s, ${cov:-cov: ?}, no crash")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
