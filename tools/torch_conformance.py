#!/usr/bin/env python3
"""Checks ladon against PyTorch on the same weights.

Loads a ladon checkpoint (safetensors) into the equivalent torch.nn model,
built from the run config stored in the checkpoint's metadata, with
load_state_dict: ladon's tensor names and layouts are PyTorch's. Runs
`ladon predict` on the same input and compares every head's outputs.

    /usr/bin/python3 tools/torch_conformance.py --ladon build/ladon \
        --checkpoint runs/latest/checkpoints/step-000001404.safetensors

Exits 1 when any head differs by more than --tolerance (default 1e-4).
PyTorch (Debian's python3-torch) is a yardstick here, never a dependency of
ladon itself.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import tomllib

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        buffer = f.read()
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I64": np.int64, "U8": np.uint8}
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(buffer[begin:end], dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata


class Dense(nn.Linear):
    """ladon's dense reads its input flattened, like flatten + nn.Linear."""

    def forward(self, x):
        return super().forward(torch.flatten(x, 1))


class Flatten(nn.Module):
    def forward(self, x):
        return torch.flatten(x, 1)


class Activation(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def pair(value):
    return tuple(value) if isinstance(value, list) else (value, value)


def build_layer(spec, shape):
    """Returns (module or None for the ops that join inputs, output shape [C, H, W])."""
    op = spec["op"]
    c, h, w = shape
    if op == "conv2d":
        k, s, p = pair(spec.get("kernel", 1)), pair(spec.get("stride", 1)), pair(spec.get("padding", 0))
        s = tuple(1 if v == 0 else v for v in s)
        module = nn.Conv2d(c, spec["out_channels"], k, s, p, bias=spec.get("bias", True))
        return module, [spec["out_channels"], (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1]
    if op in ("max_pool2d", "avg_pool2d"):
        k, s, p = pair(spec.get("kernel", 1)), pair(spec.get("stride", 0)), pair(spec.get("padding", 0))
        s = tuple(k[i] if s[i] == 0 else s[i] for i in range(2))
        module = nn.MaxPool2d(k, s, p) if op == "max_pool2d" else nn.AvgPool2d(k, s, p, count_include_pad=True)
        return module, [c, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1]
    if op == "dense":
        return Dense(c * h * w, spec["out_features"], bias=spec.get("bias", True)), [spec["out_features"], 1, 1]
    if op == "flatten":
        return Flatten(), [c * h * w, 1, 1]
    if op == "relu":
        return nn.ReLU(), shape
    if op == "leaky_relu":
        return nn.LeakyReLU(spec.get("negative_slope", 0.01)), shape
    if op == "sigmoid":
        return nn.Sigmoid(), shape
    if op == "tanh":
        return nn.Tanh(), shape
    if op == "dropout":
        return nn.Dropout(spec.get("probability", 0.5)), shape
    if op == "batch_norm":
        return nn.BatchNorm2d(c, eps=spec.get("epsilon", 1e-5), momentum=spec.get("momentum", 0.1)), shape
    if op == "softmax":
        return nn.Softmax(dim=1), shape
    if op == "global_avg_pool":
        return nn.AdaptiveAvgPool2d(1), [c, 1, 1]
    if op in ("add", "concat", "multiply", "mixture"):
        return None, None
    raise ValueError(f"unknown op {op}")


class LadonModel(nn.Module):
    """The model a ladon run config describes, with ladon's parameter names."""

    def __init__(self, model):
        super().__init__()
        self.plan = []  # (sequence, index, op, input names, output name)
        shapes = {"input": list(model["input"])}
        self.shapes = shapes  # every tensor's [C, H, W]
        self.trunk = nn.ModuleList()
        self.heads = nn.ModuleDict()
        previous = "input"
        for i, spec in enumerate(model.get("trunk", [])):
            previous = self._add(self.trunk, "trunk", i, spec, previous, shapes, f"trunk.{i}")
        trunk_out = previous
        self.head_outputs = []
        for head in model["heads"]:
            layers = nn.ModuleList()
            self.heads[head["name"]] = layers
            previous = head.get("input") or trunk_out
            for j, spec in enumerate(head["layers"]):
                previous = self._add(layers, head["name"], j, spec, previous, shapes, f"heads.{head['name']}.{j}")
            self.head_outputs.append((head["name"], previous))

    def _add(self, modules, sequence, index, spec, previous, shapes, position):
        inputs = spec.get("inputs") or [previous]
        name = spec.get("name") or position
        module, shape = build_layer(spec, shapes[inputs[0]])
        if spec["op"] == "add":
            shape = shapes[inputs[0]]
        if spec["op"] == "concat":
            shape = [sum(shapes[i][0] for i in inputs)] + shapes[inputs[0]][1:]
        if spec["op"] == "multiply":  # the larger input's: a [C] gate scales [C, H, W]
            shape = max((shapes[i] for i in inputs), key=lambda s: s[0] * s[1] * s[2])
        if spec["op"] == "mixture":  # the experts'
            shape = shapes[inputs[1]]
        modules.append(module if module is not None else nn.Identity())
        self.plan.append((modules, index, spec["op"], inputs, name))
        shapes[name] = shape
        return name

    def forward(self, x):
        values = {"input": x}

        def shaped(name):  # as ladon holds it: dense outputs are [N, F, 1, 1]
            return values[name].reshape(x.shape[0], *self.shapes[name])

        for modules, index, op, inputs, name in self.plan:
            if op == "add":
                values[name] = sum(values[i] for i in inputs)
            elif op == "concat":
                values[name] = torch.cat([values[i] for i in inputs], dim=1)
            elif op == "multiply":
                values[name] = shaped(inputs[0]) * shaped(inputs[1])
            elif op == "mixture":
                gate = shaped(inputs[0]).reshape(x.shape[0], -1, 1, 1, 1)
                experts = torch.stack([shaped(i) for i in inputs[1:]], dim=1)
                values[name] = (gate * experts).sum(dim=1)
            else:
                values[name] = modules[index](values[inputs[0]])
        return {head: torch.flatten(values[out], 1) for head, out in self.head_outputs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ladon", required=True, help="the ladon binary")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--input", help="x.npy (N x C x H x W); default: 64 random samples")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    tensors, metadata = read_safetensors(args.checkpoint)
    config = tomllib.loads(metadata["config"])
    model = LadonModel(config["model"])
    state = {k: v for k, v in tensors.items() if not k.startswith(("optimizer.", "task_weights."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.eval()

    with tempfile.TemporaryDirectory() as work:
        input_path = args.input
        if input_path is None:
            rng = np.random.default_rng(0)
            x = rng.random((64, *config["model"]["input"]), dtype=np.float32)
            input_path = os.path.join(work, "x.npy")
            np.save(input_path, x)
        x = np.load(input_path)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        out_dir = os.path.join(work, "out")
        subprocess.run([args.ladon, "predict", "--checkpoint", args.checkpoint, "--input", input_path,
                        "--output", out_dir], check=True, stdout=subprocess.DEVNULL)
        torch.set_num_threads(os.cpu_count() or 1)
        with torch.no_grad():
            reference = model(torch.from_numpy(x))
        worst = 0.0
        for head, expected in reference.items():
            got = np.load(os.path.join(out_dir, f"{head}.npy"))
            diff = float(np.max(np.abs(got - expected.numpy()))) if got.size else 0.0
            scale = float(np.max(np.abs(expected.numpy()))) if got.size else 0.0
            worst = max(worst, diff)
            print(f"{head:12s} {tuple(got.shape)}  max |ladon - torch| = {diff:.3g}  (max |output| {scale:.3g})")
        print(f"worst difference {worst:.3g}, tolerance {args.tolerance:g}: {'ok' if worst <= args.tolerance else 'FAIL'}")
        sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
