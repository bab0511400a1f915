// The demo page end to end: a fake webcam showing a real photo, and the overlay it draws.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { launch, openPage, ROOT, startServer } from "./helpers.mjs";
import { writeY4m } from "./y4m.mjs";

let server;
let base;
const clips = mkdtempSync(join(tmpdir(), "sightline-"));
const clip = join(clips, "coffee.y4m");
const dogClip = join(clips, "dog.y4m");

before(async () => {
  ({ server, url: base } = await startServer());
  writeY4m(join(ROOT, "tests/fixtures/coffee/image_rgb_u8.npy"), clip);
  writeY4m(join(ROOT, "tests/fixtures/dog/image_rgb_u8.npy"), dogClip);
});

after(() => server?.close());

test("a fake webcam showing coffee.png makes the demo show espresso for consecutive frames", { timeout: 600_000 }, async () => {
  const browser = await launch([`--use-file-for-fake-video-capture=${clip}`]);
  try {
    const h = await openPage(browser, `${base}/www/demo/`);
    const { page } = h;
    await page.waitForFunction(() => document.getElementById("status").dataset.state !== "loading", null, { timeout: 300_000 });
    assert.equal(await page.$eval("#status", (e) => e.dataset.state), "ready", await page.textContent("#status"));
    // "auto" on this machine's software adapter: the CPU, with the reason shown.
    assert.equal(await page.$eval("#status", (e) => e.dataset.backend), "cpu");
    assert.match(await page.textContent("#status"), /Ready: classify on cpu — WebGPU adapter is a software rasteriser/);
    await page.click("#camera-start");
    const seen = [];
    for (let frame = 1; frame <= 3; frame++) {
      await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) >= n, frame, { timeout: 120_000 });
      seen.push(await page.$eval("#result", (e) => e.dataset.top1));
    }
    assert.deepEqual(seen, ["espresso", "espresso", "espresso"]);
    assert.match(await page.textContent("#stats"), /cpu · [\d.]+ ms per frame · [\d.]+ FPS · \d+ dropped/);
    // The overlay really has the bars drawn on it (non-transparent pixels in the bottom-left bar area).
    const painted = await page.$eval("#overlay", (c) => {
      const d = c.getContext("2d").getImageData(0, c.height - 60, Math.min(c.width, 200), 60).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    assert.ok(painted > 500, `overlay has ${painted} painted pixels`);
    await page.click("#camera-stop");
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});

test("a denied camera shows a clear message, not a console error", { timeout: 300_000 }, async () => {
  const browser = await launch();
  try {
    const h = await openPage(browser, `${base}/www/demo/?backend=cpu`, {
      initScript: () => {
        navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
      },
    });
    const { page } = h;
    await page.waitForFunction(() => document.getElementById("status").dataset.state === "ready", null, { timeout: 120_000 });
    await page.click("#camera-start");
    await page.waitForFunction(() => !document.getElementById("message").hidden);
    assert.match(await page.textContent("#message"), /denied/);
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});

test("without a usable WebGPU adapter the demo says it runs on the CPU, and why", { timeout: 300_000 }, async () => {
  const browser = await launch([], { webgpu: false });
  try {
    const h = await openPage(browser, `${base}/www/demo/`);
    const { page } = h;
    await page.waitForFunction(() => document.getElementById("status").dataset.state === "ready", null, { timeout: 120_000 });
    assert.match(await page.textContent("#status"), /Ready: classify on cpu — WebGPU found no suitable GPU adapter/);
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});

test("switching backend while a model loads closes the superseded instance", { timeout: 300_000 }, async () => {
  const browser = await launch();
  try {
    const h = await openPage(browser, `${base}/www/demo/?backend=cpu`);
    const { page } = h;
    // Switch twice before the first load can finish: only the last choice may stay open.
    await page.selectOption("#backend", "webgpu");
    await page.selectOption("#backend", "cpu");
    await page.waitForFunction(() => document.getElementById("status").dataset.state === "ready", null, { timeout: 240_000 });
    await page.waitForFunction(() => document.body.dataset.openTasks === "1", null, { timeout: 60_000 });
    assert.equal(await page.$eval("#status", (e) => e.dataset.backend), "cpu");
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});

test("in detect mode, a fake webcam showing dog.jpg gets boxes labelled dog and bicycle", { timeout: 600_000 }, async () => {
  const browser = await launch([`--use-file-for-fake-video-capture=${dogClip}`]);
  try {
    // Forced WebGPU, so the demo's WebGPU path (software adapter here) is exercised end to end.
    const h = await openPage(browser, `${base}/www/demo/?mode=detect&backend=webgpu`);
    const { page } = h;
    await page.waitForFunction(() => document.getElementById("status").dataset.state !== "loading", null, { timeout: 300_000 });
    assert.equal(await page.$eval("#status", (e) => e.dataset.backend), "webgpu", await page.textContent("#status"));
    // Lower the display threshold a little: the webcam path adds YUV 4:2:0 colour loss.
    await page.$eval("#score", (e) => {
      e.value = "0.3";
      e.dispatchEvent(new Event("input"));
    });
    await page.click("#camera-start");
    const seen = [];
    for (let frame = 1; frame <= 2; frame++) {
      await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) >= n, frame, { timeout: 180_000 });
      seen.push((await page.$eval("#objects", (e) => e.dataset.labels)).split(","));
    }
    for (const labels of seen) {
      assert.ok(labels.includes("dog") && labels.includes("bicycle"), `labels: ${labels}`);
    }
    // Boxes are drawn: the overlay has coloured pixels well inside the picture.
    const painted = await page.$eval("#overlay", (c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    assert.ok(painted > 2000, `overlay has ${painted} painted pixels`);
    await page.click("#camera-stop");
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});

test("Teach mode: examples from two pictures, Train, then the demo classifies with the new classes; Explain draws a heat map", { timeout: 600_000 }, async () => {
  const browser = await launch();
  try {
    const h = await openPage(browser, `${base}/www/demo/?backend=cpu`);
    const { page } = h;
    await page.waitForFunction(() => document.getElementById("status").dataset.state === "ready", null, { timeout: 300_000 });
    const frames = () => page.$eval("#stats", (e) => Number(e.dataset.frames));
    const pick = async (file) => {
      const before = await frames();
      await page.setInputFiles("#file", join(ROOT, "tests/fixtures/images", file));
      await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) > n, before, { timeout: 120_000 });
    };
    await page.click("#teach summary");
    const press = async (row) => {
      const button = page.locator("#teach-classes li").nth(row).locator("button");
      const count = page.locator("#teach-classes li").nth(row).locator(".count");
      const before = await count.textContent();
      await button.dispatchEvent("pointerdown");
      await button.dispatchEvent("pointerup");
      await page.waitForFunction(([r, b]) => document.querySelectorAll("#teach-classes .count")[r].textContent !== b, [row, before]);
    };
    await page.fill("#teach-classes li:nth-child(1) input", "mug");
    await page.dispatchEvent("#teach-classes li:nth-child(1) input", "change");
    await page.fill("#teach-classes li:nth-child(2) input", "cat");
    await page.dispatchEvent("#teach-classes li:nth-child(2) input", "change");
    await pick("coffee.png");
    await press(0);
    await pick("chelsea.png");
    await press(1);
    assert.deepEqual(await page.$$eval("#teach-classes .count", (e) => e.map((x) => x.textContent)), ["6 examples", "6 examples"]);
    await page.click("#teach-train");
    await page.waitForFunction(() => /Trained on|Error/.test(document.getElementById("teach-status").textContent), null, { timeout: 120_000 });
    assert.match(await page.textContent("#teach-status"), /Trained on mug \(6\), cat \(6\) in \d+ ms: loss [\d.]+, training accuracy 100 %/);
    // The picture on screen (chelsea) is now classified with the new classes.
    await page.waitForFunction(() => document.getElementById("result").dataset.top1 === "cat", null, { timeout: 120_000 });
    await pick("coffee.png");
    assert.equal(await page.$eval("#result", (e) => e.dataset.top1), "mug");
    assert.equal(await page.$eval("#teach-use", (e) => e.checked && !e.disabled), true);
    // Explain: the heat map covers the crop region of the overlay (viridis colours, not transparent).
    await page.check("#explain");
    await page.waitForFunction(() => {
      const c = document.getElementById("overlay");
      const d = c.getContext("2d").getImageData(Math.floor(c.width / 2), Math.floor(c.height / 3), 1, 1).data;
      return d[3] > 0;
    }, null, { timeout: 120_000 });
    // Back to ImageNet.
    await page.uncheck("#teach-use");
    await page.waitForFunction(() => document.getElementById("result").dataset.top1 === "espresso", null, { timeout: 120_000 });
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});
