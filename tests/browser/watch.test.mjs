// watch(): live video on the fake webcam (a real photo as a 30 fps y4m clip), CPU backend.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, launch, openHarness, startServer } from "./helpers.mjs";
import { writeY4m } from "./y4m.mjs";

let server;
let base;
let browser;
const clip = join(mkdtempSync(join(tmpdir(), "sightline-watch-")), "coffee30.y4m");

before(async () => {
  ({ server, url: base } = await startServer());
  writeY4m(join(ROOT, "tests/fixtures/coffee/image_rgb_u8.npy"), clip, { frames: 30, fps: 30 });
  browser = await launch([`--use-file-for-fake-video-capture=${clip}`, "--enable-precise-memory-info", "--js-flags=--expose-gc"]);
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens the harness with a playing camera video in `window.video`. */
async function withCamera() {
  const h = await openHarness(browser, base);
  await h.page.evaluate(async () => {
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { frameRate: 30 } });
    document.body.append(video);
    await video.play();
    while (video.readyState < 2) await new Promise((r) => setTimeout(r, 20));
    window.video = video;
  });
  return h;
}

test("results arrive for the newest frame, dropped frames are counted, stop() stops within a frame", { timeout: 300_000 }, async () => {
  const h = await withCamera();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const c = await ImageClassifier.create({ backend: "cpu", maxResults: 1 });
    const seen = [];
    let afterStop = 0;
    let stopped = false;
    let live;
    await new Promise((resolve) => {
      live = c.watch(window.video, (result, info) => {
        if (stopped) afterStop += 1;
        seen.push({ label: result.classes[0].label, ...info });
        if (seen.length === 12) resolve();
      });
    });
    live.stop();
    stopped = true;
    live.stop(); // idempotent
    await new Promise((r) => setTimeout(r, 500));
    await c.close();
    return { seen, afterStop, isStopped: live.stopped };
  });
  assert.ok(out.seen.every((s) => s.label === "espresso"), out.seen.map((s) => s.label).join(","));
  for (const s of out.seen) {
    assert.ok(s.frameTime > 0 && s.inferenceMs > 0 && s.fps >= 0 && Number.isInteger(s.droppedFrames), JSON.stringify(s));
  }
  const last = out.seen.at(-1);
  assert.ok(last.droppedFrames > 0, `the model is slower than a 30 fps camera here, so frames are dropped (${last.droppedFrames})`);
  assert.ok(out.seen.every((s, i) => i === 0 || s.droppedFrames >= out.seen[i - 1].droppedFrames), "droppedFrames only grows");
  assert.ok(out.seen.every((s, i) => i === 0 || s.frameTime > out.seen[i - 1].frameTime), "always a newer frame");
  assert.equal(out.afterStop, 0, "no result after stop()");
  assert.ok(out.isStopped);
  h.assertClean();
  await h.close();
});

test("a hidden page pauses watch(), visible again resumes it; close() stops its watchers", { timeout: 300_000 }, async () => {
  const h = await withCamera();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const c = await ImageClassifier.create({ backend: "cpu", maxResults: 1 });
    let count = 0;
    const live = c.watch(window.video, () => (count += 1));
    const until = async (n) => {
      while (count < n) await new Promise((r) => setTimeout(r, 20));
    };
    await until(3);
    // The page as the browser reports a background tab: visibilityState "hidden" + the event.
    let state = "hidden";
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    document.dispatchEvent(new Event("visibilitychange"));
    await new Promise((r) => setTimeout(r, 300)); // let a result in flight land
    const hiddenStart = count;
    await new Promise((r) => setTimeout(r, 1500));
    const whileHidden = count - hiddenStart;
    state = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    await until(hiddenStart + 3);
    await c.close();
    const atClose = count;
    await new Promise((r) => setTimeout(r, 500));
    return { whileHidden, resumed: count >= hiddenStart + 3, afterClose: count - atClose, stopped: live.stopped };
  });
  assert.equal(out.whileHidden, 0, "no inference while hidden");
  assert.ok(out.resumed);
  assert.equal(out.afterClose, 0);
  assert.ok(out.stopped, "close() stopped the watcher");
  h.assertClean();
  await h.close();
});

test("stop and start in quick succession leave exactly one loop; memory is flat over 300 frames", { timeout: 600_000 }, async () => {
  const h = await withCamera();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier, memoryUsage } = window.sightline;
    const c = await ImageClassifier.create({ backend: "cpu", maxResults: 1 });
    const counts = [0, 0, 0];
    const watchers = [];
    for (let i = 0; i < 3; i++) {
      // Each one stopped right after it starts (its first frame may be in flight), except the last.
      watchers.push(c.watch(window.video, () => (counts[i] += 1)));
      if (i < 2) watchers[i].stop();
    }
    const heap = async () => {
      for (let i = 0; i < 3; i++) {
        globalThis.gc?.();
        await new Promise((r) => setTimeout(r, 50));
      }
      return performance.memory.usedJSHeapSize;
    };
    while (counts[2] < 20) await new Promise((r) => setTimeout(r, 20));
    const start = { heap: await heap(), wasm: memoryUsage().wasmBytes, frames: counts[2] };
    while (counts[2] < start.frames + 300) await new Promise((r) => setTimeout(r, 50));
    const end = { heap: await heap(), wasm: memoryUsage().wasmBytes };
    watchers[2].stop();
    await c.close();
    return { counts, heapGrowth: end.heap - start.heap, wasmGrowth: end.wasm - start.wasm };
  });
  assert.deepEqual(out.counts.slice(0, 2), [0, 0], "stopped watchers never report");
  assert.ok(out.counts[2] >= 320);
  console.log(`300 watched frames: JS heap ${(out.heapGrowth / 1e6).toFixed(3)} MB, wasm memory ${(out.wasmGrowth / 1e6).toFixed(3)} MB`);
  assert.ok(out.heapGrowth < 1e6, `JS heap grew by ${out.heapGrowth} bytes`);
  assert.ok(out.wasmGrowth < 1e6, `wasm memory grew by ${out.wasmGrowth} bytes`);
  h.assertClean();
  await h.close();
});
