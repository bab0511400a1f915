#!/usr/bin/env bash
# Coverage-guided fuzzing of the input parsers (fuzz/, cargo-fuzz + libFuzzer on nightly): runs
# every target, or those named, for RUNS executions each (default 1,000,000), starting from the
# committed corpus, and prints executions, time, exec/s and corpus size per target.
#
#   scripts/fuzz.sh [-n RUNS] [--merge] [--no-trace-compares] [TARGET...]
#
# --no-trace-compares builds without libFuzzer's comparison tracing (in its own target dir): 2.3x
# (decode_nms) and 4.9x (decode_image) the executions a second, measured, with coarser guidance for
# magic values; start from a corpus a traced run has grown.
# New inputs go to a scratch corpus ($SIGHTLINE_CACHE/fuzz-corpus/<target>), not to the clone;
# --merge then adds those that reach new code to fuzz/corpus/<target> (libFuzzer -merge=1), to
# commit. A crash stops the script: the input is in fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run --target-dir "$HOME/.cache/sightline/fuzz-target" <target> <file>
# and, once fixed, commit it under fuzz/corpus/<target>/ so tests/fuzz_corpus.rs replays it.
source "$(dirname "$0")/common.sh"

RUNS=1000000
MERGE=0
BUILD_FLAGS=()
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n) RUNS="$2"; shift 2 ;;
        --merge) MERGE=1; shift ;;
        --no-trace-compares) BUILD_FLAGS+=(--no-trace-compares); shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(weights_classifier weights_detector decode_image options decode_nms)

FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$SIGHTLINE_CACHE/fuzz-target${BUILD_FLAGS:+-untraced}}"
SCRATCH="$SIGHTLINE_CACHE/fuzz-corpus"
LOGS="$SIGHTLINE_CACHE/fuzz-logs"
# Niced: fuzzing takes every core it is given, for as long as it runs.
NICE=(nice -n "${FUZZ_NICE:-19}")

step "toolchain"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
# Not --locked: lockfiles pin crates some registry mirrors lack (as for wasm-bindgen-cli).
command -v cargo-fuzz >/dev/null || "${NICE[@]}" cargo install cargo-fuzz
cargo fuzz --version

# The longest input worth trying: a few tensors of a weights file, a small image, an options
# object, one 8×8 level of head output (16 + 8·8·124·4 bytes).
max_len() {
    case "$1" in
        options) echo 4096 ;;
        decode_nms) echo 32768 ;;
        *) echo 65536 ;;
    esac
}

step "build"
(cd fuzz && "${NICE[@]}" cargo +nightly fuzz build "${BUILD_FLAGS[@]}" --target-dir "$FUZZ_TARGET_DIR")

mkdir -p "$LOGS"
summary=()
for t in "${TARGETS[@]}"; do
    step "fuzz $t ($RUNS executions)"
    mkdir -p "$SCRATCH/$t"
    log="$LOGS/$t.log"
    start=$(date +%s)
    set +e
    (cd fuzz && "${NICE[@]}" cargo +nightly fuzz run "${BUILD_FLAGS[@]}" --target-dir "$FUZZ_TARGET_DIR" "$t" "$SCRATCH/$t" "corpus/$t" -- \
        -runs="$RUNS" -max_len="$(max_len "$t")" -rss_limit_mb=4096 -timeout=60 -print_final_stats=1) 2>&1 |
        tee "$log" | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE|pulse)|Done |==[0-9]+==|.*panicked)'
    status=${PIPESTATUS[0]}
    set -e
    seconds=$(( $(date +%s) - start ))
    if [ "$status" != 0 ]; then
        tail -n 40 "$log"
        echo "fuzz: $t failed (exit $status); the input is in fuzz/artifacts/$t/, the log in $log" >&2
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(ls "$SCRATCH/$t" | wc -l)
    summary+=("$(printf '%-20s %10s runs %6ss %8s exec/s  %6s in the scratch corpus' \
        "$t" "$execs" "$seconds" "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)" "$corpus")")
    if [ "$MERGE" = 1 ]; then
        (cd fuzz && "${NICE[@]}" cargo +nightly fuzz run "${BUILD_FLAGS[@]}" --target-dir "$FUZZ_TARGET_DIR" "$t" "corpus/$t" \
            "$SCRATCH/$t" -- -merge=1 -max_len="$(max_len "$t")" -rss_limit_mb=4096 -timeout=60) >>"$log" 2>&1
    fi
done

step "summary (0 crashes; logs in $LOGS)"
printf '%s\n' "${summary[@]}"
