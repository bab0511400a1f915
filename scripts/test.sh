#!/usr/bin/env bash
# The whole test suite. `.ci/run` runs exactly this. Two steps: set-up (idempotent: installs what
# the build and the tests need), then the checks, cheapest first.
source "$(dirname "$0")/common.sh"

# 1. Set-up.
bash scripts/setup.sh --test

# 2. Checks.
step "formatting"
cargo fmt --check

step "native tests (CPU backend, and wgpu on Mesa lavapipe)"
export VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}"
# The Vulkan loader wants a private runtime dir; CI has none.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo test --all-targets -- --test-threads 1
cargo test --doc

step "clippy (native, wasm32, wasm32 with relaxed SIMD)"
cargo clippy --all-targets -- -D warnings
cargo clippy --lib --release --target wasm32-unknown-unknown -- -D warnings
cargo clippy --lib --release --target wasm32-unknown-unknown --no-default-features -- -D warnings
CARGO_TARGET_DIR="$RELAXED_TARGET_DIR" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$RELAXED_RUSTFLAGS" \
    cargo clippy --lib --release --target wasm32-unknown-unknown --no-default-features -- -D warnings

bash scripts/build.sh --test-hooks

step "browser tests (headless Chromium, real WebGPU on SwiftShader)"
node --test --test-concurrency=1 tests/browser/

step "Node.js tests (the package API in Node, the README example under TypeScript strict)"
node --test tests/node/
