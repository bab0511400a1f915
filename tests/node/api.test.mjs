// The package in Node.js: it runs in the browser, so in Node create() needs the wasm module and
// the weights as bytes, and then works on raw RGBA pixels on the CPU backend.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { parseNpy } from "../../scripts/lib/npy.mjs";
import { ROOT } from "../../scripts/lib/pages.mjs";

/** The coffee fixture as RGBA pixels. */
function coffee() {
  const { shape, data } = parseNpy(readFileSync(join(ROOT, "tests/fixtures/coffee/image_rgb_u8.npy")));
  const [height, width] = shape;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([data[3 * i], data[3 * i + 1], data[3 * i + 2], 255], 4 * i);
  return { data: rgba, width, height };
}

test("import: create() without bytes says what is wrong; with bytes it classifies", async () => {
  const { ImageClassifier, InvalidOptionsError } = await import("sightline");
  await assert.rejects(ImageClassifier.create(), (e) => {
    assert.ok(e instanceof InvalidOptionsError);
    assert.match(e.message, /runs in the browser; in Node\.js pass \{ wasm, model \} as bytes/);
    return true;
  });
  const c = await ImageClassifier.create({
    wasm: readFileSync(join(ROOT, "pkg/sightline_bg.wasm")),
    model: readFileSync(join(ROOT, "models/efficientnet-lite0.f16.safetensors")),
  });
  assert.equal(c.backend, "cpu");
  assert.match(c.fallbackReason, /navigator\.gpu is missing/);
  const result = await c.classify(coffee());
  assert.equal(result.classes[0].label, "espresso");
  await c.close();
});

test("require() gets the same API (the exports map has a default condition)", () => {
  const sightline = createRequire(import.meta.url)("sightline");
  for (const name of ["ImageClassifier", "ObjectDetector", "drawDetections", "SightlineError"]) {
    assert.equal(typeof sightline[name], "function", name);
  }
});

test("issue 13: the relaxed-SIMD probe agrees with the engine, and only the relaxed module needs relaxed SIMD", () => {
  // Node's V8 has relaxed SIMD behind a flag (Node 20) or on by default (22+): run both ways.
  const script = `
    import { readFileSync } from "node:fs";
    const { hasRelaxedSimd } = await import(${JSON.stringify(join(ROOT, "www/lib/engine.js"))});
    const valid = (f) => WebAssembly.validate(readFileSync(${JSON.stringify(join(ROOT, "pkg"))} + "/" + f));
    console.log(JSON.stringify({ probe: hasRelaxedSimd(), relaxed: valid("sightline_relaxed_bg.wasm"), simd: valid("sightline_bg.wasm") }));
  `;
  const run = (...flags) => JSON.parse(execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], { encoding: "utf8" }));
  // The probe says what validating the relaxed module says, whatever this Node's default.
  const plain = run();
  assert.equal(plain.probe, plain.relaxed);
  assert.equal(plain.simd, true);
  // Where V8 still has the flag (Node 20–22), both ways: the relaxed module needs relaxed SIMD and
  // the fallback does not. Newer V8 dropped the flag (relaxed SIMD always on).
  const hasFlag = (flag) => {
    try {
      execFileSync(process.execPath, [flag, "-e", "0"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  if (hasFlag("--no-experimental-wasm-relaxed-simd")) {
    assert.deepEqual(run("--experimental-wasm-relaxed-simd"), { probe: true, relaxed: true, simd: true });
    assert.deepEqual(run("--no-experimental-wasm-relaxed-simd"), { probe: false, relaxed: false, simd: true });
  } else {
    assert.deepEqual(plain, { probe: true, relaxed: true, simd: true });
  }
});
