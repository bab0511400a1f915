#!/usr/bin/env bash
# Builds the browser package: the wasm module (release, WebGPU + CPU backends) and its JS glue
# into pkg/. Assumes scripts/setup.sh has run.
source "$(dirname "$0")/common.sh"
step "building the wasm module (release; a clean build takes ≈8 min on 2 cores)"
cargo build --lib --release --target wasm32-unknown-unknown
step "generating JS bindings into pkg/"
wasm-bindgen --target web --out-dir pkg --out-name sightline \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/sightline.wasm"
ls -l pkg/sightline_bg.wasm
