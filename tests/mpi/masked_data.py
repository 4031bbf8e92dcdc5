#!/usr/bin/env python3
"""Writes the data of the data-parallel tests as NPY files into WORK:

    masked_data.py WORK SEED [--bright-mask]

512 1x12x12 uint8 images (x.npy); `shape` (4 classes, from the image's
halves) with a mask leaving about a third of its labels missing; `bright`
(binary), with such a mask too under --bright-mask. Missing labels make the
ranks see different present counts per head, which is where naive averaging
of the ranks' gradients goes wrong (the N·P_r/P weighting)."""
import sys

import numpy as np


def main():
    work, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(seed)
    n = 512
    x = (rng.random((n, 1, 12, 12)) * 255).astype(np.uint8)
    flat = x.reshape(n, -1).astype(np.float64)
    np.save(f"{work}/x.npy", x)
    np.save(f"{work}/shape.npy", (flat[:, :72].mean(1) > flat[:, 72:].mean(1)).astype(np.int64) * 2
            + (flat[:, ::2].mean(1) > 127).astype(np.int64))
    np.save(f"{work}/shape_mask.npy", (rng.random(n) > 0.35).astype(np.uint8))
    np.save(f"{work}/bright.npy", (flat.mean(1) > 127).astype(np.float32))
    if "--bright-mask" in sys.argv[3:]:
        np.save(f"{work}/bright_mask.npy", (rng.random(n) > 0.3).astype(np.uint8))


if __name__ == "__main__":
    main()
