#!/usr/bin/env bash
# Native section of the benchmark: the CLI on the CPU (flex) and wgpu backends vs onnxruntime
# (PyPI, CPU) on the same networks as ONNX. Usage: scripts/bench/native.sh PEER_ONNX_DIR [REPEAT]
source "$(dirname "$0")/../common.sh"
peer="${1:?usage: scripts/bench/native.sh PEER_ONNX_DIR [REPEAT]}"
repeat="${2:-20}"
# PROFILE=release for a fully optimised binary (a clean release build takes ≈20 min on 2 cores);
# the default dev profile already builds the crate and every dependency at opt-level 3.
profile="${PROFILE:-dev}"
cargo build --profile "$profile" --bin sightline
bin="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")/sightline"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
for backend in cpu wgpu; do
  for cmd in classify detect; do
    printf 'sightline %s %s: ' "$backend" "$cmd"
    "$bin" "$cmd" --backend "$backend" --repeat "$repeat" tests/fixtures/images/dog.jpg 2>&1 >/dev/null | tail -1
  done
done
venv="$SIGHTLINE_CACHE/bench-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q onnxruntime numpy
"$venv/bin/python" scripts/bench/ort_native.py --peer-onnx "$peer" --repeat "$repeat"
