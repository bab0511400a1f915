// Counts the WebGPU calls a page makes, by wrapping the WebGPU prototypes (in-page module; the
// benchmark and the browser tests import it). Patching the prototypes reaches every device and
// encoder, including ones created before the import, but only in this realm: a task running in
// a worker is not counted (the benchmark and the tests create theirs with `worker: false`).
//
//   import { gpuCalls } from "/scripts/lib/gpu-calls.js";
//   const before = gpuCalls.snapshot(); …one frame… const perFrame = gpuCalls.since(before);
//
// Counted: compute dispatches (direct and indirect), compute passes, bind groups and pipelines
// created, queue submits and the command buffers they carry, buffers created (and their bytes),
// queue.writeBuffer calls and bytes, texture uploads, buffer-to-buffer copies, and readbacks
// (GPUBuffer.mapAsync for reading).

// Dispatches per shader (by its WGSL source), to tell which kernels a frame launches.
const shaderOf = new WeakMap(); // GPUShaderModule or GPUComputePipeline → WGSL source
const current = new WeakMap(); // GPUComputePassEncoder → WGSL source of its pipeline
const byShader = new Map(); // WGSL source → dispatches

const counts = {
  dispatches: 0,
  computePasses: 0,
  bindGroups: 0,
  pipelines: 0,
  submits: 0,
  commandBuffers: 0,
  buffersCreated: 0,
  bytesAllocated: 0,
  bufferWrites: 0,
  bytesWritten: 0,
  textureUploads: 0,
  copies: 0,
  readbacks: 0,
};

function wrap(proto, name, count) {
  const original = proto?.[name];
  if (typeof original !== "function" || original.__sightlineCounted) return;
  const wrapped = function (...args) {
    count.apply(this, args);
    return original.apply(this, args);
  };
  wrapped.__sightlineCounted = true;
  proto[name] = wrapped;
}

const g = globalThis;
if (g.GPUDevice) {
  const dispatch = function () {
    counts.dispatches++;
    const code = current.get(this) ?? "(unknown shader)";
    byShader.set(code, (byShader.get(code) ?? 0) + 1);
  };
  wrap(g.GPUComputePassEncoder.prototype, "dispatchWorkgroups", dispatch);
  wrap(g.GPUComputePassEncoder.prototype, "dispatchWorkgroupsIndirect", dispatch);
  wrap(g.GPUComputePassEncoder.prototype, "setPipeline", function (pipeline) {
    current.set(this, shaderOf.get(pipeline));
  });
  // Pipelines are matched to their source after creation (the wrapper sees arguments only).
  const patchCreate = (name) => {
    const original = g.GPUDevice.prototype[name];
    if (typeof original !== "function" || original.__sightlineShaders) return;
    const wrapped = function (desc, ...rest) {
      const result = original.call(this, desc, ...rest);
      const code = shaderOf.get(desc?.compute?.module);
      if (result instanceof Promise) return result.then((p) => (shaderOf.set(p, code), p));
      shaderOf.set(result, code);
      return result;
    };
    wrapped.__sightlineShaders = true;
    g.GPUDevice.prototype[name] = wrapped;
  };
  patchCreate("createComputePipeline");
  patchCreate("createComputePipelineAsync");
  const createShaderModule = g.GPUDevice.prototype.createShaderModule;
  if (!createShaderModule.__sightlineShaders) {
    g.GPUDevice.prototype.createShaderModule = function (desc) {
      const module = createShaderModule.call(this, desc);
      shaderOf.set(module, desc?.code);
      return module;
    };
    g.GPUDevice.prototype.createShaderModule.__sightlineShaders = true;
  }
  wrap(g.GPUCommandEncoder.prototype, "beginComputePass", () => counts.computePasses++);
  wrap(g.GPUCommandEncoder.prototype, "copyBufferToBuffer", () => counts.copies++);
  wrap(g.GPUDevice.prototype, "createBindGroup", () => counts.bindGroups++);
  wrap(g.GPUDevice.prototype, "createComputePipeline", () => counts.pipelines++);
  wrap(g.GPUDevice.prototype, "createComputePipelineAsync", () => counts.pipelines++);
  wrap(g.GPUDevice.prototype, "createBuffer", (desc) => {
    counts.buffersCreated++;
    counts.bytesAllocated += Number(desc?.size ?? 0);
  });
  wrap(g.GPUQueue.prototype, "submit", (buffers) => {
    counts.submits++;
    counts.commandBuffers += buffers?.length ?? 0;
  });
  wrap(g.GPUQueue.prototype, "writeBuffer", (_buffer, _offset, data, dataOffset = 0, size) => {
    counts.bufferWrites++;
    const unit = data?.BYTES_PER_ELEMENT ?? 1;
    const total = data?.byteLength ?? 0;
    counts.bytesWritten += size !== undefined ? size * unit : total - dataOffset * unit;
  });
  wrap(g.GPUQueue.prototype, "writeTexture", () => counts.textureUploads++);
  wrap(g.GPUQueue.prototype, "copyExternalImageToTexture", () => counts.textureUploads++);
  wrap(g.GPUBuffer.prototype, "mapAsync", (mode) => {
    if (mode & g.GPUMapMode.READ) counts.readbacks++;
  });
}

export const gpuCalls = {
  /** Whether this page has WebGPU at all (without it every count stays 0). */
  available: Boolean(g.GPUDevice),
  /** The counts so far. */
  snapshot: () => ({ ...counts }),
  /** The counts since `before` (a snapshot). */
  since: (before) => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v - before[k]])),
  /** Dispatches so far per shader: `[WGSL source, dispatches]`, most dispatched first. */
  byShader: () => [...byShader].sort((a, b) => b[1] - a[1]),
};
