// Where the engine runs: in a module worker (default) or in the page. Both hosts offer the same
// calls — create, run, setOptions, close — so everything else is shared; this file is the hop.
import { InvalidOptionsError, ModelLoadError, deserializeError, toSightlineError } from "./errors.js";
import { transferables } from "./frames.js";

/** Every live host, for `memoryUsage()`. */
export const liveHosts = new Set();

/**
 * One module worker per wasm module URL, shared by every task created with it (one wasm
 * instance, one WebGPU device, less memory). It ends when its last task closes.
 */
export class WorkerHost {
  static #byUrl = new Map();
  #worker;
  #pending = new Map();
  #nextId = 1;
  #tasks = 0;
  #url;
  wasmBytes = 0;

  /** The shared host for `wasmUrl` (`undefined`: the package's own module), started if needed. */
  static for(wasmUrl) {
    if (wasmUrl !== undefined && typeof wasmUrl !== "string") {
      throw new InvalidOptionsError("wasm must be a URL in worker mode (pass bytes only with worker: false)");
    }
    const url = wasmUrl;
    let host = WorkerHost.#byUrl.get(url);
    if (!host) {
      host = new WorkerHost(url);
      WorkerHost.#byUrl.set(url, host);
    }
    return host;
  }

  constructor(url) {
    this.#url = url;
    // A module worker found next to this file: bundlers (Vite, webpack, Rollup) recognise the
    // pattern, and no blob: URL is involved, so a strict CSP (worker-src 'self') keeps working.
    this.#worker = new Worker(new URL("./sightline.worker.js", import.meta.url), { type: "module", name: "sightline" });
    this.#worker.onmessage = ({ data }) => this.#settle(data);
    this.#worker.onerror = (event) => {
      event.preventDefault?.();
      this.#failAll(new ModelLoadError(`the sightline worker failed: ${event.message ?? "it could not start"}`));
    };
    this.#worker.onmessageerror = () => this.#failAll(new ModelLoadError("a message from the sightline worker could not be read"));
    liveHosts.add(this);
  }

  #settle({ id, ok, value, error, wasmBytes }) {
    this.wasmBytes = wasmBytes;
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (ok) pending.resolve(value);
    else pending.reject(deserializeError(error));
  }

  #failAll(error) {
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  #call(type, payload, transfer = []) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#worker.postMessage({ id, type, ...payload }, transfer);
      } catch (e) {
        this.#pending.delete(id);
        reject(toSightlineError(e));
      }
    });
  }

  async create(kind, options) {
    this.#tasks += 1;
    try {
      return await this.#call("create", { wasm: this.#url, kind, options });
    } catch (e) {
      this.#closed();
      throw e;
    }
  }

  run(task, frame) {
    return this.#call("run", { task, frame }, transferables(frame));
  }

  setOptions(task, options) {
    return this.#call("setOptions", { task, options });
  }

  async close(task) {
    try {
      await this.#call("close", { task });
    } finally {
      this.#closed();
    }
  }

  #closed() {
    this.#tasks -= 1;
    if (this.#tasks === 0) {
      this.#worker.terminate();
      this.#failAll(new ModelLoadError("the sightline worker was stopped"));
      WorkerHost.#byUrl.delete(this.#url);
      liveHosts.delete(this);
      this.wasmBytes = 0;
    }
  }
}

/**
 * Lets the page render and handle input before the next piece of work: `scheduler.yield()`, or a
 * message to itself (a `setTimeout(0)` chain is clamped to 4 ms per step).
 */
function yieldToPage() {
  if (globalThis.scheduler?.yield) return globalThis.scheduler.yield();
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** The engine in the page itself (`worker: false`): one wasm instance per page, loaded on first use. */
export class PageHost {
  static #host = null;
  #wasm;
  #engine = null;
  #ready;

  /**
   * The page's host. The page holds one wasm instance: a different `wasm` than the first one is an
   * error (worker mode can use another: one worker per module).
   */
  static for(wasm) {
    PageHost.#host ??= new PageHost(wasm);
    const running = PageHost.#host.#wasm;
    if (running !== wasm) {
      const what = running === undefined ? "the package" : typeof running === "string" ? running : "bytes";
      throw new InvalidOptionsError(
        `this page already runs the sightline wasm module from ${what}; with worker: false every instance ` +
          "must use that module (in worker mode each module gets its own worker)",
      );
    }
    return PageHost.#host;
  }

  constructor(wasm) {
    this.#wasm = wasm;
    // Imported on first use, so that worker mode never loads the wasm glue into the page.
    this.#ready = import("./engine.js").then(
      ({ Engine }) => {
        this.#engine = new Engine(wasm);
        return this.#engine;
      },
      (e) => {
        throw new ModelLoadError(`could not load the sightline engine: ${e.message}`, { cause: e });
      },
    );
    liveHosts.add(this);
  }

  get wasmBytes() {
    return this.#engine?.wasmBytes() ?? 0;
  }

  async create(kind, options) {
    return (await this.#ready).create(kind, options);
  }

  async run(task, frame) {
    const engine = await this.#ready;
    // The CPU backend answers without ever yielding to the event loop: without this, a loop of
    // frames would be one long task that freezes the page. Each frame is its own task instead.
    await yieldToPage();
    return engine.run(task, frame);
  }

  async setOptions(task, options) {
    (await this.#ready).setOptions(task, options);
  }

  async close(task) {
    (await this.#ready).close(task);
  }
}
