#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpus (fuzz/corpus/<target>/seed-*). Needs the weights
(scripts/fetch_weights.py), the reference fixtures, and Pillow + NumPy for the image and head seeds.

The weights seeds are real files cut short: the real header fields and the first tensors the
loader reads, so the fuzzer starts past the safetensors parser, in the dequantisation and shape
checks. Inputs the fuzzer found are kept beside the seeds under their SHA-1 names.
"""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
HEADER_KEYS = ("format", "format_version", "model", "variant", "batchnorm")


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0] : v["data_offsets"][1]]) for k, v in header.items()}
    return meta, tensors


def write_safetensors(meta, tensors):
    header, blobs, offset = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, data) in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def weights_seeds(target, model, prefixes, other_model=None):
    out = CORPUS / target
    for variant in ("int8", "f16", "f32"):
        meta, tensors = read_safetensors(ROOT / "models" / f"{model}.{variant}.safetensors")
        meta = {k: meta[k] for k in HEADER_KEYS}
        chosen = [(k, tensors[k]) for p in prefixes for k in sorted(tensors) if k.startswith(p + ".") or k == p]
        (out / f"seed-{variant}-{meta['batchnorm']}.safetensors").write_bytes(write_safetensors(meta, chosen))
        if variant == "f32":
            # A file from before the header existed: read as f32.
            (out / "seed-f32-no-header.safetensors").write_bytes(write_safetensors(None, chosen))
        if variant == "int8":
            bad = dict(meta, model=other_model)
            (out / "seed-int8-other-model.safetensors").write_bytes(write_safetensors(bad, chosen[:3]))
            bad = dict(meta, variant="int4")
            (out / "seed-int4.safetensors").write_bytes(write_safetensors(bad, chosen[:3]))


def png_interlaced(rgb):
    """An Adam7-interlaced 8-bit RGB PNG (Pillow writes none)."""
    h, w, _ = rgb.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_seeds():
    out = CORPUS / "decode_image"
    src = Image.open(ROOT / "tests/fixtures/images/chelsea.png").convert("RGB")
    small = src.resize((24, 16))

    def save(name, image, fmt, **kw):
        buf = io.BytesIO()
        image.save(buf, fmt, **kw)
        (out / f"seed-{name}").write_bytes(buf.getvalue())

    save("rgb.png", small, "PNG")
    save("rgba.png", small.convert("RGBA"), "PNG")
    save("gray.png", small.convert("L"), "PNG")
    save("gray-alpha.png", small.convert("LA"), "PNG")
    save("palette.png", small.convert("P"), "PNG")
    save("palette-trns.png", small.convert("P"), "PNG", transparency=0)
    save("1bit.png", small.convert("1"), "PNG")
    save("gray16.png", small.convert("I;16"), "PNG")
    save("1x1.png", src.resize((1, 1)), "PNG")
    save("1x40.png", src.resize((1, 40)), "PNG")
    save("40x1.png", src.resize((40, 1)), "PNG")
    (out / "seed-interlaced.png").write_bytes(png_interlaced(np.asarray(src.resize((17, 13)))))
    save("baseline420.jpg", small, "JPEG", quality=75)
    save("baseline444.jpg", src.resize((17, 13)), "JPEG", quality=90, subsampling=0)
    save("422.jpg", small, "JPEG", quality=60, subsampling=1)
    save("progressive.jpg", small, "JPEG", quality=75, progressive=True)
    save("optimized.jpg", small, "JPEG", quality=50, optimize=True)
    save("gray.jpg", small.convert("L"), "JPEG", quality=75)
    save("cmyk.jpg", small.convert("CMYK"), "JPEG", quality=75)
    save("restart.jpg", src.resize((40, 24)), "JPEG", quality=75, restart_marker_blocks=2)
    save("1x1.jpg", src.resize((1, 1)), "JPEG")


OPTIONS = [
    "{}",
    '{"maxResults": 3}',
    '{"topK": 2, "maxResults": 2}',
    '{"topK": 2, "maxResults": 3}',
    '{"resize": "stretch", "maxResults": 1000}',
    '{"resize": "fit"}',
    '{"topk": 3}',
    '{"scoreThreshold": 0.5, "iouThreshold": 0.45, "maxResults": 10, '
    '"categoryAllowlist": ["dog", "cat"], "categoryDenylist": ["person"]}',
    '{"categoryAllowlist": null, "categoryDenylist": ["traffic light", "hair drier"]}',
    '{"categoryAllowlist": []}',
    '{"categoryAllowlist": ["unicorn"]}',
    '{"scoreThreshold": 1e40, "iouThreshold": -0.0}',
    '{"maxResults": 18446744073709551615}',
    '{"maxResults": -1, "scoreThreshold": "0.5"}',
    '{"threshold": 0.5, "extra": {"a": [1, 2, {"b": null}], "c": "\\u00e9\\ud83d\\ude00"}}',
    '{"maxResults": 1, "maxResults": 2}',
    "[5, \"crop\"]",
]


def options_seeds():
    for i, text in enumerate(OPTIONS):
        (CORPUS / "options" / f"seed-{i:02}.json").write_text(text)


def nms_header(grid, stride_index, score, iou, cap, max_results, start=0, dropped=255):
    return (
        bytes([(grid - 1) | (stride_index << 3)])
        + struct.pack("<ffHHBBB", score, iou, cap, max_results, start, dropped, 0)
    )


def nms_seeds():
    out = CORPUS / "decode_nms"
    fixture = ROOT / "tests/fixtures/dog"
    for stride, grid, (r0, c0), (score, cap) in [(32, 13, (2, 2), (0.05, 1000)), (8, 52, (20, 20), (0.2, 3))]:
        cls = np.load(fixture / f"det_cls{stride}.npy").reshape(grid, grid, 80)
        reg = np.load(fixture / f"det_reg{stride}.npy").reshape(grid, grid, 44)
        cells = np.concatenate([cls, reg], axis=2)[r0 : r0 + 8, c0 : c0 + 8].astype("<f4")
        header = nms_header(8, {8: 0, 16: 1, 32: 2}[stride], score, 0.6, cap, 100, dropped=16)
        (out / f"seed-dog-stride{stride}.bin").write_bytes(header + cells.tobytes())
    special = struct.pack("<6f", float("nan"), float("inf"), float("-inf"), 1.0, 0.9, -0.0)
    (out / "seed-special-values.bin").write_bytes(nms_header(2, 3, 0.5, 0.5, 4, 10, start=1) + special)
    (out / "seed-nan-thresholds.bin").write_bytes(
        nms_header(1, 0, float("nan"), float("nan"), 1, 1) + struct.pack("<2f", 0.99, 0.5)
    )
    (out / "seed-all-pass.bin").write_bytes(nms_header(3, 1, -1.0, 0.0, 100, 1000) + struct.pack("<f", 0.5))


if __name__ == "__main__":
    for target in ("weights_classifier", "weights_detector", "decode_image", "options", "decode_nms"):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)
    weights_seeds(
        "weights_classifier", "efficientnet-lite0", ["_conv_stem", "_bn0", "_blocks.0"], other_model="nanodet-g-416"
    )
    weights_seeds(
        "weights_detector",
        "nanodet-g-416",
        ["backbone.stages.0", "backbone.stages.2.in_conv"],
        other_model="efficientnet-lite0",
    )
    image_seeds()
    options_seeds()
    nms_seeds()
