// What the demo server, the browser tests and the benchmarks share: a static file server and
// headless Debian Chromium with real WebGPU (on its bundled SwiftShader when there is no GPU),
// with pages that record every console error.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = resolve(fileURLToPath(import.meta.url), "..", "..", "..");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".svg": "image/svg+xml",
  ".ts": "text/plain; charset=utf-8",
};

/**
 * Serves `root` on 127.0.0.1:`port` (0 = any free port). `mounts` maps URL prefixes such as
 * `/peer/` to other folders; `headers` are added to every response (e.g. a CSP). Resolves to
 * the http.Server.
 */
export function serve(root, port = 0, { mounts = {}, headers = {} } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      let pathname = decodeURIComponent(url.pathname);
      let base = resolve(root);
      for (const [prefix, dir] of Object.entries(mounts)) {
        if (pathname.startsWith(prefix)) {
          base = resolve(dir);
          pathname = pathname.slice(prefix.length - 1);
        }
      }
      let path = normalize(join(base, pathname));
      if (path !== base && !path.startsWith(base + sep)) {
        res.writeHead(403).end();
        return;
      }
      if ((await stat(path).catch(() => null))?.isDirectory()) path = join(path, "index.html");
      const body = await readFile(path);
      res.writeHead(200, {
        "content-type": TYPES[extname(path)] ?? "application/octet-stream",
        "cache-control": "no-cache",
        ...headers,
      });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => ok(server));
  });
}

/** Serves `root` (default: the repository) on a free port: `{ server, url }`. */
export async function startServer(root = ROOT, options = {}) {
  const server = await serve(root, 0, options);
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/**
 * Flags that give headless Chromium real WebGPU: on its bundled SwiftShader Vulkan driver by
 * default, on the machine's GPU (its Vulkan driver) with `SIGHTLINE_GPU=hardware`
 * (scripts/bench/gpu.sh).
 */
const ADAPTER =
  process.env.SIGHTLINE_GPU === "hardware"
    ? ["--use-vulkan=native", "--use-angle=vulkan", "--ignore-gpu-blocklist"]
    : ["--use-vulkan=swiftshader", "--use-angle=swiftshader"];
const FLAGS = [
  "--enable-unsafe-webgpu",
  ...ADAPTER,
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

/**
 * Starts headless Chromium (`$CHROMIUM`, default Debian's); `extraArgs` are added. With
 * `webgpu: false` the software adapter stays blocklisted, as in a browser without a usable GPU
 * (`requestAdapter()` resolves to null).
 */
export async function launch(extraArgs = [], { webgpu = true } = {}) {
  const { chromium } = await import("playwright-core");
  const flags = webgpu ? FLAGS : FLAGS.filter((f) => f !== "--enable-unsafe-webgpu");
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // Playwright adds its own --enable-features; Chromium keeps only the last one, so ours
    // goes through Playwright's list.
    args: [...flags, "--enable-features=Vulkan", ...extraArgs],
    timeout: 60_000,
  });
}

/**
 * Opens `url` in a new context, recording console errors (the page's and its workers') and page errors; call
 * `assertClean()` at the end. `initScript` runs before the page's own scripts.
 */
export async function openPage(browser, url, { initScript } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  // Console messages of the page's workers arrive here too (ConsoleMessage.worker() is set).
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${m.worker() ? "worker " : ""}console.error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  if (initScript) await page.addInitScript(initScript);
  if (url) await page.goto(url);
  return {
    page,
    context,
    problems,
    assertClean() {
      if (problems.length) throw new Error(`the page logged errors:\n${problems.join("\n")}`);
    },
    close: () => context.close(),
  };
}
