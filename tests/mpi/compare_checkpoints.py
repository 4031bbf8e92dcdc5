#!/usr/bin/env python3
"""Compares two ladon checkpoints (safetensors) tensor by tensor.

usage: compare_checkpoints.py A.safetensors B.safetensors [relative_tolerance [max|l2|bits]]

Each tensor must have the same name, shape and dtype in both, and differ by at
most `tolerance` relative to the tensor's own scale: max|a - b| / max|b|
(norm `max`, the default) or ||a - b||_2 / ||b||_2 (norm `l2`); `bits`
asks for the same bytes in every tensor (the tolerance is then ignored). An element-wise
relative test would fail on weights that pass through zero. Prints the worst
tensor and exits 1 on a mismatch.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_bytes,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_bytes])
    body = data[8 + header_bytes :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors, header.get("__metadata__", {})


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    tolerance = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
    norm = sys.argv[4] if len(sys.argv) > 4 else "max"
    if norm not in ("max", "l2", "bits"):
        print(f"unknown norm {norm!r}; expected max, l2 or bits")
        return 2
    a, _ = read_safetensors(a_path)
    b, _ = read_safetensors(b_path)
    if sorted(a) != sorted(b):
        print(f"different tensors: {sorted(set(a) ^ set(b))}")
        return 1
    if norm == "bits":
        differing = [name for name in sorted(a)
                     if a[name].shape != b[name].shape or a[name].tobytes() != b[name].tobytes()]
        print(f"{len(a)} tensors, {len(differing)} with other bits{': ' + ', '.join(differing) if differing else ''}: "
              f"{'MISMATCH' if differing else 'ok'}")
        return 1 if differing else 0
    worst_name, worst = None, -1.0
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            print(f"{name}: shape {a[name].shape} vs {b[name].shape}")
            return 1
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if norm == "max":
            scale = np.max(np.abs(y)) if y.size else 0.0
            difference = np.max(np.abs(x - y)) if y.size else 0.0
        else:
            scale, difference = np.linalg.norm(y), np.linalg.norm(x - y)
        relative = difference / scale if scale > 0 else difference
        if relative > worst:
            worst_name, worst = name, relative
    verdict = "ok" if worst <= tolerance else "MISMATCH"
    print(f"{len(a)} tensors, worst {norm} relative difference {worst:.3g} ({worst_name}), "
          f"tolerance {tolerance:g}: {verdict}")
    return 0 if worst <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
