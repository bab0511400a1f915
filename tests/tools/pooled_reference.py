#!/usr/bin/env python3
"""Reference pooled features and feature maps of EfficientNet-Lite0 for the fixtures.

A second path, independent of sightline: onnxruntime (CPU, float32) on the peer ONNX export of
the same network (`../shared/models/peer-onnx/efficientnet_lite0_224_opset16.onnx`), fed the
reference input tensors (`tests/fixtures/<image>/cls_crop224_input.npy`), with two of its
intermediate values made outputs: the ReLU6'd 1×1 head convolution (`n49_r`, [1,1280,7,7]) and
the flattened global average pool (`flat`, [1,1280]). Writes `cls_crop224_pooled.npy` next to
each input, and `cls_crop224_map.npy` for `dog` (the only map the tests use). Run once, by hand; the files are committed, and
tests/native.rs compares `ImageClassifier::embed` and the activation maps with them.

    python3 tests/tools/pooled_reference.py --onnx PATH
"""
import argparse
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ["chelsea", "coffee", "dog", "person"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", type=Path, required=True)
    a = ap.parse_args()
    model = onnx.load(str(a.onnx))
    for name in ["n49_r", "flat"]:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for image in IMAGES:
        folder = ROOT / "tests" / "fixtures" / image
        x = np.load(folder / "cls_crop224_input.npy")
        logits, fmap, pooled = sess.run(["logits", "n49_r", "flat"], {sess.get_inputs()[0].name: x})
        reference = np.load(folder / "cls_crop224_logits.npy")
        print(f"{image}: logits vs reference max |d| = {np.abs(logits - reference).max():.2e}")
        np.save(folder / "cls_crop224_pooled.npy", pooled.astype(np.float32))
        if image == "dog":
            np.save(folder / "cls_crop224_map.npy", fmap.astype(np.float32))


if __name__ == "__main__":
    main()
