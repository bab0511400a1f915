#!/usr/bin/env python3
"""onnxruntime (PyPI, CPU) on the peer ONNX networks: warm latency on the reference inputs.

    python3 scripts/bench/ort_native.py --peer-onnx DIR [--repeat N] [--threads N]

--threads sets onnxruntime's intra-op thread count (default: its own choice, one per core), to
compare with the CLI under RAYON_NUM_THREADS=N.
"""
import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "effnet": ("efficientnet_lite0_224_opset16.onnx", "cls_crop224_input.npy"),
    "nanodet": ("nanodet_g_416_coco_opset16.onnx", "det_input.npy"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-onnx", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    for name, (onnx, npy) in MODELS.items():
        x = np.load(ROOT / "tests/fixtures/dog" / npy)
        options = ort.SessionOptions()
        options.intra_op_num_threads = a.threads
        sess = ort.InferenceSession(str(a.peer_onnx / onnx), options, providers=["CPUExecutionProvider"])
        feeds = {sess.get_inputs()[0].name: x}
        t = time.perf_counter()
        sess.run(None, feeds)
        first = (time.perf_counter() - t) * 1e3
        ms = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            sess.run(None, feeds)
            ms.append((time.perf_counter() - t) * 1e3)
        ms.sort()
        p50, p95 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        print(f"onnxruntime {ort.__version__} cpu {name}: first {first:.1f} ms, p50 {p50:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
