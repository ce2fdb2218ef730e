"""Pick N subnets spread evenly over the inherited accuracy range of an accuracy dataset (eval_subnets CSV).

Sorted by accuracy (ties by the file's order), the picks are the evenly spaced ranks 0, ..., len - 1
(the lowest, the highest and N - 2 quantiles between). Writes ``arch, accuracy, rank`` (ascending accuracy).
    python pick.py <accuracy_val.csv> <picked.csv> [N=10]
"""
import csv
import sys

import numpy as np

src, dst = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
with open(src, newline="") as fh:
    rows = list(csv.DictReader(fh))
order = sorted(range(len(rows)), key=lambda i: (float(rows[i]["accuracy"]), i))
ranks = np.unique(np.round(np.linspace(0, len(rows) - 1, n)).astype(int))
with open(dst, "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["arch", "accuracy", "rank"])
    for r in ranks:
        out.writerow([rows[order[r]]["arch"], rows[order[r]]["accuracy"], int(r)])
print(f"{len(ranks)} of {len(rows)} subnets -> {dst}")
