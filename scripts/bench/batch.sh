#!/usr/bin/env bash
# Batch throughput: `sightline classify|detect --jsonl FOLDER` (decoding overlapped with
# inference) vs onnxruntime (PyPI, CPU) in a Python loop with the same preprocessing and
# post-processing (scripts/bench/ort_batch.py), over a folder of the four fixture images repeated.
#
#   scripts/bench/batch.sh PEER_ONNX_DIR [COPIES]     (COPIES of each fixture, default 75: 300 images)
source "$(dirname "$0")/../common.sh"
peer="${1:?usage: scripts/bench/batch.sh PEER_ONNX_DIR [COPIES]}"
copies="${2:-75}"
build_cli
bin="$BIN"

folder="$(mktemp -d)"
trap 'rm -rf "$folder"' EXIT
for i in $(seq -w 1 "$copies"); do
    for f in tests/fixtures/images/*.png tests/fixtures/images/*.jpg; do
        name="$(basename "$f")"
        cp "$f" "$folder/${i}-${name}"
    done
done
echo "folder: $(ls "$folder" | wc -l) images, $(du -sh "$folder" | cut -f1); $(nproc) cores"

for cmd in classify detect; do
    printf 'sightline %s --jsonl: ' "$cmd"
    "$bin" "$cmd" --jsonl "$folder" 2>&1 >/dev/null | tail -n 1
done
bench_python
"$PY" scripts/bench/ort_batch.py --peer-onnx "$peer" --images "$folder"
