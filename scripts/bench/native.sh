#!/usr/bin/env bash
# Native section of the benchmark: the CLI on the CPU (flex) and wgpu backends vs onnxruntime
# (PyPI, CPU) on the same networks as ONNX. Usage: scripts/bench/native.sh PEER_ONNX_DIR [REPEAT]
source "$(dirname "$0")/../common.sh"
peer="${1:?usage: scripts/bench/native.sh PEER_ONNX_DIR [REPEAT]}"
repeat="${2:-20}"
# The release binary, as README's `cargo build --release` builds it. PROFILE=dev builds faster
# but runs slower (debug assertions, overflow checks, no LTO: 1.3–1.7× in issue 13's fifth round).
PROFILE="${PROFILE:-release}" build_cli
echo "sightline CLI: $BIN"
bin="$BIN"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
for backend in cpu wgpu; do
  for cmd in classify detect; do
    printf 'sightline %s %s: ' "$backend" "$cmd"
    "$bin" "$cmd" --backend "$backend" --repeat "$repeat" tests/fixtures/images/dog.jpg 2>&1 >/dev/null | tail -1
  done
done
bench_python
"$PY" scripts/bench/ort_native.py --peer-onnx "$peer" --repeat "$repeat"
