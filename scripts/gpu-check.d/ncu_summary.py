#!/usr/bin/env python3
"""Reads `ncu --csv --metrics ...` output (one row per kernel and metric)
and prints one line per kernel: achieved occupancy, compute/memory
throughput, issue-slot use and duration.

    ncu_summary.py ncu.csv
"""
import csv
import sys

SHORT = {
    "sm__warps_active.avg.pct_of_peak_sustained_active": "occupancy %",
    "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed": "memory throughput %",
    "sm__inst_issued.avg.pct_of_peak_sustained_active": "issue slots %",
    "gpu__time_duration.sum": "duration",
}


def main():
    with open(sys.argv[1]) as f:
        lines = [line for line in f if line.startswith('"')]
    kernels = {}
    for row in csv.DictReader(lines):
        if row.get("Metric Name") not in SHORT:
            continue
        key = (row.get("ID", ""), row.get("Kernel Name", "?"))
        unit = row.get("Metric Unit", "")
        value = row.get("Metric Value", "")
        kernels.setdefault(key, []).append(f"{SHORT[row['Metric Name']]} {value}{'' if unit == '%' else ' ' + unit}")
    print("profile (ncu --clock-control none, fashion_mtl conv2, batch 128):")
    for (_, kernel), metrics in kernels.items():
        print(f"  {kernel}: {', '.join(metrics)}")
    if not kernels:
        print("  no kernel was profiled")


if __name__ == "__main__":
    main()
