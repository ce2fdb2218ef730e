"""The study's picks measured once more, later, to tell measurement noise from estimator error.

    python experiments/search_local_cpu/remeasure.py archs   # runs/picks_all.csv: every distinct pick
    (run.sh then measures them: job=measure measure.archs=runs/picks_all.csv)
    python experiments/search_local_cpu/remeasure.py table   # README block 'remeasure'

For each search sweep (a row of the search table): picks over budget at verification (the search's
own measurement: median of 20 runs) and at the re-measurement (median, and fastest of 20 runs:
interference only adds time), and the median ratio of the two measurements.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hwnas.io import write_csv
from hwnas.report import inject

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
PICKS = RUNS / "picks_all.csv"
REMEASURED = RUNS / "remeasure" / "picks.csv"


def all_picks() -> pd.DataFrame:
    frames = []
    for f in sorted((RUNS / "search").glob("*/*/picks.csv")):
        p = pd.read_csv(f)
        p = p[p["arch"].notna() & (p["arch"] != "")]
        frames.append(p.assign(sweep=f.parent.parent.name, seed=f.parent.name))
    return pd.concat(frames, ignore_index=True)


def main(mode: str) -> None:
    picks = all_picks()
    if mode == "archs":
        archs = sorted(set(picks["arch"]))
        write_csv(PICKS, ["arch"], [[a] for a in archs])
        print(f"{len(archs)} distinct picks -> {PICKS}")
        return
    again = pd.read_csv(REMEASURED).groupby("arch")[["latency_ms", "min_ms"]].median()
    picks["again_ms"] = picks["arch"].map(again["latency_ms"])
    picks["again_min_ms"] = picks["arch"].map(again["min_ms"])
    rows = []
    for sweep, g in picks.groupby("sweep", sort=True):
        over = g["true_latency_ms"] > g["budget_ms"]
        over_again = g["again_ms"] > g["budget_ms"]
        rows.append([sweep, len(g), int(over.sum()), int(over_again.sum()), int((over & over_again).sum()),
                     int((g["again_min_ms"] > g["budget_ms"]).sum()),
                     f"{np.median(g['again_ms'] / g['true_latency_ms']):.3f}",
                     f"{np.max(g['again_ms'] / g['budget_ms'] - 1) * 100:.1f}"])
    head = ["search sweep", "picks", "over budget (verify)", "over budget (re-measured)", "over in both",
            "over budget (re-measured, fastest of 20 runs)",
            "median re-measured / verify", "worst re-measured overshoot %"]
    md = ("## Every pick measured again (median of 20 runs), after all searches\n\n"
          "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
          + "".join("| " + " | ".join(map(str, r)) + " |\n" for r in rows))
    inject(HERE / "README.md", "remeasure", md)
    print(md)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "table")
