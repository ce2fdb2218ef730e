"""Comparison of one set of subnets measured several ways (runtimes, batch sizes): latency ratios, rank
agreement, and what "fastest on one runtime" is worth on another. Usage: python compare.py <measurements dir> <device> [<device> ...]
(each <device>.csv a job=measure file of the same architectures; "runtime" in the tables: the
measurement setting each file names). Prints Markdown."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def main(folder: str, devices: list[str]) -> None:
    tables = {d: pd.read_csv(Path(folder) / f"{d}.csv").set_index("arch") for d in devices}
    archs = sorted(set.intersection(*(set(t.index) for t in tables.values())))
    lat = pd.DataFrame({d: t.loc[archs, "latency_ms"] for d, t in tables.items()})
    flops = tables[devices[0]].loc[archs, "flops"]
    base = devices[0]
    print(f"## {len(archs)} subnets measured on every runtime\n")
    print("| runtime | median ms | ratio to " + base + ": median (5-95 %) | Spearman with " + base +
          " | Spearman with FLOPs | median p99/p50 | model MB |")
    print("|---|---|---|---|---|---|---|")
    for d, t in tables.items():
        ratios = lat[d] / lat[base]
        lo, hi = ratios.quantile([0.05, 0.95])
        mb = pd.to_numeric(t.loc[archs, "model_bytes"], errors="coerce").median() / 1e6
        tail = (t.loc[archs, "p99_ms"] / t.loc[archs, "latency_ms"]).median()
        print(f"| {d} | {lat[d].median():.4g} | {ratios.median():.3g} ({lo:.3g}-{hi:.3g}) | {spearmanr(lat[d], lat[base])[0]:.3f} | "
              f"{spearmanr(lat[d], flops)[0]:.3f} | {tail:.2f} | {'' if np.isnan(mb) else f'{mb:.2f}'} |")
    print("\n## Rank agreement between runtimes (Spearman of the subnets' latencies)\n")
    print("| | " + " | ".join(devices) + " |")
    print("|---|" + "---|" * len(devices))
    for a in devices:
        print(f"| {a} | " + " | ".join(f"{spearmanr(lat[a], lat[b])[0]:.3f}" for b in devices) + " |")
    print("\n## The fastest 10 % on one runtime, on another: their median latency percentile there (0 = fastest)\n")
    k = max(1, len(archs) // 10)
    pct = lat.rank(pct=True) * 100
    print("| fastest on \\ measured on | " + " | ".join(devices) + " |")
    print("|---|" + "---|" * len(devices))
    for a in devices:
        top = lat[a].nsmallest(k).index
        print(f"| {a} | " + " | ".join(f"{pct.loc[top, b].median():.0f}" for b in devices) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
