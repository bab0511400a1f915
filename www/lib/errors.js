// The error classes sightline rejects with, and how they cross the worker boundary (by `name`).

/** Base class of every error sightline throws; `name` tells which one. */
export class SightlineError extends Error {
  name = "SightlineError";
}

/** A subclass of SightlineError whose class name and `name` are both `name`. */
function named(name) {
  return {
    [name]: class extends SightlineError {
      name = name;
    },
  }[name];
}

/** The pixel source is empty, not loaded yet, the wrong size, too large, or cross-origin. */
export const InvalidImageError = named("InvalidImageError");
/** An option is unknown or out of range. */
export const InvalidOptionsError = named("InvalidOptionsError");
/** The weights or the wasm module could not be fetched, or are corrupt or for another model. */
export const ModelLoadError = named("ModelLoadError");
/** The requested backend (WebGPU) is not available in this browser. */
export const BackendUnavailableError = named("BackendUnavailableError");
/** The backend failed while running the network. */
export const InferenceError = named("InferenceError");
/** The object was closed. */
export const ClosedError = named("ClosedError");

/** The error of a `create()` whose `signal` fired (at whatever stage it was). */
export function abortedError(signal) {
  return new ModelLoadError("loading was aborted (the create() signal fired)", { cause: signal?.reason });
}

const CLASSES = {
  SightlineError,
  InvalidImageError,
  InvalidOptionsError,
  ModelLoadError,
  BackendUnavailableError,
  InferenceError,
  ClosedError,
};

/**
 * `e` as a SightlineError: errors from the wasm module carry a stable `name` and keep it; anything
 * else becomes an `InferenceError` with `e` as its cause.
 */
export function toSightlineError(e) {
  if (e instanceof SightlineError) return e;
  const Kind = CLASSES[e?.name] ?? InferenceError;
  return new Kind(String(e?.message ?? e), { cause: e });
}

/** A plain object that survives `postMessage`: `{ name, message }`. */
export function serializeError(e) {
  const error = toSightlineError(e);
  return { name: error.name, message: error.message };
}

/** The error class instance `serializeError` described. */
export function deserializeError({ name, message }) {
  return new (CLASSES[name] ?? InferenceError)(message);
}
