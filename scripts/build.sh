#!/usr/bin/env bash
# Builds the browser package: the wasm module (release, WebGPU + CPU backends) and its JS glue
# into pkg/. Assumes scripts/setup.sh has run.
#   --test-hooks   also compile the fault-injection hooks the browser tests use (never publish it)
source "$(dirname "$0")/common.sh"
features=()
if [ "${1:-}" = "--test-hooks" ]; then features=(--features test-hooks); fi
step "building the wasm module (release${features[*]:+, ${features[*]}}; a clean build takes ≈8 min on 2 cores)"
cargo build --lib --release --target wasm32-unknown-unknown "${features[@]}"
step "generating JS bindings into pkg/"
wasm-bindgen --target web --out-dir pkg --out-name sightline \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/sightline.wasm"
ls -l pkg/sightline_bg.wasm
step "recording the SHA-256 of the package's files (pkg/integrity.js)"
node scripts/integrity.mjs
