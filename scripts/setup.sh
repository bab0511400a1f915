#!/usr/bin/env bash
# Installs everything the build needs (idempotent): the wasm32 target, wasm-bindgen-cli at the
# version pinned in Cargo.toml, npm packages and the pretrained weights.
# With --test, also the Debian packages the tests need: Chromium (real WebGPU on its bundled
# SwiftShader) and Mesa's lavapipe (software Vulkan for native wgpu tests).
source "$(dirname "$0")/common.sh"

if [ "${1:-}" = "--test" ]; then
  need=()
  command -v chromium >/dev/null || need+=(chromium)
  [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need+=(mesa-vulkan-drivers libvulkan1)
  if [ ${#need[@]} -gt 0 ]; then
    step "installing Debian packages: ${need[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
  step "installing wasm-bindgen-cli $version (must equal the wasm-bindgen crate)"
  # Not --locked: its lockfile pins crates some registry mirrors lack.
  cargo install wasm-bindgen-cli --version "$version"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm packages"
  npm ci --no-audit --no-fund
fi

step "fetching and converting the pretrained weights"
python3 scripts/fetch_weights.py
