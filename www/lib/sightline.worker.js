// The sightline worker: runs the engine (the wasm module and the models) off the page's main
// thread. Requests are `{ id, type, ... }`; replies `{ id, ok, value | error, wasmBytes }`;
// unprompted messages `{ type: "progress", id, event }` (during a create) and
// `{ type: "fault", kind, message }` (a panic, or the WebGPU device lost: the page restarts us).
import { Engine } from "./engine.js";
import { serializeError } from "./errors.js";

let engine = null;
/** AbortControllers of the creates in progress, by request id. */
const loads = new Map();

const handlers = {
  create: async ({ id, wasm, kind, options }) => {
    engine ??= new Engine(wasm, (fault, message) => self.postMessage({ type: "fault", kind: fault, message }));
    const controller = new AbortController();
    loads.set(id, controller);
    try {
      const onProgress = (event) => self.postMessage({ type: "progress", id, event });
      return await engine.create(kind, options, { onProgress, signal: controller.signal });
    } finally {
      loads.delete(id);
    }
  },
  abort: ({ target }) => loads.get(target)?.abort(),
  run: ({ task, frame, call }) => engine.run(task, frame, call),
  train: ({ id, payload }) => engine.train(payload, (event) => self.postMessage({ type: "progress", id, event })),
  setOptions: ({ task, options }) => engine.setOptions(task, options),
  close: ({ task }) => engine?.close(task),
};

self.onmessage = async ({ data }) => {
  const { id, type } = data;
  let reply;
  try {
    reply = { id, ok: true, value: await handlers[type](data) };
  } catch (e) {
    reply = { id, ok: false, error: serializeError(e) };
  }
  reply.wasmBytes = engine?.wasmBytes() ?? 0;
  self.postMessage(reply);
};
