"""Profile a search space: sample architectures, build every network, record its cost model
(parameters, FLOPs, peak activation memory) in archs.csv."""
from __future__ import annotations

import numpy as np
from hydra.utils import instantiate
from tqdm import tqdm

from hwnas.io import write_csv
from hwnas.options import count, seed


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    n = count(cfg.profile.n, "profile.n", 1, why="architectures to sample and build")
    archs = space.sample(n, seed=seed(cfg.seed, "seed"))
    rows = []
    for arch in tqdm(archs, desc=f"cost of {space.name} archs", unit="arch"):
        c = space.cost(arch)
        rows.append([space.to_string(arch), c.params, c.flops, c.peak_activation_bytes])
    write_csv(ctx.path("archs.csv"), ["arch", "params", "flops", "peak_activation_bytes"], rows)
    flops = np.array([r[2] for r in rows], dtype=float)
    params = np.array([r[1] for r in rows], dtype=float)
    peak = np.array([r[3] for r in rows], dtype=float)
    ctx.tracker.log_table("archs", ["arch", "params", "flops", "peak_activation_bytes"], rows)
    print(f"{space.name}: {len(rows)} architectures; MFLOPs median {np.median(flops) / 1e6:.1f} "
          f"[{flops.min() / 1e6:.1f}, {flops.max() / 1e6:.1f}], params median {np.median(params) / 1e6:.2f} M, "
          f"peak activation median {np.median(peak) / 2**20:.2f} MiB; table: {ctx.path('archs.csv')}")
    return {
        "n_archs": len(rows),
        "space_size": float(space.size()),
        "mflops_median": float(np.median(flops) / 1e6),
        "mflops_min": float(flops.min() / 1e6),
        "mflops_max": float(flops.max() / 1e6),
        "params_m_median": float(np.median(params) / 1e6),
        "peak_activation_mib_median": float(np.median(peak) / 2**20),
    }
