#!/usr/bin/env bash
# Builds the browser package into pkg/: three wasm modules (release, WebGPU + CPU backends; Cargo
# profile `wasm`: sized for the network) and their JS glue, each shrunk with wasm-opt (npm
# `binaryen`, installed by scripts/setup.sh):
#   sightline_bg.wasm        the runtime every page loads (inference, embeddings, explanations);
#   sightline_relaxed_bg.wasm  the same runtime built with relaxed SIMD (fused multiply-add in the
#                            CPU kernels), loaded instead where the browser validates it; it shares
#                            sightline.js, and the build fails if its glue would differ;
#   sightline_train_bg.wasm  the same crate with the `train` feature (burn autodiff + optimizer),
#                            loaded only when a page trains a head (README "Teach and explain").
# Assumes scripts/setup.sh has run.
#   --test-hooks   also compile the fault-injection hooks the browser tests use (never publish it)
#   --keep-names   keep the function names and skip wasm-opt: a module for the profiler
#                  (scripts/bench/profile.mjs), not for shipping
source "$(dirname "$0")/common.sh"
features=()
keep_names=0
for a in "$@"; do
    case "$a" in
        --test-hooks) features=(test-hooks) ;;
        --keep-names) keep_names=1 ;;
        *) echo "build.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

# build_module OUT_NAME TARGET_DIR FEATURE...: one module into pkg/OUT_NAME{.js,_bg.wasm}. Each
# module has its own target directory, so that building one never invalidates the other's cache.
# RUSTFLAGS_WASM (optional): CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS for this module (with
# .cargo/config.toml's `+simd128`; the relaxed build repeats it).
build_module() {
    local name="$1" target_dir="$2"
    shift 2
    local list
    list="$(IFS=,; echo "$*")"
    step "building $name.wasm (profile wasm${list:+, features $list}${RUSTFLAGS_WASM:+, $RUSTFLAGS_WASM}; a clean build takes ≈8 min on 2 idle cores)"
    local env_vars=(CARGO_TARGET_DIR="$target_dir")
    [ -n "${RUSTFLAGS_WASM:-}" ] && env_vars+=(CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$RUSTFLAGS_WASM")
    env "${env_vars[@]}" cargo build --lib --profile wasm --target wasm32-unknown-unknown \
        --no-default-features ${list:+--features "$list"}
    local names=(--remove-name-section --remove-producers-section)
    [ "$keep_names" = 1 ] && names=()
    # GLUE (optional): the module shares pkg/$GLUE.js, generated already. Its bindings are generated
    # under that name (the module's imports name the glue's file) next to its target, and must equal
    # the shared glue; only the wasm file moves into pkg/.
    local glue="${GLUE:-$name}" out=pkg
    [ "$glue" != "$name" ] && out="$target_dir/bindgen"
    if [ "$glue" = "$name" ]; then
        step "generating JS bindings into pkg/$name.js"
    else
        step "generating $name's JS bindings (to check against pkg/$glue.js; only its wasm goes to pkg/)"
    fi
    wasm-bindgen --target web --out-dir "$out" --out-name "$glue" "${names[@]}" \
      "$target_dir/wasm32-unknown-unknown/wasm/sightline.wasm"
    if [ "$glue" != "$name" ]; then
        # Comments aside: wasm-bindgen notes each closure's function index in a comment, and the
        # two builds may number their functions differently.
        local code='^ *// Cast intrinsic for '
        if ! diff <(grep -v "$code" "pkg/$glue.js") <(grep -v "$code" "$out/$glue.js") > "$out/glue.diff"; then
            echo "build.sh: $name's JS glue differs from pkg/$glue.js; the two builds must import and" \
                "export the same things:" >&2
            head -20 "$out/glue.diff" >&2
            exit 1
        fi
        mv "$out/${glue}_bg.wasm" "pkg/${name}_bg.wasm"
    fi
    local wasm="pkg/${name}_bg.wasm"
    if [ "$keep_names" = 0 ]; then
        # Size passes only (identical-function merging, code folding, dead code): -Oz/-Os make the
        # module smaller raw but larger once brotli'd (README "Runtime size"). ≈30 s on 2 cores;
        # the output is kept per input hash, so a rebuild that does not change the module skips it.
        local cache="$CARGO_TARGET_DIR/wasm-opt" key
        mkdir -p "$cache"
        key="$(sha256sum "$wasm" | cut -c1-64)"
        if [ ! -f "$cache/$key.wasm" ]; then
            step "wasm-opt size passes on $name (binaryen $(node_modules/.bin/wasm-opt --version | awk '{print $3}'))"
            node_modules/.bin/wasm-opt "$wasm" -o "$cache/$key.tmp" \
                --duplicate-function-elimination --code-folding --remove-unused-brs --remove-unused-names \
                --merge-blocks --vacuum --duplicate-function-elimination --remove-unused-module-elements
            mv "$cache/$key.tmp" "$cache/$key.wasm"
            # Keep the latest few (test and release builds of both modules).
            ls -t "$cache"/*.wasm | tail -n +9 | xargs -r rm -f
        fi
        cp "$cache/$key.wasm" "$wasm"
    fi
    ls -l "$wasm"
}

build_module sightline "$CARGO_TARGET_DIR" "${features[@]}"
# The same runtime with relaxed SIMD; one glue for both (the page picks the wasm file at load,
# www/lib/engine.js).
RUSTFLAGS_WASM="$RELAXED_RUSTFLAGS" GLUE=sightline build_module sightline_relaxed "$RELAXED_TARGET_DIR" "${features[@]}"
build_module sightline_train "$CARGO_TARGET_DIR/train" train "${features[@]}"
step "recording the SHA-256 of the package's files (pkg/integrity.js)"
node scripts/integrity.mjs
