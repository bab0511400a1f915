#!/usr/bin/env bash
# Agreement of the f16 and int8 weights with f32 on every reference input (the native test that
# asserts the default's bounds), written to bench-results/precision.json.
source "$(dirname "$0")/../common.sh"
export VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
SIGHTLINE_PRECISION_JSON="$ROOT/bench-results/precision.json" \
  cargo test --test native reduced_precision_variants_agree_with_f32 -- --nocapture
