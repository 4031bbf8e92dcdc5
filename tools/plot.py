#!/usr/bin/env python3
"""Renders a ladon run's curves to PNG: one figure per task, training loss by
step and every evaluation metric by step.

    /usr/bin/python3 tools/plot.py runs/latest            # writes runs/latest/curves.png
    /usr/bin/python3 tools/plot.py runs/latest -o out.png

Reads RUN_DIR/metrics.jsonl (one JSON object per line: step, epoch, split,
task, metric, value). Needs Debian's python3-matplotlib.
"""
import argparse
import collections
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("-o", "--output", help="PNG path (default RUN_DIR/curves.png)")
    args = parser.parse_args()
    path = os.path.join(args.run_dir, "metrics.jsonl")
    series = collections.defaultdict(lambda: ([], []))  # (task, split, metric) -> (steps, values)
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    key = (r["task"], r["split"], r["metric"])
                    series[key][0].append(r["step"])
                    series[key][1].append(r["value"])
                except (ValueError, KeyError) as e:
                    sys.exit(f"plot: {path}:{number}: not a metrics record ({e})")
    except OSError as e:
        sys.exit(f"plot: {path}: {e.strerror}")
    tasks = sorted({task for task, _, _ in series})
    if not tasks:
        sys.exit(f"plot: {path}: no metrics yet")
    figure, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        loss_axis, metric_axis = axes[row]
        for (t, split, metric), (steps, values) in sorted(series.items()):
            if t != task:
                continue
            axis = loss_axis if metric == "loss" else metric_axis
            axis.plot(steps, values, marker="o" if split == "test" else None, markersize=3,
                      label=f"{split} {metric}")
        loss_axis.set_title(f"{task}: loss")
        metric_axis.set_title(f"{task}: test metrics")
        for axis in (loss_axis, metric_axis):
            axis.set_xlabel("step")
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize=8)
    figure.tight_layout()
    output = args.output or os.path.join(args.run_dir, "curves.png")
    figure.savefig(output, dpi=90)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
