#!/usr/bin/env bash
# The browser benchmark on this machine's real GPU (issue 14): sightline and onnxruntime-web on
# WebGPU and on the CPU, both models, with the WebGPU calls per warm frame counted, then the CPU
# time per WebGPU frame at 640×480 and 1280×720 (scripts/bench/frame-cpu.mjs). Prints the tables
# (the first line names the adapter) and writes bench-results/gpu-<date>.json and
# bench-results/gpu-frame-cpu-<date>.json.
#
#   bash scripts/bench/gpu.sh PEER_ONNX_DIR [--frames N] [--no-setup]
#
# PEER_ONNX_DIR holds the two networks as ONNX (see scripts/bench/bench.mjs). From a clean
# checkout it runs scripts/setup.sh --test and scripts/build.sh first (the wasm build is most of
# the time: ≈8 min on 2 cores, under 3 on 16); with --no-setup it uses the pkg/ and
# node_modules/ already there (e.g. carried to a machine without network), and Chromium from
# $CHROMIUM. Chromium is started on the GPU's Vulkan driver (SIGHTLINE_GPU=hardware in
# scripts/lib/pages.mjs); if the page gets the software adapter instead, the script says so and
# fails rather than report software figures as a GPU's.
source "$(dirname "$0")/../common.sh"
peer="${1:?usage: scripts/bench/gpu.sh PEER_ONNX_DIR [--frames N] [--no-setup]}"
shift
frames=30
setup=1
while [ $# -gt 0 ]; do
    case "$1" in
        --frames) frames="$2"; shift 2 ;;
        --no-setup) setup=0; shift ;;
        *) echo "gpu.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$setup" = 1 ]; then
    bash scripts/setup.sh --test
    bash scripts/build.sh
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
export SIGHTLINE_GPU=hardware
out="bench-results/gpu-$(date -u +%Y-%m-%d).json"
node scripts/bench/bench.mjs --peer-onnx "$peer" --frames "$frames" --webgpu-frames "$frames" \
    --memory-backends webgpu --memory-frames 300 --webgpu-memory-frames 300 --out "$out" | tee "$out.txt"
if grep -q "software fallback adapter\|^WebGPU adapter: none" "$out.txt"; then
    echo "gpu.sh: Chromium did not get a hardware WebGPU adapter (see the first lines above); these are not GPU figures" >&2
    exit 1
fi
node scripts/bench/frame-cpu.mjs --frames "$frames" --out "bench-results/gpu-frame-cpu-$(date -u +%Y-%m-%d).json"
