// What the browser tests share beyond `scripts/lib/pages.mjs`: the fixture list, reference
// results and the harness page (the package exposed as `window.sightline`).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseNpy } from "../../scripts/lib/npy.mjs";
import { ROOT, openPage } from "../../scripts/lib/pages.mjs";

export { ROOT, launch, openPage, startServer } from "../../scripts/lib/pages.mjs";

/** The reference images: fixture folder and file (JPEG decoders differ by ±1 level from the reference's). */
export const FIXTURES = [
  ["chelsea", "chelsea.png"],
  ["coffee", "coffee.png"],
  ["dog", "dog.jpg"],
  ["person", "person.jpg"],
];

/** The reference top-5 for `name` (`tests/fixtures/<name>/cls_crop224.json`). */
export function referenceTop(name, mode = "crop224") {
  return JSON.parse(readFileSync(join(ROOT, "tests/fixtures", name, `cls_${mode}.json`), "utf8")).top;
}

/**
 * The reference's own decoded RGB pixels of fixture `name` as `{ data: number[] (RGBA), width,
 * height }` (the browser may colour-manage a PNG it decodes itself; these go in as raw pixels).
 */
export function referencePixels(name) {
  const { shape, data: rgb } = parseNpy(readFileSync(join(ROOT, "tests/fixtures", name, "image_rgb_u8.npy")));
  const rgba = new Array(shape[0] * shape[1] * 4).fill(255);
  for (let i = 0; i < shape[0] * shape[1]; i++) for (let c = 0; c < 3; c++) rgba[4 * i + c] = rgb[3 * i + c];
  return { data: rgba, width: shape[1], height: shape[0] };
}

/** Opens the test harness page (the package exposed as `window.sightline`). */
export async function openHarness(browser, base, options) {
  const h = await openPage(browser, `${base}/tests/browser/harness.html`, options);
  await h.page.waitForFunction(() => window.harnessReady === true);
  return h;
}

/**
 * Asserts two result lists (classes or detections) hold the same entries — same length, the
 * same classes, scores within `tol` (entries paired by class, then by score, so that two
 * near-equal scores may swap places) — and returns the largest score difference. Fails when the
 * lists do not line up or are empty, so it cannot pass vacuously.
 */
export function assertSameResults(a, b, tol, what) {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} vs ${b.length} entries`);
  if (a.length === 0) throw new Error(`${what}: nothing to compare`);
  const order = (list) => [...list].sort((x, y) => x.index - y.index || y.score - x.score);
  const [sa, sb] = [order(a), order(b)];
  let worst = 0;
  sa.forEach((x, i) => {
    if (x.index !== sb[i].index) throw new Error(`${what}: class ${x.index} is not in both lists`);
    worst = Math.max(worst, Math.abs(x.score - sb[i].score));
  });
  if (!(worst <= tol)) throw new Error(`${what}: scores differ by ${worst} (bound ${tol})`);
  return worst;
}
