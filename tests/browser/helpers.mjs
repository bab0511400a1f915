// Shared set-up for the browser tests: a static server over the repository, headless Debian
// Chromium with real WebGPU (SwiftShader), and a guard that fails a test on any console error.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../scripts/serve.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Flags that give headless Chromium real WebGPU on its bundled SwiftShader Vulkan driver. */
const FLAGS = [
  "--enable-unsafe-webgpu",
  "--use-vulkan=swiftshader",
  "--use-angle=swiftshader",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

/** Starts Chromium; `extraArgs` are added (e.g. a fake webcam file). */
export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // Playwright adds its own --enable-features; Chromium keeps only the last one, so ours
    // goes through Playwright's list.
    args: [...FLAGS, "--enable-features=Vulkan", ...extraArgs],
    timeout: 60_000,
  });
}

/** Serves `root` (default: the repository) on a free localhost port. */
export async function startServer(root = ROOT, mounts = {}) {
  const server = await serve(root, 0, mounts);
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** Opens a page that records console errors and page errors; call `assertClean()` at the end. */
export async function openPage(browser, url, { initScript } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console.error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  if (initScript) await page.addInitScript(initScript);
  await page.goto(url);
  return {
    page,
    problems,
    assertClean() {
      if (problems.length) throw new Error(`the page logged errors:\n${problems.join("\n")}`);
    },
    close: () => context.close(),
  };
}

/** The reference top-5 for `name` (`tests/fixtures/<name>/cls_crop224.json`). */
export function referenceTop(name, mode = "crop224") {
  return JSON.parse(readFileSync(join(ROOT, "tests/fixtures", name, `cls_${mode}.json`), "utf8")).top;
}

/** Opens the test harness page (the package exposed as `window.sightline`). */
export async function openHarness(browser, base, options) {
  const h = await openPage(browser, `${base}/tests/browser/harness.html`, options);
  await h.page.waitForFunction(() => window.harnessReady === true);
  return h;
}
