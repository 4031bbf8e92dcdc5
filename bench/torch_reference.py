#!/usr/bin/env python3
"""PyTorch yardstick for ladon's step benchmark: trains the same model (built
from a ladon run config's [model], same layers, batch and AdamW) on constant
data and reports samples/s and peak memory as one JSON line (one per TF32 mode).

    /usr/bin/python3 bench/torch_reference.py examples/fashion_mtl.toml --threads 2
    python3 bench/torch_reference.py examples/fashion_mtl.toml --device cuda --compile --tf32 both

--tf32 on is PyTorch's default on a GPU (cuDNN may run float32 convolutions
in TF32; matmuls stay float32, their default); off forbids TF32 in both.
`both` measures on, then off, in one process: torch.compile compiles once.
PyTorch (Debian's python3-torch here, the GPU machine's own python3 there) is
a yardstick, never a ladon dependency.
"""
import argparse
import json
import os
import resource
import sys
import time
import tomllib

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_conformance import LadonModel  # noqa: E402  (same layer mapping as the conformance check)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seconds", type=float, default=5.0, help="timed duration (after 3 warm-up steps)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model where available")
    parser.add_argument("--tf32", choices=["on", "off", "both"], default="on",
                        help="on: PyTorch's defaults (TF32 convolutions); off: no TF32 anywhere (GPU only)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    model = LadonModel(config["model"]).to(args.device)
    compiled = args.compile and hasattr(torch, "compile")  # torch.compile: PyTorch 2.0 and later
    if compiled:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    c, h, w = config["model"]["input"]
    x = torch.full((args.batch, c, h, w), 0.5, device=args.device)
    losses = {
        "softmax_cross_entropy": lambda out: torch.nn.functional.cross_entropy(
            out, torch.zeros(args.batch, dtype=torch.long, device=args.device)),
        "sigmoid_binary_cross_entropy": lambda out: torch.nn.functional.binary_cross_entropy_with_logits(
            out, torch.zeros_like(out)),
        "mean_squared_error": lambda out: torch.nn.functional.mse_loss(out, torch.zeros_like(out)),
        "smooth_l1": lambda out: torch.nn.functional.smooth_l1_loss(out, torch.zeros_like(out)),
    }
    heads = [(head["name"], losses[head["loss"]]) for head in config["model"]["heads"]]

    def step():
        optimizer.zero_grad(set_to_none=True)
        outputs = model(x)
        total = sum(loss(outputs[name]) for name, loss in heads)
        total.backward()
        optimizer.step()

    for tf32 in (["on", "off"] if args.tf32 == "both" else [args.tf32]):
        print(json.dumps(measure(step, args, tf32, compiled)), flush=True)


def measure(step, args, tf32, compiled):
    """Samples/s of `step` after 3 warm-up steps, in one TF32 mode."""
    cuda = args.device.startswith("cuda")
    if cuda:
        # "on" leaves PyTorch's defaults: allow_tf32 for cuDNN, not for matmul.
        torch.backends.cudnn.allow_tf32 = tf32 == "on"
        if tf32 == "off":
            torch.backends.cuda.matmul.allow_tf32 = False
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        step()
    if cuda:
        torch.cuda.synchronize()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        step()
        steps += 1
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    result = {
        "framework": f"pytorch {torch.__version__}",
        "model": os.path.splitext(os.path.basename(args.config))[0],
        "device": args.device,
        "compiled": compiled,
        "threads": args.threads,
        "batch": args.batch,
        "samples_per_second": steps * args.batch / elapsed,
        "ms_per_step": elapsed / max(steps, 1) * 1e3,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if cuda:
        result["tf32"] = tf32
        result["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        result["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        result["peak_device_mib"] = torch.cuda.max_memory_allocated() / (1024 * 1024)
    return result


if __name__ == "__main__":
    main()
