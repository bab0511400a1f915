// Issue 10: the demo and a package user's page work under a strict Content-Security-Policy (no
// inline script, no eval, no blob: worker; only 'wasm-unsafe-eval' for the wasm module), and
// nothing leaves the origin: every request the page and its worker make goes to the page's own
// server. Both are checked on the same sessions: the demo with a file picked, an image dropped
// and the webcam, and a page that uses the package in worker mode, in the page and with watch().
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { launch, openPage, ROOT, referenceTop, startServer } from "./helpers.mjs";
import { writeY4m } from "./y4m.mjs";

/** The policy a careful deployment would send. */
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob: mediastream:",
  "style-src 'self'",
].join("; ");

let server;
let base;
const clip = join(mkdtempSync(join(tmpdir(), "sightline-")), "coffee.y4m");

before(async () => {
  ({ server, url: base } = await startServer(ROOT, { headers: { "content-security-policy": CSP } }));
  writeY4m(join(ROOT, "tests/fixtures/coffee/image_rgb_u8.npy"), clip);
});

after(() => server?.close());

/** Records CSP violations (page and worker contexts report them as console errors too). */
function watchViolations() {
  window.__violations = [];
  addEventListener("securitypolicyviolation", (e) => {
    window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI}`);
  });
}

/** Opens `path` recording every request of the page and its workers; `{ h, requests }`. */
async function openRecorded(browser, path) {
  const h = await openPage(browser, null, { initScript: watchViolations });
  const requests = [];
  h.context.on("request", (r) => requests.push(r.url()));
  await h.page.goto(`${base}${path}`);
  return { h, requests };
}

/** Fails on any request that leaves the page's origin (data: and blob: stay in the page). */
function assertNoEgress(requests, what) {
  const origin = new URL(base).origin;
  const away = requests.filter((u) => !u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== origin);
  assert.deepEqual(away, [], `${what}: requests that left the origin`);
  // The recording sees the worker's own requests too (the wasm module is fetched in the worker).
  assert.ok(requests.some((u) => u.endsWith("/sightline.worker.js")), `${what}: the worker script was requested`);
  assert.ok(requests.some((u) => /\/sightline(_relaxed)?_bg\.wasm$/.test(u)), `${what}: the wasm module was requested`);
}

test("the demo works under a strict CSP with no request leaving the origin: file picker, drag and drop, webcam, detect, backend switch", { timeout: 600_000 }, async () => {
  const browser = await launch([`--use-file-for-fake-video-capture=${clip}`]);
  try {
    const { h, requests } = await openRecorded(browser, "/www/demo/?backend=cpu");
    const { page } = h;
    const waitReady = () =>
      page.waitForFunction(() => document.getElementById("status").dataset.state !== "loading", null, { timeout: 300_000 });
    await waitReady();
    assert.equal(await page.$eval("#status", (e) => e.dataset.state), "ready", await page.textContent("#status"));

    // The file picker.
    const frames = () => page.$eval("#stats", (e) => Number(e.dataset.frames ?? 0));
    let before = await frames();
    await page.setInputFiles("#file", join(ROOT, "tests/fixtures/images/chelsea.png"));
    await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) > n, before, { timeout: 120_000 });
    assert.equal(await page.$eval("#result", (e) => e.dataset.top1), referenceTop("chelsea")[0].label);

    // Drag and drop.
    before = await frames();
    await page.evaluate(async () => {
      const blob = await (await fetch("/tests/fixtures/images/coffee.png")).blob();
      const data = new DataTransfer();
      data.items.add(new File([blob], "coffee.png", { type: "image/png" }));
      document.getElementById("stage").dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) > n, before, { timeout: 120_000 });
    assert.equal(await page.$eval("#result", (e) => e.dataset.top1), "espresso");

    // The webcam.
    before = await frames();
    await page.click("#camera-start");
    await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) >= n + 2, before, { timeout: 120_000 });
    assert.equal(await page.$eval("#result", (e) => e.dataset.top1), "espresso");
    await page.click("#camera-stop");

    // Detect mode on a picked picture, then a switch of backend.
    await page.selectOption("#mode", "detect");
    await waitReady();
    before = await frames();
    await page.setInputFiles("#file", join(ROOT, "tests/fixtures/images/dog.jpg"));
    await page.waitForFunction((n) => Number(document.getElementById("stats").dataset.frames) > n, before, { timeout: 120_000 });
    assert.ok((await page.$eval("#objects", (e) => e.dataset.labels)).split(",").includes("dog"));
    await page.selectOption("#backend", "webgpu");
    await waitReady();
    assert.equal(await page.$eval("#status", (e) => e.dataset.backend), "webgpu", await page.textContent("#status"));

    assert.deepEqual(await page.evaluate(() => window.__violations), []);
    assertNoEgress(requests, "demo");
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});

test("a package user's page under a strict CSP: worker and in-page modes, both tasks, watch(); no request leaves the origin", { timeout: 600_000 }, async () => {
  const browser = await launch();
  try {
    const { h, requests } = await openRecorded(browser, "/tests/browser/csp/");
    await h.page.waitForFunction(() => document.getElementById("out").dataset.done, null, { timeout: 300_000 });
    const text = await h.page.textContent("#out");
    assert.equal(await h.page.$eval("#out", (e) => e.dataset.done), "ok", text);
    const result = JSON.parse(text);
    for (const mode of ["worker", "page"]) {
      assert.equal(result[mode].top, "espresso", mode);
      assert.equal(result[mode].live, "espresso", `${mode}: watch()`);
      assert.ok(result[mode].labels.includes("dog"), `${mode}: ${result[mode].labels}`);
    }
    assert.deepEqual(await h.page.evaluate(() => window.__violations), []);
    assertNoEgress(requests, "package page");
    h.assertClean();
    await h.close();
  } finally {
    await browser.close();
  }
});
