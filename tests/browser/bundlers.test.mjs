// The packed npm package, installed into small apps, loads unchanged with the tools users build
// with: Vite 8 and Vite 7 (dev server and production build), webpack 5 (entry and output only:
// production and development builds) and a plain page with an import map. Each page classifies
// coffee.png with `ImageClassifier.create({ backend: "cpu" })` (and with `worker: false` too when
// the package has a worker) and must get "espresso" with no console error, contacting only its own
// origin. Built pages are served with a strict CSP (no blob: workers, no eval).
//
// The app templates are in tests/bundlers/; the bundlers are this repository's devDependencies
// (`vite`, `vite7`, `webpack`, `webpack-cli`), run from its node_modules.
//
// SIGHTLINE_TARBALL=/path/to/x.tgz tests that tarball instead of packing the repository;
// SIGHTLINE_KEEP_APPS=1 keeps the apps (their folder is printed).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { launch, openPage, ROOT, startServer } from "./helpers.mjs";

const TEMPLATES = join(ROOT, "tests/bundlers");
const BIN = {
  vite8: join(ROOT, "node_modules/vite/bin/vite.js"),
  vite7: join(ROOT, "node_modules/vite7/bin/vite.js"),
  webpack: join(ROOT, "node_modules/webpack-cli/bin/cli.js"),
};
/** What a strict site sends; the import-map page adds the hash of its inline map. */
const csp = (extraScript = "") =>
  `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'${extraScript}; img-src 'self' data:; ` +
  "base-uri 'none'; object-src 'none'";
const PAGE_TIMEOUT = 180_000;

let work;
let browser;
const apps = {};
/** Child processes (dev servers) still running: always stopped, even when a test fails. */
const children = new Set();

function killChildren() {
  for (const child of children) child.kill("SIGKILL");
}
process.on("exit", killChildren);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killChildren();
    process.exit(130);
  });
}

/** Runs a command; on failure the error carries its output. */
function run(file, args, cwd) {
  try {
    return execFileSync(file, args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 300_000,
    });
  } catch (e) {
    throw new Error(`${[file, ...args].join(" ")} failed in ${cwd}:\n${e.stdout ?? ""}\n${e.stderr ?? e.message}`);
  }
}

/** The tarball to test: packed from the repository, or given. */
function tarball() {
  const given = process.env.SIGHTLINE_TARBALL;
  if (given) {
    assert.ok(existsSync(given), `SIGHTLINE_TARBALL=${given} does not exist`);
    return resolve(given);
  }
  for (const file of ["pkg/sightline.js", "pkg/sightline_bg.wasm", "pkg/sightline_relaxed_bg.wasm", "models/efficientnet-lite0.f16.safetensors"]) {
    assert.ok(existsSync(join(ROOT, file)), `${file} is missing: run scripts/build.sh first`);
  }
  // --ignore-scripts: the wasm is already built (prepack would rebuild it).
  const [{ filename }] = JSON.parse(run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], ROOT));
  return join(work, filename);
}

/** A new app from `tests/bundlers/<template>` with the tarball installed (offline: no other dependency). */
function makeApp(name, template, tgz) {
  const dir = join(work, name);
  cpSync(join(TEMPLATES, template), dir, { recursive: true });
  copyFileSync(join(ROOT, "tests/fixtures/images/coffee.png"), join(dir, "coffee.png"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `${name}-app`, private: true, type: "module" }));
  run("npm", ["install", "--no-audit", "--no-fund", "--offline", tgz], dir);
  return dir;
}

/** A port that was free a moment ago (Vite 7 reads `--port 0` as its default port). */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer().once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Starts `vite` (dev server) in `dir`: `{ url, log(), stop() }`. */
async function startVite(bin, dir) {
  const port = await freePort();
  const child = spawn(process.execPath, [bin, "--host", "127.0.0.1", "--port", String(port), "--strictPort"], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const exited = new Promise((ok) => child.once("exit", ok));
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    children.delete(child);
  };
  try {
    const url = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("not ready after 60 s")), 60_000);
      child.stdout.on("data", () => {
        const m = log.match(/Local:\s+(http:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          ok(m[1]);
        }
      });
      exited.then((code) => {
        clearTimeout(timer);
        fail(new Error(`exited with ${code}`));
      });
    });
    return { url, log: () => log, stop };
  } catch (e) {
    await stop();
    throw new Error(`the Vite dev server in ${dir} did not start: ${e.message}\n${log}`);
  }
}

/** Both ways the package runs its model: in its module worker (the default) and in the page. */
const MODES = ["worker", "in-page"];

/**
 * Opens `url` (`?worker=0` for the in-page mode), waits for `window.result` and checks it: the
 * top class, no console error, only the page's own origin contacted, and the CSP if one is given.
 * `log` (the dev server's output) is added to a failure.
 */
async function checkPage(url, mode, { policy, log = () => "" }) {
  const h = await openPage(browser, "about:blank");
  const requests = [];
  h.page.context().on("request", (r) => requests.push(r.url()));
  try {
    const target = mode === "in-page" ? `${url}?worker=0` : url;
    const response = await h.page.goto(target);
    assert.equal(response.status(), 200, `${target}: HTTP ${response.status()}`);
    if (policy) assert.equal(response.headers()["content-security-policy"], policy, "the page is served with the strict CSP");
    try {
      await h.page.waitForFunction(() => window.result, null, { timeout: PAGE_TIMEOUT });
    } catch (e) {
      throw new Error(`no result from ${target}: ${e.message}\n${h.problems.join("\n")}\n${log()}`);
    }
    const result = await h.page.evaluate(() => window.result);
    assert.ok(!result.error, `${target} failed: ${result.error}\n${h.problems.join("\n")}\n${log()}`);
    assert.equal(result.classes?.[0]?.label, "espresso", JSON.stringify(result));
    assert.equal(h.page.workers().length, mode === "in-page" ? 0 : 1, `${mode}: where the model runs`);
    const origin = new URL(target).origin;
    const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith("data:"));
    assert.deepEqual(foreign, [], "only the app's own origin is contacted");
    for (const ext of [".wasm", ".safetensors"]) {
      assert.ok(requests.some((u) => new URL(u).pathname.endsWith(ext)), `no ${ext} file was fetched:\n${requests.join("\n")}`);
    }
    h.assertClean();
  } finally {
    await h.close();
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "sightline-bundlers-"));
  const tgz = tarball();
  apps.vite8 = makeApp("vite8", "vite", tgz);
  apps.vite7 = makeApp("vite7", "vite", tgz);
  apps.webpack = makeApp("webpack", "webpack", tgz);
  apps.importmap = makeApp("importmap", "importmap", tgz);
  browser = await launch();
});

after(async () => {
  killChildren();
  await browser?.close();
  if (process.env.SIGHTLINE_KEEP_APPS) console.log(`apps kept in ${work}`);
  else if (work) rmSync(work, { recursive: true, force: true });
});

for (const vite of ["vite8", "vite7"]) {
  const name = vite === "vite8" ? "Vite 8" : "Vite 7";

  test(`${name} dev server, no configuration`, { timeout: 600_000 }, async (t) => {
    const dir = apps[vite];
    const server = await startVite(BIN[vite], dir);
    try {
      for (const mode of MODES) {
        await t.test(mode, () => checkPage(server.url, mode, { dir, log: server.log }));
      }
    } finally {
      await server.stop();
    }
  });

  test(`${name} build, no configuration, strict CSP`, { timeout: 600_000 }, async (t) => {
    const dir = apps[vite];
    run(process.execPath, [BIN[vite], "build"], dir);
    const policy = csp();
    const { server, url } = await startServer(join(dir, "dist"), { headers: { "content-security-policy": policy } });
    try {
      for (const mode of MODES) {
        await t.test(mode, () => checkPage(`${url}/`, mode, { dir, policy }));
      }
    } finally {
      server.close();
    }
  });
}

test("webpack 5 production build, entry and output only, strict CSP", { timeout: 600_000 }, async (t) => {
  const dir = apps.webpack;
  run(process.execPath, [BIN.webpack, "--mode", "production"], dir);
  const policy = csp();
  const { server, url } = await startServer(dir, { headers: { "content-security-policy": policy } });
  try {
    for (const mode of MODES) {
      await t.test(mode, () => checkPage(`${url}/`, mode, { dir, policy }));
    }
  } finally {
    server.close();
  }
});

test("webpack 5 development build, entry and output only", { timeout: 600_000 }, async (t) => {
  const dir = apps.webpack;
  // Its default devtool evaluates strings, so no strict CSP here.
  run(process.execPath, [BIN.webpack, "--mode", "development"], dir);
  const { server, url } = await startServer(dir);
  try {
    for (const mode of MODES) {
      await t.test(mode, () => checkPage(`${url}/`, mode, { dir }));
    }
  } finally {
    server.close();
  }
});

test("a plain page with an import map, no bundler, strict CSP", { timeout: 600_000 }, async (t) => {
  const dir = apps.importmap;
  const map = readFileSync(join(dir, "index.html"), "utf8").match(/<script type="importmap">([\s\S]*?)<\/script>/)[1];
  const policy = csp(` 'sha256-${createHash("sha256").update(map).digest("base64")}'`);
  const { server, url } = await startServer(dir, { headers: { "content-security-policy": policy } });
  try {
    for (const mode of MODES) {
      await t.test(mode, () => checkPage(`${url}/`, mode, { dir, policy }));
    }
  } finally {
    server.close();
  }
});
