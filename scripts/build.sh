#!/usr/bin/env bash
# Builds the browser package: the wasm module (release, WebGPU + CPU backends) and its JS glue
# into pkg/ (Cargo profile `wasm`: sized for the network), then shrinks the module with wasm-opt
# (npm `binaryen`, installed by scripts/setup.sh).
# Assumes scripts/setup.sh has run.
#   --test-hooks   also compile the fault-injection hooks the browser tests use (never publish it)
#   --keep-names   keep the function names and skip wasm-opt: a module for the profiler
#                  (scripts/bench/profile.mjs), not for shipping
source "$(dirname "$0")/common.sh"
features=()
keep_names=0
for a in "$@"; do
    case "$a" in
        --test-hooks) features=(--features test-hooks) ;;
        --keep-names) keep_names=1 ;;
        *) echo "build.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
step "building the wasm module (profile wasm${features[*]:+, ${features[*]}}; a clean build takes ≈8 min on 2 idle cores)"
cargo build --lib --profile wasm --target wasm32-unknown-unknown "${features[@]}"
step "generating JS bindings into pkg/"
names=(--remove-name-section --remove-producers-section)
[ "$keep_names" = 1 ] && names=()
wasm-bindgen --target web --out-dir pkg --out-name sightline "${names[@]}" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm/sightline.wasm"
if [ "$keep_names" = 0 ]; then
    # Size passes only (identical-function merging, code folding, dead code): -Oz/-Os make the
    # module smaller raw but larger once brotli'd (README "Runtime size"). ≈30 s on 2 cores; the
    # output is kept per input hash, so a rebuild that does not change the module skips it.
    cache="$CARGO_TARGET_DIR/wasm-opt"
    mkdir -p "$cache"
    key="$(sha256sum pkg/sightline_bg.wasm | cut -c1-64)"
    if [ ! -f "$cache/$key.wasm" ]; then
        step "wasm-opt size passes (binaryen $(node_modules/.bin/wasm-opt --version | awk '{print $3}'))"
        node_modules/.bin/wasm-opt pkg/sightline_bg.wasm -o "$cache/$key.tmp" \
            --duplicate-function-elimination --code-folding --remove-unused-brs --remove-unused-names \
            --merge-blocks --vacuum --duplicate-function-elimination --remove-unused-module-elements
        mv "$cache/$key.tmp" "$cache/$key.wasm"
        # Keep the latest few (a test build and a release build).
        ls -t "$cache"/*.wasm | tail -n +5 | xargs -r rm -f
    fi
    cp "$cache/$key.wasm" pkg/sightline_bg.wasm
fi
ls -l pkg/sightline_bg.wasm
step "recording the SHA-256 of the package's files (pkg/integrity.js)"
node scripts/integrity.mjs
