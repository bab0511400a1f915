#!/usr/bin/env bash
# The whole test suite, cheapest first. `.ci/run` runs exactly this.
source "$(dirname "$0")/common.sh"

step "formatting"
cargo fmt --check

bash scripts/setup.sh --test

step "native tests (CPU backend, and wgpu on Mesa lavapipe)"
export VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}"
# The Vulkan loader wants a private runtime dir; CI has none.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --all-targets -- --test-threads 1
cargo test --doc

step "clippy (native and wasm32)"
cargo clippy --all-targets -- -D warnings
cargo clippy --lib --release --target wasm32-unknown-unknown -- -D warnings

bash scripts/build.sh

step "browser tests (headless Chromium, real WebGPU on SwiftShader)"
node --test --test-concurrency=1 tests/browser/
