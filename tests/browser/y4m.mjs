// Writes a y4m clip (Chromium's fake-webcam file format) from a fixture's RGB .npy, so the fake
// webcam shows a real photo. YUV 4:2:0, BT.601 limited range (how Chromium decodes y4m).
import { readFileSync, writeFileSync } from "node:fs";
import { parseNpy } from "../../scripts/lib/npy.mjs";

/**
 * Writes `frames` copies of the RGB image in the `.npy` at `npyPath` (cropped to even size) to
 * `outPath`, played at `fps` frames per second.
 */
export function writeY4m(npyPath, outPath, { frames = 10, fps = 10 } = {}) {
  const { shape, data } = parseNpy(readFileSync(npyPath));
  const [height, width] = shape;
  const w = width & ~1;
  const h = height & ~1;
  const y = Buffer.alloc(w * h);
  const u = Buffer.alloc((w / 2) * (h / 2));
  const v = Buffer.alloc((w / 2) * (h / 2));
  const px = (r, c) => {
    const i = (r * width + c) * 3;
    return [data[i], data[i + 1], data[i + 2]];
  };
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const [R, G, B] = px(r, c);
      y[r * w + c] = Math.round(16 + (65.481 * R + 128.553 * G + 24.966 * B) / 255);
    }
  }
  for (let r = 0; r < h; r += 2) {
    for (let c = 0; c < w; c += 2) {
      let R = 0;
      let G = 0;
      let B = 0;
      for (const [dr, dc] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        const p = px(r + dr, c + dc);
        R += p[0] / 4;
        G += p[1] / 4;
        B += p[2] / 4;
      }
      const k = (r / 2) * (w / 2) + c / 2;
      u[k] = Math.round(128 + (-37.797 * R - 74.203 * G + 112.0 * B) / 255);
      v[k] = Math.round(128 + (112.0 * R - 93.786 * G - 18.214 * B) / 255);
    }
  }
  const parts = [Buffer.from(`YUV4MPEG2 W${w} H${h} F${fps}:1 Ip A1:1 C420jpeg\n`)];
  for (let f = 0; f < frames; f++) parts.push(Buffer.from("FRAME\n"), y, u, v);
  writeFileSync(outPath, Buffer.concat(parts));
}
