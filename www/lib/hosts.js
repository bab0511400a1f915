// Where the engine runs: in a module worker (default) or in the page. Both hosts offer the same
// calls — create, run, setOptions, close, info — so everything else is shared; this file is the
// hop, and what the hop needs to survive faults:
// - worker mode: a Rust panic, a worker error, a lost WebGPU device or a call that never answers
//   (the watchdog) restarts the worker and re-creates every task on it with its latest options;
//   the calls in flight reject with an InferenceError, the next ones run on the new worker.
// - page mode: the page's wasm instance cannot be restarted, so after a panic every task on it
//   reports itself failed (InferenceError); a lost WebGPU device moves its tasks to the CPU.
import {
  ClosedError,
  InferenceError,
  InvalidOptionsError,
  ModelLoadError,
  abortedError,
  deserializeError,
  toSightlineError,
} from "./errors.js";
import { corsError, release, transferables } from "./frames.js";

/** Every live host, for `memoryUsage()`. */
export const liveHosts = new Set();

/** The default watchdog for one inference call (a frame takes ≤ 20 s even on software WebGPU). */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** The watchdog for `create()` (downloads have their own stall timeout; this bounds the rest). */
const CREATE_TIMEOUT_MS = 600_000;
/** Re-creating after a fault is tried this many times in a row before the tasks are marked failed. */
const MAX_RESTARTS = 3;
/** `close()` waits this long for the engine's answer, then lets go (closing never fails or hangs). */
const CLOSE_WAIT_MS = 10_000;

/** Resolves after `ms`. */
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));


/** Options that stay on the page side of the hop (functions and signals cannot cross). */
function pageSide(options) {
  const { onProgress, signal, share, ...rest } = options ?? {};
  return { rest, onProgress, signal, share };
}

/** Training runs without a watchdog timeout of its own: each epoch's progress re-arms the call's. */
const TRAIN_TIMEOUT_MS = DEFAULT_TIMEOUT_MS;

/** Options a restart re-creates with: test hooks are one-shot actions, not settings. */
function lasting(options) {
  const { testPanic, testLoseDevice, ...rest } = options ?? {};
  return rest;
}

/** What a fault means for the calls in flight. */
function faultError(kind, message) {
  const what = {
    panic: `sightline crashed (${message})`,
    "device-lost": `the WebGPU device was lost (${message})`,
    hang: message,
  }[kind] ?? `the sightline worker failed (${message})`;
  return new InferenceError(`${what}; the instance restarts and reloads its model`);
}

/**
 * One module worker per wasm module URL, shared by every task created with it (one wasm
 * instance, one WebGPU device, less memory). It ends when its last task closes.
 */
export class WorkerHost {
  static #byUrl = new Map();
  #url;
  #worker = null;
  #pending = new Map();
  #nextId = 1;
  /** Tasks by handle: `{ kind, options, remote, info, failed }`. */
  #tasks = new Map();
  #nextHandle = 1;
  #recovering = null;
  #restarts = 0;
  wasmBytes = 0;

  /** The shared host for `wasmUrl` (`undefined`: the package's own module), started if needed. */
  static for(wasmUrl) {
    if (wasmUrl !== undefined && typeof wasmUrl !== "string") {
      throw new InvalidOptionsError("wasm must be a URL in worker mode (pass bytes only with worker: false)");
    }
    let host = WorkerHost.#byUrl.get(wasmUrl);
    if (!host) {
      host = new WorkerHost(wasmUrl);
      WorkerHost.#byUrl.set(wasmUrl, host);
    }
    return host;
  }

  constructor(url) {
    this.#url = url;
    this.#start();
    liveHosts.add(this);
  }

  #start() {
    // A module worker found next to this file: bundlers (Vite, webpack, Rollup) recognise the
    // pattern, and no blob: URL is involved, so a strict CSP (worker-src 'self') keeps working.
    const worker = new Worker(new URL("./sightline.worker.js", import.meta.url), { type: "module", name: "sightline" });
    worker.onmessage = ({ data }) => worker === this.#worker && this.#receive(data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (worker === this.#worker) this.#fault("error", event.message || "it could not start");
    };
    worker.onmessageerror = () => worker === this.#worker && this.#fault("error", "a message could not be read");
    this.#worker = worker;
  }

  #receive(data) {
    if (data.type === "progress") {
      const pending = this.#pending.get(data.id);
      pending?.rearm?.();
      pending?.onProgress?.(data.event);
      return;
    }
    if (data.type === "fault") {
      this.#fault(data.kind, data.message);
      return;
    }
    this.wasmBytes = data.wasmBytes;
    const pending = this.#pending.get(data.id);
    if (!pending) return;
    this.#pending.delete(data.id);
    clearTimeout(pending.timer);
    pending.off();
    if (data.ok) pending.resolve(data.value);
    else pending.reject(deserializeError(data.error));
  }

  /** Sends one request; the answer (or the watchdog's verdict) settles the promise. */
  #send(type, payload, { transfer = [], timeoutMs = DEFAULT_TIMEOUT_MS, onProgress, signal } = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const pending = { resolve, reject, onProgress };
      if (Number.isFinite(timeoutMs)) {
        // A call that reports progress is alive: each report restarts its watchdog.
        pending.rearm = () => {
          clearTimeout(pending.timer);
          pending.timer = setTimeout(() => {
            const message = `the sightline worker did not answer ${type} within ${Math.round(timeoutMs / 1000)} s`;
            this.#fault("hang", message);
          }, timeoutMs);
        };
        pending.rearm();
      }
      this.#pending.set(id, pending);
      const onAbort = () => this.#worker?.postMessage({ id: 0, type: "abort", target: id });
      signal?.addEventListener("abort", onAbort, { once: true });
      pending.off = () => signal?.removeEventListener("abort", onAbort);
      try {
        this.#worker.postMessage({ id, type, ...payload }, transfer);
      } catch (e) {
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        pending.off();
        // An ImageBitmap of cross-origin pixels cannot be sent to a worker (HTML: DataCloneError).
        reject(e?.name === "DataCloneError" && payload.frame?.image ? corsError(e) : toSightlineError(e));
      }
    });
  }

  /** A fault outlived a call: fail what is in flight, then restart and re-create every task. */
  #fault(kind, message) {
    const error = faultError(kind, message);
    this.#failPending(error);
    this.#worker?.terminate();
    this.#worker = null;
    this.wasmBytes = 0;
    // The old worker's task ids mean nothing to the next one.
    for (const task of this.#tasks.values()) task.remote = null;
    if (this.#tasks.size === 0) return;
    this.#restarts += 1;
    const previous = this.#recovering ?? Promise.resolve();
    const recovery = previous
      .then(() => this.#restart(error.message))
      .finally(() => {
        if (this.#recovering === recovery) this.#recovering = null;
      });
    this.#recovering = recovery;
  }

  /** Rejects every call waiting for the worker. */
  #failPending(error) {
    for (const { reject, timer, off } of this.#pending.values()) {
      clearTimeout(timer);
      off();
      reject(error);
    }
    this.#pending.clear();
  }

  async #restart(reason) {
    if (this.#tasks.size === 0) return; // every task closed meanwhile: nothing to restart for
    if (this.#restarts > MAX_RESTARTS) {
      for (const task of this.#tasks.values()) {
        task.failed = new InferenceError(`sightline could not recover (${reason}); create a new instance`);
      }
      return;
    }
    this.#start();
    for (const [handle, task] of [...this.#tasks]) {
      try {
        const created = await this.#send("create", { wasm: this.#url, kind: task.kind, options: task.options }, {
          timeoutMs: CREATE_TIMEOUT_MS,
        });
        if (!this.#tasks.has(handle)) {
          // Closed while it was being re-created: free it in the worker too.
          this.#send("close", { task: created.id }).catch(() => {});
          continue;
        }
        task.remote = created.id;
        task.info = { ...created, recovered: reason };
        task.failed = null;
      } catch (e) {
        if (!this.#worker) return; // another fault: the next restart takes over
        task.failed = new InferenceError(`sightline could not recover (${e.message}); create a new instance`, { cause: e });
      }
    }
    this.#restarts = 0;
  }

  /** Waits out a restart; then the task, or why it is gone. */
  async #ready(handle) {
    while (this.#recovering) await this.#recovering;
    const task = this.#tasks.get(handle);
    if (task?.failed) throw task.failed;
    return task;
  }

  async create(kind, options) {
    const { rest, onProgress, signal, share } = pageSide(options);
    while (this.#recovering) await this.#recovering;
    if (signal?.aborted) throw abortedError(signal);
    if (!this.#worker) {
      // Every task failed to recover earlier: a new instance starts afresh.
      this.#restarts = 0;
      this.#start();
    }
    // Sharing a loaded backbone: by its id in this worker. A restart re-creates the task from
    // its options alone (a full load, with the head).
    const backbone = share === undefined ? {} : { backbone: (await this.#ready(share)).remote };
    const handle = this.#nextHandle++;
    const task = { kind, options: rest, remote: null, info: null, failed: null };
    this.#tasks.set(handle, task);
    try {
      const created = await this.#send("create", { wasm: this.#url, kind, options: { ...rest, ...backbone } }, {
        timeoutMs: CREATE_TIMEOUT_MS,
        onProgress,
        signal,
      });
      task.remote = created.id;
      task.info = created;
      return handle;
    } catch (e) {
      this.#tasks.delete(handle);
      this.#stopIfIdle();
      throw e;
    }
  }

  info(handle) {
    return this.#tasks.get(handle)?.info;
  }

  async run(handle, frame, timeoutMs = DEFAULT_TIMEOUT_MS, call = null) {
    let task;
    try {
      task = await this.#ready(handle);
    } catch (e) {
      release(frame);
      throw e;
    }
    try {
      return await this.#send("run", { task: task.remote, frame, call }, { transfer: transferables(frame), timeoutMs });
    } finally {
      // Transferred frames are already closed here; one that could not be sent is not.
      release(frame);
    }
  }

  /** Trains a head in the worker of task `handle` (see `Engine.train`). */
  async train(handle, payload, onProgress) {
    await this.#ready(handle);
    return this.#send("train", { payload }, { transfer: [payload.embeddings.buffer], timeoutMs: TRAIN_TIMEOUT_MS, onProgress });
  }

  async setOptions(handle, options) {
    const task = await this.#ready(handle);
    await this.#send("setOptions", { task: task.remote, options });
    task.options = { ...task.options, ...lasting(options) }; // a restart re-creates with the latest options
  }

  async close(handle) {
    const task = this.#tasks.get(handle);
    this.#tasks.delete(handle);
    try {
      if (task && task.remote !== null && !task.failed && this.#worker) {
        // No watchdog fault for a slow close: a busy worker is not a hung one.
        const closing = this.#send("close", { task: task.remote }, { timeoutMs: Infinity });
        closing.catch(() => {});
        await Promise.race([closing, delay(CLOSE_WAIT_MS)]);
      }
    } catch {
      // Closing never fails: whatever the worker holds goes with it when it ends.
    } finally {
      this.#stopIfIdle();
    }
  }

  #stopIfIdle() {
    if (this.#tasks.size > 0) return;
    this.#failPending(new ClosedError("every sightline object of this worker is closed"));
    this.#worker?.terminate();
    this.#worker = null;
    if (WorkerHost.#byUrl.get(this.#url) === this) WorkerHost.#byUrl.delete(this.#url);
    liveHosts.delete(this);
    this.wasmBytes = 0;
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
  /** Tasks by handle: `{ kind, options, remote, info, failed }`. */
  #tasks = new Map();
  #nextHandle = 1;
  /**
   * The calls in flight, rejecter → task (`null` for a create): a panic leaves their promises
   * pending forever, so a fault rejects them itself.
   */
  #inflight = new Map();

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
        this.#engine = new Engine(wasm, (kind, message) => this.#fault(kind, message));
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

  #fault(kind, message) {
    const error =
      kind === "panic"
        ? new InferenceError(`sightline crashed (${message}); this page's instance is gone: create a new instance in worker mode (the default) or reload the page`)
        : new InferenceError(`the WebGPU device was lost (${message})`);
    for (const [reject, task] of this.#inflight) {
      // A lost device concerns only what runs on it.
      if (kind === "panic" || task?.info.backend === "webgpu") {
        reject(error);
        this.#inflight.delete(reject);
      }
    }
    if (kind === "panic") {
      for (const task of this.#tasks.values()) task.failed = error;
    } else {
      for (const task of this.#tasks.values()) if (task.info.backend === "webgpu") this.#moveToCpu(task, message);
    }
  }

  /** Re-creates a WebGPU task on the CPU after its device was lost. */
  #moveToCpu(task, message) {
    const reason = `the WebGPU device was lost (${message}); running on the CPU`;
    const engine = this.#engine;
    engine.close(task.remote);
    task.moving = engine.create(task.kind, { ...task.options, backend: "cpu" }).then(
      (created) => {
        if (task.closed) {
          engine.close(created.id);
          return;
        }
        task.remote = created.id;
        task.info = { ...created, backendReason: reason, fallbackReason: reason };
        task.moving = null;
      },
      (e) => {
        task.failed = new InferenceError(`could not move to the CPU after ${reason}: ${e.message}`, { cause: e });
        task.moving = null;
      },
    );
  }

  /**
   * `promise`, unless a fault or the watchdog (`timeoutMs`) settles it first: a panicked wasm
   * instance never answers.
   */
  #settle(promise, timeoutMs, task = null) {
    let timer;
    return new Promise((resolve, reject) => {
      this.#inflight.set(reject, task);
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => reject(new InferenceError(`sightline did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      }
      promise.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        this.#inflight.delete(reject);
      });
    });
  }

  /** Runs `call()` unless the task failed; settles even when the wasm instance never answers. */
  async #guard(handle, call, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const task = this.#tasks.get(handle);
    if (task?.moving) await this.#settle(task.moving, timeoutMs);
    if (task?.failed) throw task.failed;
    return this.#settle(Promise.resolve().then(() => call(task)), timeoutMs, task);
  }

  async create(kind, options) {
    const { rest, onProgress, signal, share } = pageSide(options);
    const engine = await this.#ready;
    const backbone = share === undefined ? {} : { backbone: this.#tasks.get(share)?.remote ?? -1 };
    const creating = engine.create(kind, { ...rest, ...backbone }, { onProgress, signal });
    let created;
    try {
      created = await this.#settle(creating, CREATE_TIMEOUT_MS);
    } catch (e) {
      creating.then((late) => engine.close(late.id), () => {}); // if it ever finishes, free it
      throw e;
    }
    const handle = this.#nextHandle++;
    this.#tasks.set(handle, { kind, options: rest, remote: created.id, info: created, failed: null, moving: null });
    return handle;
  }

  info(handle) {
    return this.#tasks.get(handle)?.info;
  }

  async run(handle, frame, timeoutMs = DEFAULT_TIMEOUT_MS, call = null) {
    const engine = await this.#ready;
    // The CPU backend answers without ever yielding to the event loop: without this, a loop of
    // frames would be one long task that freezes the page. Each frame is its own task instead.
    await yieldToPage();
    try {
      return await this.#guard(handle, (task) => engine.run(task.remote, frame, call), timeoutMs);
    } finally {
      release(frame);
    }
  }

  /** Trains a head in the page (one epoch per event-loop task; see `Engine.train`). */
  async train(handle, payload, onProgress) {
    const engine = await this.#ready;
    return this.#guard(handle, () => engine.train(payload, onProgress), Infinity);
  }

  async setOptions(handle, options) {
    const engine = await this.#ready;
    await this.#guard(handle, (task) => {
      engine.setOptions(task.remote, options);
      task.options = { ...task.options, ...lasting(options) };
    });
  }

  async close(handle) {
    const task = this.#tasks.get(handle);
    this.#tasks.delete(handle);
    if (!task) return;
    task.closed = true; // a move to the CPU still under way frees what it creates
    if (!task.moving) this.#engine?.close(task.remote);
  }
}
