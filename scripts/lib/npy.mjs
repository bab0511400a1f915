// A minimal `.npy` reader (NumPy format 1.0/2.0, little-endian, C order) for Node and the browser.

const DTYPES = { "<f4": Float32Array, "|u1": Uint8Array };

/**
 * Parses `.npy` bytes: `{ shape, data }` with `data` a Float32Array (`<f4`) or Uint8Array (`|u1`)
 * viewing a copy of the values.
 * @param {ArrayBuffer|Uint8Array} bytes
 */
export function parseNpy(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (String.fromCharCode(...u8.subarray(1, 6)) !== "NUMPY") throw new Error("not a .npy file");
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const [headerLen, start] = u8[6] === 1 ? [view.getUint16(8, true), 10] : [view.getUint32(8, true), 12];
  const header = new TextDecoder("latin1").decode(u8.subarray(start, start + headerLen));
  if (!header.includes("'fortran_order': False")) throw new Error("only C-order .npy files are supported");
  const descr = header.match(/'descr': '([^']+)'/)?.[1];
  const Type = DTYPES[descr];
  if (!Type) throw new Error(`unsupported .npy dtype ${descr}`);
  const shape = header
    .match(/'shape': \(([^)]*)\)/)[1]
    .split(",")
    .filter((s) => s.trim())
    .map(Number);
  // A fresh copy: `slice` on a Node Buffer is a view into Node's shared pool, not a copy.
  const body = new Uint8Array(u8.subarray(start + headerLen));
  return { shape, data: new Type(body.buffer, 0, body.byteLength / Type.BYTES_PER_ELEMENT) };
}
