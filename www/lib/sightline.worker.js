// The sightline worker: runs the engine (the wasm module and the models) off the page's main
// thread. Messages are `{ id, type, ... }`; every reply is `{ id, ok, value | error, wasmBytes }`.
import { Engine } from "./engine.js";
import { serializeError } from "./errors.js";

let engine = null;

const handlers = {
  create: ({ wasm, kind, options }) => {
    engine ??= new Engine(wasm);
    return engine.create(kind, options);
  },
  run: ({ task, frame }) => engine.run(task, frame),
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
