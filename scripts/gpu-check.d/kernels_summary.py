#!/usr/bin/env python3
"""Reads bench_kernels' JSON (--benchmark_out) and puts each CUDA row beside
the H200's ceilings and the vendor's time in both math modes.

    kernels_summary.py kernels.json            a few lines for summary.txt
    kernels_summary.py kernels.json --table    every row, as a Markdown table

Ceilings (H200 SXM): 67 TFLOP/s FP32, 495 TF32 and 990 BF16 dense by the
datasheet (790 BF16 measured on such a machine), 4.3 TB/s for a
device-to-device copy (measured). ladon's FP32 conv and dense rows are put
against FP32's and TF32's, its tensor-core rows (families ending _tf32,
_bf16) against their own math's (bench_kernels' pct_of_peak); memory-bound
rows against the copy's. vs_vendor_bf16: the BF16 rows' third vendor call,
cuDNN on BF16 tensors or cublasGemmEx on BF16 operands.
vs_vendor is the vendor's time / ladon's with TF32 off (CUDNN_FMA_MATH,
CUBLAS_PEDANTIC_MATH), vs_vendor_tf32 with the math PyTorch users get
(CUDNN_DEFAULT_MATH, CUBLAS_TF32_TENSOR_OP_MATH): above 1, ladon is faster.
"""
import json
import math
import sys

FP32_TFLOPS, TF32_TFLOPS, BF16_TFLOPS, COPY_TBS = 67.0, 495.0, 990.0, 4.3


def ceiling(family):
    """The family's math and its ceiling in TFLOP/s."""
    if family.endswith("_bf16"):
        return "BF16", BF16_TFLOPS
    return ("TF32", TF32_TFLOPS) if family.endswith("_tf32") else ("FP32", FP32_TFLOPS)


def rows(path):
    with open(path) as f:
        data = json.load(f)
    for row in data["benchmarks"]:
        name = row["name"].removesuffix("/manual_time")
        if not name.startswith("cuda/") or row.get("error_occurred"):
            continue
        family = name.split("/")[1]
        yield name.removeprefix("cuda/"), family, row


def geometric_mean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def table(path):
    print("| row | ms | TFLOP/s or TB/s | % of ceiling | vs vendor (TF32 off) | vs vendor (TF32 on) | vs vendor (BF16) |")
    print("|---|---|---|---|---|---|---|")
    for name, family, row in rows(path):
        ms = row["real_time"] / 1e3 if row.get("time_unit") == "us" else row["real_time"]
        if "GFLOP/s" in row and family.endswith(("_tf32", "_bf16")):
            rate = row["GFLOP/s"] / 1e3
            math_name, peak = ceiling(family)
            share = f"{100 * rate / peak:.1f} % {math_name}"
            rate_text = f"{rate:.2f} TFLOP/s"
        elif "GFLOP/s" in row:
            rate = row["GFLOP/s"] / 1e3
            share = f"{100 * rate / FP32_TFLOPS:.0f} % FP32, {100 * rate / TF32_TFLOPS:.1f} % TF32"
            rate_text = f"{rate:.2f} TFLOP/s"
        else:
            rate = row.get("GB/s", 0.0) / 1e3
            share = f"{100 * rate / COPY_TBS:.0f} % copy"
            rate_text = f"{rate:.2f} TB/s"
        fp32 = row.get("vs_vendor")
        tf32 = row.get("vs_vendor_tf32", fp32)
        bf16 = f"{row['vs_vendor_bf16']:.2f}" if "vs_vendor_bf16" in row else "-"
        print(f"| {name} | {ms:.3f} | {rate_text} | {share} | {fp32 or 0:.2f} | {tf32 or 0:.2f} | {bf16} |")


def summary(path):
    families = {}
    for _, family, row in rows(path):
        families.setdefault(family, []).append(row)
    print("kernels (geometric mean over rows; vs vendor above 1: ladon faster):")
    print(f"  {'family':<30} {'rows':>4} {'best':>13} {'of ceiling':>11} {'vs FP32':>8} {'vs TF32':>8} {'vs BF16':>8}")
    for family, members in families.items():
        if "GFLOP/s" in members[0]:
            best = max(r["GFLOP/s"] for r in members) / 1e3
            math_name, peak = ceiling(family)
            best_text, share = f"{best:.1f} TFLOP/s", f"{100 * best / peak:.0f} % {math_name}"
        else:
            best = max(r.get("GB/s", 0.0) for r in members) / 1e3
            best_text, share = f"{best:.2f} TB/s", f"{100 * best / COPY_TBS:.0f} % copy"
        fp32 = geometric_mean(r.get("vs_vendor") for r in members)
        tf32 = geometric_mean(r.get("vs_vendor_tf32") for r in members)
        bf16 = geometric_mean(r.get("vs_vendor_bf16") for r in members)
        tf32_text = "-" if math.isnan(tf32) else f"{tf32:.2f}"
        bf16_text = "-" if math.isnan(bf16) else f"{bf16:.2f}"
        print(f"  {family:<30} {len(members):>4} {best_text:>13} {share:>11} {fp32:>8.2f} {tf32_text:>8} {bf16_text:>8}")
    print(f"  ceilings: {FP32_TFLOPS:.0f} TFLOP/s FP32, {TF32_TFLOPS:.0f} TF32, {BF16_TFLOPS:.0f} BF16 dense (790"
          f" measured), {COPY_TBS} TB/s copy; memory-bound rows have one vendor mode")


if __name__ == "__main__":
    (table if "--table" in sys.argv[2:] else summary)(sys.argv[1])
