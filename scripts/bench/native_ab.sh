#!/usr/bin/env bash
# Same-run A/B of two builds of the CLI on the CPU backend: rounds alternate between them, each
# round times `--repeat R` warm runs per model on dog.jpg; prints each round's p50 and the minimum
# per build (the machine is noisy: compare minima taken in the same run).
#
#   scripts/bench/native_ab.sh BIN_A BIN_B [ROUNDS] [REPEAT]
#
# Build the two binaries first (e.g. `cargo build --bin sightline` at each commit, copying
# $CARGO_TARGET_DIR/debug/sightline aside).
set -euo pipefail
a="${1:?usage: scripts/bench/native_ab.sh BIN_A BIN_B [ROUNDS] [REPEAT]}"
b="${2:?usage: scripts/bench/native_ab.sh BIN_A BIN_B [ROUNDS] [REPEAT]}"
rounds="${3:-5}"
repeat="${4:-10}"
image="$(dirname "$0")/../../tests/fixtures/images/dog.jpg"
for cmd in classify detect; do
    declare -A best=()
    for ((r = 1; r <= rounds; r++)); do
        for name in A B; do
            bin="$a"; [ "$name" = B ] && bin="$b"
            if ! line=$("$bin" "$cmd" --backend cpu --repeat "$repeat" "$image" 2>&1 >/dev/null) ||
                ! line=$(grep 'warm latency' <<<"$line"); then
                echo "native_ab: $bin $cmd failed: $line" >&2
                exit 1
            fi
            p50=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' <<<"$line")
            printf '%s round %d %s: p50 %s ms\n' "$cmd" "$r" "$name" "$p50"
            if [ -z "${best[$name]:-}" ] || awk -v x="$p50" -v y="${best[$name]}" 'BEGIN { exit !(x < y) }'; then
                best[$name]=$p50
            fi
        done
    done
    printf '%s: minimum p50 A %s ms, B %s ms, B/A %s\n' "$cmd" "${best[A]}" "${best[B]}" \
        "$(awk -v x="${best[B]}" -v y="${best[A]}" 'BEGIN { printf "%.3f", x / y }')"
    unset best
done
