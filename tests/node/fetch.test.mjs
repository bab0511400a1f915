// www/lib/fetch.js against a local HTTP server: progress, the stall timeout, the size cap,
// cancellation, SHA-256 verification and the Cache API (a minimal in-memory fake: Node has none).
// Every failure must be a ModelLoadError whose message names the cause.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { download, MAX_DOWNLOAD_BYTES, STALL_TIMEOUT_MS } from "../../www/lib/fetch.js";

/** The bytes /ok serves: 4 KiB of a fixed pattern. */
const DATA = Uint8Array.from({ length: 4096 }, (_, i) => (i * 31 + 7) & 255);
/** /ok sends DATA in this many chunks, with a pause between them. */
const OK_CHUNKS = 4;
/** The size cap the size tests pass as `maxBytes`. */
const SMALL_MAX = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Asserts `e` is a ModelLoadError whose message matches `pattern`; for assert.rejects. */
function modelLoadError(pattern) {
  return (e) => {
    assert.equal(e?.name, "ModelLoadError", `expected a ModelLoadError, got ${e?.name}: ${e?.message}`);
    assert.match(e.message, pattern);
    return true;
  };
}

let server;
let base;
/** Requests the server received, by path. */
const hits = new Map();
/** Open server-side sockets, destroyed in after() so the process exits at once. */
const sockets = new Set();
/** Server responses by path whose connection has closed (the client cancelled, or it ended). */
const closed = new Map();
/** Open timers of the chunked routes, cleared in after(). */
const timers = new Set();

const count = (path) => hits.get(path) ?? 0;
const total = () => [...hits.values()].reduce((a, b) => a + b, 0);

/** Calls `fn` after `ms` unless the server is closing. */
function later(ms, fn) {
  const timer = setTimeout(() => {
    timers.delete(timer);
    fn();
  }, ms);
  timers.add(timer);
}

/** Writes `chunks` to `res` with `pauseMs` between them, then `end()` unless `end` is false. */
function sendChunks(res, chunks, pauseMs, end = true) {
  const next = (i) => {
    if (res.destroyed) return;
    if (i === chunks.length) {
      if (end) res.end();
      return;
    }
    res.write(chunks[i]);
    later(pauseMs, () => next(i + 1));
  };
  next(0);
}

function split(bytes, parts) {
  const size = Math.ceil(bytes.byteLength / parts);
  return Array.from({ length: parts }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
}

const routes = {
  // DATA with its content-length, in a few chunks.
  "/ok": (res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": DATA.byteLength });
    sendChunks(res, split(DATA, OK_CHUNKS), 20);
  },
  // DATA chunked, without a content-length.
  "/chunked": (res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    sendChunks(res, split(DATA, OK_CHUNKS), 20);
  },
  // Headers and 100 bytes, then nothing, ever.
  "/stall": (res) => {
    res.writeHead(200, { "content-length": DATA.byteLength });
    res.write(DATA.subarray(0, 100));
  },
  // No response headers, ever.
  "/no-headers": () => {},
  // Declares more than SMALL_MAX, sends a little, then holds the connection open.
  "/big-declared": (res) => {
    res.writeHead(200, { "content-length": 5000 });
    res.write(new Uint8Array(10));
  },
  // Chunked, no content-length: 3000 bytes in 600-byte chunks.
  "/big-streamed": (res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    sendChunks(res, Array.from({ length: 5 }, () => new Uint8Array(600).fill(1)), 10);
  },
  // Declares all of DATA, sends 1000 bytes, then drops the connection.
  "/cut": (res) => {
    res.writeHead(200, { "content-length": DATA.byteLength });
    res.write(DATA.subarray(0, 1000));
    later(30, () => res.socket?.destroy());
  },
  "/404": (res) => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  },
};

before(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url, "http://localhost").pathname;
    hits.set(path, count(path) + 1);
    res.on("close", () => closed.set(path, (closed.get(path) ?? 0) + 1));
    const route = routes[path];
    if (route) route(res);
    else {
      res.writeHead(500);
      res.end(`no route ${path}`);
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  for (const timer of timers) clearTimeout(timer);
  for (const socket of sockets) socket.destroy();
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
});

test("the exported limits", () => {
  assert.equal(STALL_TIMEOUT_MS, 30_000);
  assert.equal(MAX_DOWNLOAD_BYTES, 256 * 2 ** 20);
});

test("download: the bytes, with monotonic progress that ends at the byte count", async () => {
  const calls = [];
  const result = await download(`${base}/ok`, { what: "the weights", onBytes: (...a) => calls.push(a) });
  assert.deepEqual(result.bytes, DATA);
  assert.ok(result.bytes instanceof Uint8Array);
  assert.equal(result.fromCache, false);
  assert.ok(calls.length >= 3, `expected several progress steps, got ${JSON.stringify(calls)}`);
  let previous = -1;
  for (const [loaded, sum, fromCache] of calls) {
    assert.ok(loaded >= previous, `progress went backwards: ${JSON.stringify(calls)}`);
    assert.ok(sum >= loaded, `total < loaded: ${JSON.stringify(calls)}`);
    assert.equal(sum, DATA.byteLength, "total is the content-length");
    assert.equal(fromCache, false);
    previous = loaded;
  }
  assert.equal(calls.at(-1)[0], DATA.byteLength);
});

test("download without a content-length: total is never below loaded", async () => {
  const calls = [];
  const { bytes } = await download(`${base}/chunked`, { what: "the weights", onBytes: (...a) => calls.push(a) });
  assert.deepEqual(bytes, DATA);
  let previous = -1;
  for (const [loaded, sum] of calls) {
    assert.ok(loaded >= previous && sum >= loaded, JSON.stringify(calls));
    previous = loaded;
  }
  assert.equal(calls.at(-1)[0], DATA.byteLength);
});

test("sha256: the right hash resolves with the bytes; a wrong one rejects and names SHA-256", async () => {
  const right = await hex(DATA);
  const ok = await download(`${base}/ok`, { what: "the weights", sha256: right });
  assert.deepEqual(ok.bytes, DATA);
  assert.equal(ok.fromCache, false);
  const wrong = "0".repeat(64);
  await assert.rejects(
    download(`${base}/ok`, { what: "the weights", sha256: wrong }),
    modelLoadError(new RegExp(`the weights from .*/ok does not match the SHA-256 .*got ${right}, expected ${wrong}`)),
  );
});

test("a stalled download rejects after stallMs of silence", async () => {
  const calls = [];
  const start = performance.now();
  await assert.rejects(
    download(`${base}/stall`, { what: "the weights", stallMs: 300, onBytes: (...a) => calls.push(a) }),
    modelLoadError(/the weights stalled: no data for 0\.3 s/),
  );
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 250, `rejected too early (${elapsed} ms)`);
  assert.ok(elapsed < 5000, `took ${elapsed} ms`);
  assert.equal(calls.at(-1)[0], 100, "the 100 bytes before the stall were reported");
});

test("a declared content-length above maxBytes rejects before reading the body", async () => {
  const calls = [];
  await assert.rejects(
    download(`${base}/big-declared`, { what: "the weights", maxBytes: SMALL_MAX, onBytes: (...a) => calls.push(a) }),
    modelLoadError(/the weights is 5000 bytes; the largest accepted is 1000/),
  );
  assert.deepEqual(calls, [], "no progress: the body was not read");
});

test("a streamed body growing past maxBytes rejects once it does", async () => {
  const calls = [];
  await assert.rejects(
    download(`${base}/big-streamed`, { what: "the weights", maxBytes: SMALL_MAX, onBytes: (...a) => calls.push(a) }),
    modelLoadError(/the weights is larger than the largest accepted size \(1000 bytes\)/),
  );
  for (const [loaded] of calls) assert.ok(loaded <= SMALL_MAX, JSON.stringify(calls));
});

test("a body cut short rejects: could not read", async () => {
  await assert.rejects(
    download(`${base}/cut`, { what: "the weights", stallMs: 3000 }),
    modelLoadError(/could not read the weights from .*\/cut/),
  );
});

test("HTTP 404 rejects and names the status", async () => {
  await assert.rejects(
    download(`${base}/404`, { what: "the weights" }),
    modelLoadError(/could not fetch the weights from .*\/404: HTTP 404/),
  );
});

test("a server that refuses the connection rejects: could not fetch", async () => {
  const closedServer = createServer();
  await new Promise((resolve) => closedServer.listen(0, "127.0.0.1", resolve));
  const { port } = closedServer.address();
  await new Promise((resolve) => closedServer.close(resolve));
  await assert.rejects(
    download(`http://127.0.0.1:${port}/ok`, { what: "the weights" }),
    modelLoadError(/could not fetch the weights from http:\/\/127\.0\.0\.1:\d+\/ok/),
  );
});

test("abort while the body streams rejects promptly", async () => {
  const controller = new AbortController();
  const calls = [];
  const start = performance.now();
  const pending = download(`${base}/stall`, {
    what: "the weights",
    signal: controller.signal,
    stallMs: 10_000,
    onBytes: (...a) => {
      calls.push(a);
      if (a[0] > 0) setTimeout(() => controller.abort(), 50);
    },
  });
  await assert.rejects(pending, modelLoadError(/aborted/));
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  assert.equal(calls.at(-1)[0], 100, "the abort came while streaming");
});

test("abort while waiting for the response headers rejects promptly", async () => {
  const controller = new AbortController();
  const before = count("/no-headers");
  const start = performance.now();
  const pending = download(`${base}/no-headers`, { what: "the weights", signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(pending, modelLoadError(/aborted/));
  assert.ok(performance.now() - start < 2000);
  assert.equal(count("/no-headers"), before + 1, "the request had reached the server");
});

test("a server that never sends the response headers is a stall too", async () => {
  const start = performance.now();
  await assert.rejects(
    download(`${base}/no-headers`, { what: "the weights", stallMs: 300 }),
    modelLoadError(/stalled: no response from .*\/no-headers for 0\.3 s/),
  );
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 250 && elapsed < 5000, `${elapsed} ms`);
});

test("an already-aborted signal rejects without a request", async () => {
  const controller = new AbortController();
  controller.abort(new Error("gone"));
  const before = total();
  await assert.rejects(
    download(`${base}/ok`, { what: "the weights", signal: controller.signal }),
    modelLoadError(/loading was aborted/),
  );
  await sleep(50);
  assert.equal(total(), before, "no request reached the server");
});

test(
  "a signal does not collect one abort listener per chunk",
  async () => {
    const controller = new AbortController();
    await download(`${base}/ok`, { what: "the weights", signal: controller.signal });
    const listeners = getEventListeners(controller.signal, "abort").length;
    assert.ok(listeners <= 1, `${listeners} abort listeners left on the signal after the download`);
  },
);

test(
  "a rejected response's body is cancelled (the connection is not left open)",
  async () => {
    const before = closed.get("/big-declared") ?? 0;
    await assert.rejects(download(`${base}/big-declared`, { what: "the weights", maxBytes: SMALL_MAX }));
    for (let i = 0; i < 20 && (closed.get("/big-declared") ?? 0) === before; i++) await sleep(25);
    assert.equal(closed.get("/big-declared") ?? 0, before + 1, "the server's response is still open");
  },
);

// ---- the Cache API (a fake one) ----

/**
 * Installs a minimal `globalThis.caches`: named stores backed by Maps of key → bytes, with a
 * log of the calls. `remove()` restores what was there.
 */
function installFakeCaches() {
  const previous = Object.getOwnPropertyDescriptor(globalThis, "caches");
  const stores = new Map();
  const log = [];
  const store = (name) => {
    if (!stores.has(name)) stores.set(name, new Map());
    const entries = stores.get(name);
    return {
      async match(key) {
        log.push(["match", String(key)]);
        const bytes = entries.get(String(key));
        return bytes ? new Response(bytes.slice()) : undefined;
      },
      async put(key, response) {
        log.push(["put", String(key)]);
        entries.set(String(key), new Uint8Array(await response.arrayBuffer()));
      },
      async delete(key) {
        log.push(["delete", String(key)]);
        return entries.delete(String(key));
      },
    };
  };
  Object.defineProperty(globalThis, "caches", {
    configurable: true,
    writable: true,
    value: {
      async open(name) {
        log.push(["open", name]);
        return store(name);
      },
    },
  });
  return {
    stores,
    log,
    /** The entries of the one store sightline opened. */
    entries: () => stores.get("sightline") ?? new Map(),
    remove() {
      if (previous) Object.defineProperty(globalThis, "caches", previous);
      else delete globalThis.caches;
    },
  };
}

/** Runs `fn(fake)` with a fresh fake `caches` installed, removing it afterwards. */
async function withFakeCaches(fn) {
  const fake = installFakeCaches();
  try {
    await fn(fake);
  } finally {
    fake.remove();
  }
  assert.equal(globalThis.caches, undefined);
}

test("cache: the first download stores it; the second makes no request", async () => {
  await withFakeCaches(async (fake) => {
    const hash = await hex(DATA);
    const url = `${base}/ok`;
    const before = count("/ok");
    const first = await download(url, { what: "the weights", sha256: hash });
    assert.equal(first.fromCache, false);
    assert.deepEqual(first.bytes, DATA);
    assert.equal(count("/ok"), before + 1);
    assert.deepEqual([...fake.stores.keys()], ["sightline"]);
    const entries = [...fake.entries()];
    assert.equal(entries.length, 1);
    assert.match(entries[0][0], new RegExp(`sightline-sha256=${hash}`), "the key names the hash");
    assert.deepEqual(entries[0][1], DATA);

    const calls = [];
    const second = await download(url, { what: "the weights", sha256: hash, onBytes: (...a) => calls.push(a) });
    assert.equal(second.fromCache, true);
    assert.deepEqual(second.bytes, DATA);
    assert.equal(count("/ok"), before + 1, "no request for a cached file");
    assert.deepEqual(calls, [[DATA.byteLength, DATA.byteLength, true]]);
  });
});

test("cache: a tampered entry is not used; it is fetched again and replaced", async () => {
  await withFakeCaches(async (fake) => {
    const hash = await hex(DATA);
    const url = `${base}/ok`;
    await download(url, { what: "the weights", sha256: hash });
    const [key] = fake.entries().keys();
    const tampered = DATA.slice();
    tampered[123] ^= 0xff;
    fake.entries().set(key, tampered);

    const before = count("/ok");
    const calls = [];
    const result = await download(url, { what: "the weights", sha256: hash, onBytes: (...a) => calls.push(a) });
    assert.equal(result.fromCache, false);
    assert.deepEqual(result.bytes, DATA);
    assert.equal(count("/ok"), before + 1, "refetched from the server");
    assert.ok(calls.every(([, , fromCache]) => fromCache === false), JSON.stringify(calls));
    assert.equal(fake.entries().size, 1);
    assert.deepEqual(fake.entries().get(key), DATA, "the store holds the correct bytes again");
  });
});

test("cache: an entry for one hash does not satisfy another (a new release)", async () => {
  await withFakeCaches(async (fake) => {
    const url = `${base}/ok`;
    await download(url, { what: "the weights", sha256: await hex(DATA) });
    const before = count("/ok");
    await assert.rejects(
      download(url, { what: "the weights", sha256: "f".repeat(64) }),
      modelLoadError(/SHA-256/),
    );
    assert.equal(count("/ok"), before + 1, "fetched, not served from the other entry");
    assert.equal(fake.entries().size, 1, "the mismatching bytes were not stored");
  });
});

test("cache: a failed verification stores nothing", async () => {
  await withFakeCaches(async (fake) => {
    await assert.rejects(download(`${base}/ok`, { what: "the weights", sha256: "0".repeat(64) }), modelLoadError(/SHA-256/));
    assert.equal(fake.entries().size, 0);
    assert.ok(!fake.log.some(([op]) => op === "put"), JSON.stringify(fake.log));
  });
});

test("cache: false neither reads nor writes the store", async () => {
  await withFakeCaches(async (fake) => {
    const hash = await hex(DATA);
    const url = `${base}/ok`;
    await download(url, { what: "the weights", sha256: hash }); // one entry to (not) read
    fake.log.length = 0;
    const before = count("/ok");
    const result = await download(url, { what: "the weights", sha256: hash, cache: false });
    assert.equal(result.fromCache, false);
    assert.deepEqual(result.bytes, DATA);
    assert.equal(count("/ok"), before + 1);
    assert.deepEqual(fake.log, [], "the cache was not touched");
  });
});

test("cache: without sha256 nothing is cached", async () => {
  await withFakeCaches(async (fake) => {
    const url = `${base}/ok`;
    const before = count("/ok");
    for (let i = 0; i < 2; i++) {
      const result = await download(url, { what: "a caller's model" });
      assert.equal(result.fromCache, false);
      assert.deepEqual(result.bytes, DATA);
    }
    assert.equal(count("/ok"), before + 2);
    assert.deepEqual(fake.log, []);
    assert.equal(fake.entries().size, 0);
  });
});

test("cache: a failing Cache API is a cache miss, not a failure", async () => {
  const previous = Object.getOwnPropertyDescriptor(globalThis, "caches");
  globalThis.caches = {
    open: async () => {
      throw new DOMException("storage disabled", "SecurityError");
    },
  };
  try {
    const result = await download(`${base}/ok`, { what: "the weights", sha256: await hex(DATA) });
    assert.deepEqual(result.bytes, DATA);
    assert.equal(result.fromCache, false);
  } finally {
    if (previous) Object.defineProperty(globalThis, "caches", previous);
    else delete globalThis.caches;
  }
});
