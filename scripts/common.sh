# Shared settings for the scripts (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Keep build outputs outside the clone so a fresh clone (and CI) reuses them.
export SIGHTLINE_CACHE="${SIGHTLINE_CACHE:-$HOME/.cache/sightline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SIGHTLINE_CACHE/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# The relaxed-SIMD runtime module's target features (scripts/build.sh), in its own target dir.
export RELAXED_RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd"
export RELAXED_TARGET_DIR="$CARGO_TARGET_DIR/relaxed"
step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Builds the CLI for the benchmarks and sets BIN to it. PROFILE=release for a fully optimised
# binary (a clean release build takes ≈20 min on 2 cores); the default dev profile already builds
# the crate and every dependency at opt-level 3.
build_cli() {
    local profile="${PROFILE:-dev}"
    cargo build --profile "$profile" --bin sightline
    BIN="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")/sightline"
}

# The benchmarks' Python (onnxruntime, numpy, Pillow from PyPI) in a cached venv; sets PY.
bench_python() {
    local venv="$SIGHTLINE_CACHE/bench-venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q onnxruntime numpy pillow
    PY="$venv/bin/python"
}
