#!/usr/bin/env python3
"""The batch baseline: onnxruntime (PyPI, CPU) over a folder of images in a Python loop, with the
reference preprocessing (tests/fixtures README: bilinear, half-pixel centres, f32) in numpy, and
the classifier's softmax + top-5 or the detector's decode + per-class NMS. Prints images/second.

    python3 scripts/bench/ort_batch.py --peer-onnx DIR --images DIR [--threads N]
"""
import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

CLS_MODEL = "efficientnet_lite0_224_opset16.onnx"
DET_MODEL = "nanodet_g_416_coco_opset16.onnx"
DET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)  # B, G, R
DET_STD = np.array([57.375, 57.12, 58.395], np.float32)


def axis(in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.maximum((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (src - i0.astype(np.float32)).astype(np.float32)


def resize(rgb, out_h, out_w):
    """[H, W, 3] u8 → [out_h, out_w, 3] f32, the reference's bilinear resize."""
    img = rgb.astype(np.float32)
    y0, y1, fy = axis(img.shape[0], out_h)
    x0, x1, fx = axis(img.shape[1], out_w)
    fx, fy = fx[None, :, None], fy[:, None, None]
    rows0, rows1 = img[y0], img[y1]
    top = (1 - fx) * rows0[:, x0] + fx * rows0[:, x1]
    bot = (1 - fx) * rows1[:, x0] + fx * rows1[:, x1]
    return (1 - fy) * top + fy * bot


def classifier_input(rgb):
    h, w = rgb.shape[:2]
    short, long = min(h, w), max(h, w)
    long2 = (2 * long * 256 + short) // (2 * short)
    nh, nw = (256, long2) if h <= w else (long2, 256)
    img = resize(rgb, nh, nw)
    top, left = (nh - 224) // 2, (nw - 224) // 2
    img = img[top : top + 224, left : left + 224]
    return ((img - 127) / 128).transpose(2, 0, 1)[None].astype(np.float32)


def detector_input(rgb):
    img = resize(rgb, 416, 416)[:, :, ::-1]  # BGR
    return ((img - DET_MEAN) / DET_STD).transpose(2, 0, 1)[None].astype(np.float32)


def classify(sess, rgb):
    logits = sess.run(None, {"input": classifier_input(rgb)})[0][0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = np.argsort(-p)[:5]
    return [(int(i), float(p[i])) for i in top]


def detect(sess, rgb):
    h, w = rgb.shape[:2]
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": detector_input(rgb)})))
    boxes, scores, classes = [], [], []
    for stride in (8, 16, 32):
        cls, reg = outs[f"cls{stride}"][0], outs[f"reg{stride}"][0]
        g = 416 // stride
        k = np.arange(g * g)
        cx, cy = (k % g + 0.5) * stride, (k // g + 0.5) * stride
        r = reg.reshape(-1, 4, 11)
        r = np.exp(r - r.max(-1, keepdims=True))
        d = (r / r.sum(-1, keepdims=True)) @ np.arange(11, dtype=np.float32) * stride
        b = np.clip(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], 1), 0, 416)
        cell, c = np.nonzero(cls > 0.05)
        boxes.append(b[cell])
        scores.append(cls[cell, c])
        classes.append(c)
    boxes, scores, classes = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
    kept = []
    for c in np.unique(classes):
        idx = np.nonzero(classes == c)[0]
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        while idx.size:
            i, idx = idx[0], idx[1:]
            kept.append(i)
            bi, bo = boxes[i], boxes[idx]
            iw = np.clip(np.minimum(bi[2], bo[:, 2]) - np.maximum(bi[0], bo[:, 0]), 0, None)
            ih = np.clip(np.minimum(bi[3], bo[:, 3]) - np.maximum(bi[1], bo[:, 1]), 0, None)
            inter = iw * ih
            union = (bi[2] - bi[0]) * (bi[3] - bi[1]) + (bo[:, 2] - bo[:, 0]) * (bo[:, 3] - bo[:, 1]) - inter
            idx = idx[inter <= 0.6 * np.maximum(union, 1e-12)]
    kept = sorted(kept, key=lambda i: -scores[i])[:100]
    sx, sy = w / 416, h / 416
    return [(int(classes[i]), float(scores[i]), boxes[i] * [sx, sy, sx, sy]) for i in kept]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-onnx", type=Path, required=True)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    a = ap.parse_args()
    files = sorted(p for p in a.images.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    for name, model, run in (("classify", CLS_MODEL, classify), ("detect", DET_MODEL, detect)):
        sess = ort.InferenceSession(str(a.peer_onnx / model), options, providers=["CPUExecutionProvider"])
        start = time.perf_counter()
        for f in files:
            run(sess, np.asarray(Image.open(f).convert("RGB")))
        seconds = time.perf_counter() - start
        print(
            f"onnxruntime {ort.__version__} cpu {name}: {len(files)} images in {seconds:.1f} s "
            f"({len(files) / seconds:.1f} images/s), threads {a.threads or 'default'}"
        )


if __name__ == "__main__":
    main()
