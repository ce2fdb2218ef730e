"""Ranking quality of a supernet: inherited vs from-scratch accuracy of the same subnets.

Reads train_subnet multiruns of the same subnets (one per training seed; each run: metrics.json with ``{split}/acc``
(scratch), ``{split}/acc_inherited``, ``flops``; arch.txt) and writes ranking.md / ranking.csv (one row per subnet)
and scatter.png, and puts the ranking tables into README.md beside this script (block ``ranking``, through
``hwnas.report.inject``): Kendall tau and Spearman rho (scipy) between inherited accuracy and scratch accuracy (the mean over
seeds) on the test and val splits; of FLOPs with scratch accuracy (the free baseline a supernet's ranking should
beat); and, with two seeds, of the scratch accuracies of two training seeds (how reproducible the reference is).
    python analyze.py <output dir> <train_subnet sweep dir> [<sweep dir of another seed> ...]
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import kendalltau, spearmanr

from hwnas.plots import save_figure
from hwnas.report import inject

out, sweeps = Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]


def short(arch: str) -> str:
    """r<res> k<kernels> e<expands>: the active blocks' digits, stages separated by '.', so depth = digits per stage."""
    a = json.loads(arch)
    stages = [range(4 * s, 4 * s + d) for s, d in enumerate(a["d"])]
    return (f"r{a['r']} k" + ".".join("".join(str(a["ks"][i]) for i in st) for st in stages)
            + " e" + ".".join("".join(str(a["e"][i]) for i in st) for st in stages))


def read(sweep):
    found = {}
    for m in sorted(sweep.glob("*/metrics.json"), key=lambda p: int(p.parent.name)):
        found[(m.parent / "arch.txt").read_text().strip()] = {"index": int(m.parent.name), **json.loads(m.read_text())}
    return found


seeds = [read(s) for s in sweeps]
common = [a for a in seeds[0] if all(a in s for s in seeds[1:])]  # subnets finished in every seed
if len(common) < 3:
    sys.exit(f"{len(common)} subnets finished in every run dir of {', '.join(map(str, sweeps))}; need >= 3")
runs = []
for arch in common:
    r = {"arch": arch, **seeds[0][arch]}
    for split in ("test", "val"):  # scratch accuracy: the mean over training seeds
        r[f"{split}/acc_seeds"] = [s[arch][f"{split}/acc"] for s in seeds]
        r[f"{split}/acc"] = float(np.mean(r[f"{split}/acc_seeds"]))
    runs.append(r)


def col(key):
    return np.array([r[key] for r in runs], dtype=float)


stats = []
for split in ("test", "val"):
    inh, scr = col(f"{split}/acc_inherited"), col(f"{split}/acc")
    stats.append((f"inherited vs scratch, {split}", kendalltau(inh, scr), spearmanr(inh, scr)))
for split in ("test", "val"):
    stats.append((f"FLOPs vs scratch, {split}", kendalltau(col("flops"), col(f"{split}/acc")),
                  spearmanr(col("flops"), col(f"{split}/acc"))))
stats.append(("FLOPs vs inherited, test", kendalltau(col("flops"), col("test/acc_inherited")),
              spearmanr(col("flops"), col("test/acc_inherited"))))
if len(seeds) > 1:
    for split in ("test", "val"):
        a, b = (np.array([r[f"{split}/acc_seeds"][k] for r in runs]) for k in (0, 1))
        stats.append((f"scratch, first vs second training seed, {split}", kendalltau(a, b), spearmanr(a, b)))

order = np.argsort(col("test/acc_inherited"))
fields = ["index", "arch_short", "mflops", "params", "test_inherited", "test_scratch", "test_scratch_seeds", "val_inherited", "val_scratch",
          "rank_inherited", "rank_scratch", "arch"]
rank_inh = np.argsort(np.argsort(-col("test/acc_inherited"), kind="stable"), kind="stable") + 1
rank_scr = np.argsort(np.argsort(-col("test/acc"), kind="stable"), kind="stable") + 1
table = []
for i in order:
    r = runs[i]
    table.append({"index": r["index"], "arch_short": short(r["arch"]), "mflops": r["flops"] / 1e6,
                  "params": int(r["params"]), "test_inherited": r["test/acc_inherited"], "test_scratch": r["test/acc"],
                  "test_scratch_seeds": " / ".join(f"{v:.2f}" for v in r["test/acc_seeds"]),
                  "val_inherited": r["val/acc_inherited"], "val_scratch": r["val/acc"],
                  "rank_inherited": int(rank_inh[i]), "rank_scratch": int(rank_scr[i]), "arch": r["arch"]})
out.mkdir(parents=True, exist_ok=True)
with open(out / "ranking.csv", "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=fields)
    w.writeheader()
    w.writerows(table)
lines = [f"## Ranking of {len(runs)} subnets: inherited (supernet, BN recalibrated) vs trained from scratch "
         f"(mean over {len(seeds)} training seed{'s' * (len(seeds) > 1)})", "",
         "| pair | Kendall tau | p | Spearman rho | p |", "|---|---|---|---|---|"]
for name, kt, sp in stats:
    lines.append(f"| {name} | {kt.statistic:.3f} | {kt.pvalue:.3g} | {sp.statistic:.3f} | {sp.pvalue:.3g} |")
lines += ["", "| # | subnet | MFLOPs | params | test inherited | test scratch | (per seed) | val inherited | val scratch "
          "| rank inh. | rank scratch |", "|" + "---|" * 11]
for t in table:
    lines.append(f"| {t['index']} | `{t['arch_short']}` | {t['mflops']:.2f} | {t['params']} | {t['test_inherited']:.2f} "
                 f"| {t['test_scratch']:.2f} | {t['test_scratch_seeds']} | {t['val_inherited']:.2f} | {t['val_scratch']:.2f} "
                 f"| {t['rank_inherited']} | {t['rank_scratch']} |")
(out / "ranking.md").write_text("\n".join(lines) + "\n")
inject(Path(__file__).resolve().parent / "README.md", "ranking", "\n".join(lines))

fig = Figure(figsize=(6, 4.8))
ax = fig.add_subplot(1, 1, 1)
x, y, f = col("test/acc_inherited"), col("test/acc"), col("flops") / 1e6
per_seed = np.array([r["test/acc_seeds"] for r in runs])
if per_seed.shape[1] > 1:  # the training seeds' range
    ax.errorbar(x, y, yerr=[y - per_seed.min(1), per_seed.max(1) - y], fmt="none", ecolor="grey", lw=0.8, zorder=2)
pts = ax.scatter(x, y, c=f, cmap="viridis", s=40, zorder=3)
fig.colorbar(pts, ax=ax, label="MFLOPs")
for r, xi, yi in zip(runs, x, y):
    ax.annotate(str(r["index"]), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=8)
kt, sp = stats[0][1], stats[0][2]
ax.set_xlabel("inherited from the supernet, test top-1 % (BN recalibrated)")
ax.set_ylabel(f"trained from scratch, test top-1 % (mean of {len(seeds)} seed{'s' * (len(seeds) > 1)})")
ax.set_title(f"{len(runs)} subnets: Kendall tau {kt.statistic:.2f}, Spearman {sp.statistic:.2f}"
             + (" (bars: range over seeds)" if per_seed.shape[1] > 1 else ""), fontsize=10)
ax.grid(alpha=0.3)
save_figure(fig, out / "scatter.png")
print("\n".join(lines[:4 + len(stats)]))
