"""Choose the ridge head's recipe on source devices only, and show the test figures beside it.

For each NASFLAT partition and seed (the job's sample selection: 20 random architectures), every
candidate recipe is scored two ways:

- ``val``: leave-one-source-device-out. Each train device of the partition in turn is the target,
  fitted on its 20 reference latencies with the other train devices as sources, Spearman over all
  architectures; mean over held-out devices. Test devices are never touched.
- ``test``: the partition's protocol (fit on the 20 test-device samples, train devices as sources).

The recipe with the best ``val`` pooled over all partitions and seeds is the job's default
(``transfer.adapt.features``); ``test`` is printed beside it, never used to choose.

    HWNAS_DATA=../shared/data python experiments/predictor_transfer/stacking_recipes.py > \\
        experiments/predictor_transfer/stacking_recipes.md
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from scipy.stats import spearmanr

from hwnas.data.root import resolve_data_dir
from hwnas.devices.specs import descriptor_for
from hwnas.jobs.transfer import HELP_TABLES
from hwnas.predictors.stacking import StackedPredictor, arch_blocks, feature_sets
from hwnas.predictors.transfer import select_samples
from hwnas.spaces.registry import get_space

TASKS = ["nb201_ND", "fbnet_FD", "fbnet_F1", "fbnet_F2", "fbnet_F3", "fbnet_F4", "fbnet_FA"]
SEEDS = (0, 1, 2)
K = 20
CONF = Path(__file__).resolve().parents[2] / "conf" / "task"


def _recipes() -> dict:
    single = {"+".join(f): [f] for f in feature_sets()}
    return {**single, f"mean of all {len(single)}": [m[0] for m in single.values()],
            "mean of the 7 without genes": [m[0] for m in single.values() if "genes" not in m[0]],
            "mean of those with costs": [m[0] for m in single.values() if "costs" in m[0]],
            "mean of those with costs, without genes": [m[0] for m in single.values()
                                                        if "costs" in m[0] and "genes" not in m[0]]}


def _kind(device: str) -> str:
    return descriptor_for(device).kind


def _score(recipe, space, archs, blocks, src, ref, target_ms) -> float:
    """Spearman over all ``archs`` of ``recipe`` fitted on the ``ref`` rows of ``target_ms``."""
    model = StackedPredictor(recipe).fit(space, [archs[i] for i in ref], target_ms[ref], src[ref],
                                         {f: b[ref] for f, b in blocks.items()})
    return float(spearmanr(model.predict_with(space, archs, src, blocks), target_ms).statistic)


def main() -> None:
    root = resolve_data_dir()
    recipes = _recipes()
    val = {r: [] for r in recipes}
    family = {r: [] for r in recipes}
    test = {r: {} for r in recipes}
    tables, spaces = {}, {}
    for task in TASKS:
        cfg = OmegaConf.load(CONF / f"{task}.yaml").task
        if cfg.space not in tables:
            spaces[cfg.space] = get_space(cfg.space)
            wide = HELP_TABLES[cfg.space](root)
            archs = spaces[cfg.space].from_strings(wide.archs)
            tables[cfg.space] = (wide, archs, arch_blocks(spaces[cfg.space], archs))
        wide, archs, blocks = tables[cfg.space]
        space = spaces[cfg.space]
        src = np.stack([wide.column(d) for d in cfg.train_devices], axis=1)
        for seed in SEEDS:
            ref = select_samples(spaces[cfg.space], archs, K, "random", seed)
            for name, feats in recipes.items():
                held = [_score(feats, space, archs, blocks, np.delete(src, h, axis=1), ref, src[:, h])
                        for h in range(src.shape[1])]
                val[name].append(np.mean(held))
                kinds = [_kind(d) for d in cfg.train_devices]
                other = [[j for j in range(src.shape[1]) if kinds[j] != kinds[h]] for h in range(src.shape[1])]
                held = [_score(feats, space, archs, blocks, src[:, other[h]], ref, src[:, h])
                        for h in range(src.shape[1]) if other[h]]
                if held:
                    family[name].append(np.mean(held))
                tests = [_score(feats, space, archs, blocks, src, ref, wide.column(d)) for d in cfg.test_devices]
                test[name].setdefault(task, []).append(np.mean(tests))
    best = max(recipes, key=lambda r: np.mean(family[r]))
    published = {t: OmegaConf.load(CONF / f"{t}.yaml").task.published.nasflat for t in TASKS}
    out = sys.stdout
    out.write("## Ridge head recipes: chosen on source devices only, test figures beside them\n\n")
    out.write("Each row is one recipe of `transfer.adapt.head=ridge` (a feature set, or the geometric mean of several "
              "fits). **val, other kinds** (the criterion): each train device of a partition in turn is the target, "
              "fitted on its 20 reference latencies with the train devices *of other kinds* as sources (a held-out "
              "GPU sees no GPU: the partitions transfer across kinds of hardware), Spearman over all architectures; "
              "mean over held-out devices, partitions and seeds 0-2 (FA has only GPUs and adds nothing). **val**: "
              "the same with every other train device as a source. Test columns: the partition's protocol (20 "
              "samples per test device, mean Spearman over test devices, mean over seeds 0-2), never used to "
              "choose.\n\nCommand: `HWNAS_DATA=../shared/data python experiments/predictor_transfer/"
              "stacking_recipes.py > experiments/predictor_transfer/stacking_recipes.md`\n\n")
    out.write("| recipe | val, other kinds | val | " + " | ".join(TASKS) + " |\n|---|---|---|" + "---|" * len(TASKS) + "\n")
    for name in sorted(recipes, key=lambda r: -np.mean(family[r])):
        mark = " (chosen)" if name == best else ""
        out.write(f"| {name}{mark} | {np.mean(family[name]):.3f} | {np.mean(val[name]):.3f} | "
                  + " | ".join(f"{np.mean(test[name][t]):.3f}" for t in TASKS) + " |\n")
    out.write("| NASFLAT (published) | | | " + " | ".join(f"{published[t]:.3f}" for t in TASKS) + " |\n")


if __name__ == "__main__":
    main()
