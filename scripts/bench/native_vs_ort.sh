#!/usr/bin/env bash
# Issue 13's native target, measured as it is stated: the CLI on the CPU vs onnxruntime (PyPI,
# CPU provider) at the same thread count, p50 of warm runs, in interleaved sittings (the machine's
# noise moves both; compare within a sitting). Prints each sitting's ratios, then their medians.
#
#   scripts/bench/native_vs_ort.sh PEER_ONNX_DIR [SITTINGS] [REPEAT] [BIN]
#
# BIN: a sightline binary to time (default: the release build, built if needed).
source "$(dirname "$0")/../common.sh"
peer="${1:?usage: scripts/bench/native_vs_ort.sh PEER_ONNX_DIR [SITTINGS] [REPEAT] [BIN]}"
sittings="${2:-5}"
repeat="${3:-30}"
if [ -n "${4:-}" ]; then
  bin="$4"
else
  PROFILE=release build_cli
  bin="$BIN"
fi
bench_python
image=tests/fixtures/images/dog.jpg
ratios="$(mktemp)"
trap 'rm -f "$ratios"' EXIT
for ((s = 1; s <= sittings; s++)); do
  for threads in 1 2; do
    ort="$("$PY" scripts/bench/ort_native.py --peer-onnx "$peer" --repeat "$repeat" --threads "$threads")"
    for pair in effnet:classify nanodet:detect; do
      model="${pair%%:*}" cmd="${pair##*:}"
      theirs="$(sed -n "s/.*cpu $model: .*p50 \([0-9.]*\) ms.*/\1/p" <<<"$ort")"
      ours="$(RAYON_NUM_THREADS="$threads" "$bin" "$cmd" --backend cpu --repeat "$repeat" "$image" 2>&1 >/dev/null |
        sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p')"
      if [ -z "$ours" ] || [ -z "$theirs" ]; then
        echo "native_vs_ort: no p50 for $model at $threads thread(s) (sightline '$ours', onnxruntime '$theirs')" >&2
        exit 1
      fi
      ratio="$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')"
      printf 'sitting %d, %d thread(s), %s: sightline %s ms, onnxruntime %s ms, ratio %s\n' \
        "$s" "$threads" "$model" "$ours" "$theirs" "$ratio"
      echo "$threads $model $ratio" >>"$ratios"
    done
  done
done
for threads in 1 2; do
  for model in effnet nanodet; do
    awk -v t="$threads" -v m="$model" '$1 == t && $2 == m { print $3 }' "$ratios" | sort -n |
      awk -v t="$threads" -v m="$model" '{ v[NR] = $1 } END {
        median = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median over %d sittings, %d thread(s), %s: %.2f (min %.2f, max %.2f)\n", NR, t, m, median, v[1], v[NR] }'
  done
done
