// Downloads of the package's large files — the wasm module and the weights — with a progress
// callback, a stall timeout, a size cap and cancellation, kept in the Cache API for the next
// visit. Bytes whose SHA-256 was recorded at build time (pkg/integrity.js) are verified before
// use, whether they come from the network or from the cache: a mismatch is never run.
import { ModelLoadError, abortedError } from "./errors.js";

/** The Cache API store sightline uses (one per origin). */
const CACHE_NAME = "sightline";

/** A download that delivers no byte for this long fails (a hung connection, not a slow one). */
export const STALL_TIMEOUT_MS = 30_000;

/** The largest file sightline downloads: far above its own (≤ 19 MB), far below a browser's limits. */
export const MAX_DOWNLOAD_BYTES = 256 * 2 ** 20;

/** Lowercase hex SHA-256 of `bytes` (Web Crypto; `null` where it is unavailable, e.g. plain http). */
async function sha256(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cache key of `url` with content `hash`: another hash (a new release) is another entry. */
function cacheKey(url, hash) {
  const key = new URL(url);
  key.searchParams.set("sightline-sha256", hash);
  return key.href;
}

async function openCache() {
  try {
    return (await globalThis.caches?.open(CACHE_NAME)) ?? null;
  } catch {
    return null; // e.g. storage disabled, or an opaque origin
  }
}

/**
 * Reads `response`'s body, reporting `(loaded, total)` as bytes arrive, failing when it stalls,
 * is cancelled through `signal` or grows past `maxBytes`.
 */
async function readBody(response, { what, onBytes, abort, maxBytes, stallMs }) {
  const total = Number(response.headers.get("content-length")) || 0;
  if (total > maxBytes) {
    discard(response);
    throw new ModelLoadError(`${what} is ${total} bytes; the largest accepted is ${maxBytes}`);
  }
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  onBytes(0, total);
  for (;;) {
    let timer;
    const stalled = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new ModelLoadError(`${what} stalled: no data for ${stallMs / 1000} s`)),
        stallMs,
      );
    });
    let step;
    try {
      step = await Promise.race([reader.read(), stalled, abort]);
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (step.done) break;
    loaded += step.value.byteLength;
    if (loaded > maxBytes) {
      reader.cancel().catch(() => {});
      throw new ModelLoadError(`${what} is larger than the largest accepted size (${maxBytes} bytes)`);
    }
    chunks.push(step.value);
    onBytes(loaded, Math.max(total, loaded));
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * `{ promise, dispose }`: `promise` rejects when `signal` aborts (never settles without one);
 * `dispose()` removes the listener. One per download, however many chunks it reads.
 */
export function abortWatch(signal) {
  if (!signal) return { promise: new Promise(() => {}), dispose() {} };
  let fail;
  const promise = new Promise((_, reject) => {
    fail = () => reject(abortedError(signal));
  });
  promise.catch(() => {}); // an abort after the download settled is nobody's error
  if (signal.aborted) fail();
  else signal.addEventListener("abort", fail, { once: true });
  return { promise, dispose: () => signal.removeEventListener("abort", fail) };
}

/** Lets the connection go: a body nobody reads would keep downloading. */
function discard(response) {
  response.body?.cancel().catch(() => {});
}

/**
 * The bytes at `url`: from the cache when `cache` is on and the cached copy matches `sha256`,
 * else downloaded (and cached when it matches). With no `sha256` (a caller's own file) the bytes
 * are size-checked but neither verified nor cached.
 * @param {string} url
 * @param {{ what: string, sha256?: string|null, cache?: boolean, signal?: AbortSignal,
 *   onBytes?: (loaded: number, total: number, fromCache: boolean) => void, maxBytes?: number,
 *   stallMs?: number }} options
 * @returns {Promise<{ bytes: Uint8Array, fromCache: boolean }>}
 */
export async function download(url, { what, sha256: expected = null, cache = true, signal, onBytes = () => {}, maxBytes = MAX_DOWNLOAD_BYTES, stallMs = STALL_TIMEOUT_MS }) {
  const watch = abortWatch(signal);
  try {
    if (signal?.aborted) await watch.promise;
    return await fetchVerified(url, { what, expected, cache, signal, onBytes, maxBytes, stallMs, abort: watch.promise });
  } finally {
    watch.dispose();
  }
}

/** `download` once its abort watch is set up (`abort` rejects when the signal fires). */
async function fetchVerified(url, { what, expected, cache, signal, onBytes, maxBytes, stallMs, abort }) {
  const store = cache && expected && globalThis.crypto?.subtle ? await openCache() : null;
  const key = store ? cacheKey(url, expected) : null;
  if (store) {
    const hit = await store.match(key).catch(() => undefined);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if ((await sha256(bytes)) === expected) {
        onBytes(bytes.byteLength, bytes.byteLength, true);
        return { bytes, fromCache: true };
      }
      await store.delete(key); // tampered or corrupt: never used, fetched again below
    }
  }
  // The stall timeout covers the wait for the response headers too (a server that accepts the
  // connection and never answers); the request is cancelled when it fires or `signal` aborts.
  const request = new AbortController();
  const cancel = () => request.abort(signal?.reason);
  signal?.addEventListener("abort", cancel, { once: true });
  let timer;
  const silent = new Promise((_, reject) => {
    timer = setTimeout(() => {
      request.abort();
      reject(new ModelLoadError(`${what} stalled: no response from ${url} for ${stallMs / 1000} s`));
    }, stallMs);
  });
  let response;
  try {
    response = await Promise.race([fetch(url, { signal: request.signal }), silent, abort]);
  } catch (e) {
    if (e instanceof ModelLoadError) throw e;
    throw new ModelLoadError(`could not fetch ${what} from ${url}: ${e.message}`, { cause: e });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", cancel);
  }
  if (!response.ok) {
    discard(response);
    throw new ModelLoadError(`could not fetch ${what} from ${url}: HTTP ${response.status}`);
  }
  let bytes;
  try {
    bytes = await readBody(response, { what, abort, maxBytes, stallMs, onBytes: (l, t) => onBytes(l, t, false) });
  } catch (e) {
    if (e instanceof ModelLoadError) throw e;
    throw new ModelLoadError(`could not read ${what} from ${url}: ${e.message}`, { cause: e });
  }
  if (expected) {
    const got = await sha256(bytes);
    if (got !== null && got !== expected) {
      throw new ModelLoadError(`${what} from ${url} does not match the SHA-256 recorded in the package (got ${got}, expected ${expected})`);
    }
    await store?.put(key, new Response(bytes)).catch(() => {}); // a full disk only costs the next visit a download
  }
  return { bytes, fromCache: false };
}
