// Drawing helpers for results on a 2D canvas. No inference here.

/** A colour per class that stays the same from frame to frame (golden-angle hues). */
export function classColor(index) {
  return `hsl(${(index * 137.508) % 360} 85% 50%)`;
}

/**
 * Draws labelled boxes on a 2D canvas context. Line width and font scale with the canvas.
 * Boxes are in source pixels; pass `style.sourceWidth` / `style.sourceHeight` when the canvas
 * is not the source's size.
 * @param {CanvasRenderingContext2D|OffscreenCanvasRenderingContext2D} ctx
 * @param {{index: number, label: string, score: number, box: {x: number, y: number, width: number, height: number}}[]} detections
 * @param {{lineWidth?: number, font?: string, color?: (index: number) => string, showScore?: boolean,
 *          sourceWidth?: number, sourceHeight?: number}} [style]
 */
export function drawDetections(ctx, detections, style = {}) {
  const { width, height } = ctx.canvas;
  const sx = style.sourceWidth ? width / style.sourceWidth : 1;
  const sy = style.sourceHeight ? height / style.sourceHeight : 1;
  const unit = Math.max(1, Math.min(width, height) / 400);
  const lineWidth = style.lineWidth ?? Math.max(2, Math.round(2 * unit));
  const fontPx = Math.max(11, Math.round(12 * unit));
  const color = style.color ?? classColor;
  ctx.save();
  ctx.lineWidth = lineWidth;
  ctx.font = style.font ?? `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const d of detections) {
    const x = d.box.x * sx;
    const y = d.box.y * sy;
    const c = color(d.index);
    ctx.strokeStyle = c;
    ctx.strokeRect(x, y, d.box.width * sx, d.box.height * sy);
    const text = style.showScore === false ? d.label : `${d.label} ${(d.score * 100).toFixed(0)}%`;
    const tw = ctx.measureText(text).width + 2 * lineWidth;
    const th = fontPx + 2 * lineWidth;
    const ty = y - th >= 0 ? y - th : y;
    ctx.fillStyle = c;
    ctx.fillRect(x - lineWidth / 2, ty, tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x + lineWidth / 2, ty + lineWidth);
  }
  ctx.restore();
}

/** Viridis (matplotlib's perceptually uniform colour map) at nine even stops, as RGB. */
const VIRIDIS = [
  [68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140],
  [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37],
];

/** The colour map's RGB at `v` (0–1). */
function viridis(v) {
  const t = Math.min(1, Math.max(0, v)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t));
  const f = t - i;
  return VIRIDIS[i].map((c, k) => Math.round(c * (1 - f) + VIRIDIS[i + 1][k] * f));
}

/**
 * Draws an explanation (`classifier.explain()`) over the image on a 2D canvas: the heat map's
 * cells in a perceptual colour map, smoothly upsampled by the canvas onto the region they cover.
 * Pass `sourceWidth` / `sourceHeight` when the canvas is not the source's size.
 * @param {CanvasRenderingContext2D|OffscreenCanvasRenderingContext2D} ctx
 * @param {{ rows: number, cols: number, grid: ArrayLike<number>, box: {x: number, y: number, width: number, height: number} }} explanation
 * @param {{ alpha?: number, sourceWidth?: number, sourceHeight?: number }} [options]
 */
export function drawHeatmap(ctx, explanation, options = {}) {
  const { rows, cols, grid, box } = explanation;
  const { width, height } = ctx.canvas;
  const sx = options.sourceWidth ? width / options.sourceWidth : 1;
  const sy = options.sourceHeight ? height / options.sourceHeight : 1;
  const cells = new ImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    cells.data.set([...viridis(grid[i]), 255], 4 * i);
  }
  const small = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(cols, rows) : document.createElement("canvas");
  small.width = cols;
  small.height = rows;
  small.getContext("2d").putImageData(cells, 0, 0);
  ctx.save();
  ctx.globalAlpha = options.alpha ?? 0.5;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, box.x * sx, box.y * sy, box.width * sx, box.height * sy);
  ctx.restore();
}
