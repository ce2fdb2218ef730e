"""A whole-space NAS-Bench-201 benchmark fitted on the first rows of the data root's tables.

A search on NB201 may reach any of its 15,625 cells, while the fixture root lists 300 of them, so
the tests of search *mechanics* run on accuracy and latency tables that cover every cell: two
least-squares models fitted on the first ``FIXTURE_ROWS`` rows of the data root's real tables
(NB201 indices 0-299, a uniform sample of the space: the official indices are a shuffle), written
out for all 15,625 cells. They are fitted on the same rows in fixture and in full mode, so these
tests behave the same on both roots; the tests of figures on the real tables need the full data.

- latency (ms), HELP's ``pixel3`` and ``gold_6226``: additive per (edge, op), i.e. least squares on
  the 30-d one-hot encoding plus a constant (a lookup table of the 6 edges fitted to the listed
  cells), floored at the fastest listed cell. ``estimator=flops`` is as rough a model of it as of
  the phone (one cost per FLOP misses what skip and pooling edges cost): a 95 % underestimate
  quantile of about a third on both.
- CIFAR-10 accuracy (%): a cell whose output is cut off from its input gets the listed mean of such
  cells (10 %, chance); any other cell ``100 - exp(w . onehot + c)``, its log error rate additive
  per (edge, op), fitted on the listed connected cells.

Against the full tables these give Spearman's rho 0.94 (pixel3), 0.99 (gold_6226) and 0.85
(CIFAR-10) over all 15,625 cells. Files: ``latency.csv`` (``arch, pixel3, gold_6226``: use as
``device=table device.path=... device.column=pixel3``) and ``accuracy.csv`` (``arch, cifar10``:
``accuracy=table accuracy.path=... accuracy.column=cifar10``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fixture_data import DATA_ROOT, FIXTURE_ROWS
from hwnas.data.tables import load_nb201_accuracy, load_nb201_latency
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import EDGES, OPS

LATENCY_COLUMNS = ("pixel3", "gold_6226")
ACCURACY_COLUMN = "cifar10"


@dataclass(frozen=True)
class Surrogate:
    latency_csv: Path
    accuracy_csv: Path

    def overrides(self, device: str = "pixel3") -> list[str]:
        """``job=search`` overrides: NB201 with this surrogate as device and accuracy table."""
        return ["search_space=nb201", "device=table", f"device.path={self.latency_csv}", f"device.column={device}",
                *self.accuracy_overrides()]

    def accuracy_overrides(self) -> list[str]:
        """The surrogate as the ``accuracy`` group: a table that lists every cell."""
        return ["accuracy=table", f"accuracy.path={self.accuracy_csv}", f"accuracy.column={ACCURACY_COLUMN}"]


def _genomes(archs) -> np.ndarray:
    """``(n, 6)`` op indices (into ``OPS``) of cells, edges in canonical order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2."""
    return np.array([[OPS.index(op) for op in a.ops] for a in archs], dtype=np.int64)


def connected(genomes: np.ndarray) -> np.ndarray:
    """Whether each cell's output (node 3) is reached from its input through ops other than ``none``."""
    live = genomes != OPS.index("none")
    r1 = live[:, 0]
    r2 = live[:, 1] | (r1 & live[:, 2])
    return live[:, 3] | (r1 & live[:, 4]) | (r2 & live[:, 5])


def _features(genomes: np.ndarray) -> np.ndarray:
    """One-hot (edge, op) and a constant."""
    x = np.zeros((len(genomes), genomes.shape[1] * len(OPS) + 1))
    x[np.arange(len(genomes))[:, None], np.arange(genomes.shape[1]) * len(OPS) + genomes] = 1.0
    x[:, -1] = 1.0
    return x


def for_session(tmp_path_factory) -> Surrogate:
    """The surrogate of this test session (built by the first test that asks, in its base temp dir)."""
    return build(tmp_path_factory.getbasetemp() / "nb201_surrogate")


def build(directory: Path, data_dir: Path = DATA_ROOT) -> Surrogate:
    """Write the surrogate tables into ``directory`` (reused when already there)."""
    directory = Path(directory)
    out = Surrogate(directory / "latency.csv", directory / "accuracy.csv")
    if out.latency_csv.exists() and out.accuracy_csv.exists():
        return out
    directory.mkdir(parents=True, exist_ok=True)
    space = get_space("nb201")
    cells = np.array(list(itertools.product(range(len(OPS)), repeat=len(EDGES))), dtype=np.int64)
    x_all, live_all = _features(cells), connected(cells)
    template = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|"
    strings = [template.format(*(OPS[i] for i in g)) for g in cells]
    assert space.to_string(space.from_string(strings[-1])) == strings[-1]  # the canonical form

    lat = load_nb201_latency(data_dir)
    x = _features(_genomes(space.from_strings(lat.archs[:FIXTURE_ROWS])))
    latency = {}
    for column in LATENCY_COLUMNS:
        y = lat.column(column)[:FIXTURE_ROWS]
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        latency[column] = np.maximum(x_all @ coef, y.min())

    acc = load_nb201_accuracy(data_dir)
    genomes = _genomes(space.from_strings(acc.archs[:FIXTURE_ROWS]))
    y, live = acc.column(ACCURACY_COLUMN)[:FIXTURE_ROWS], connected(genomes)
    coef = np.linalg.lstsq(_features(genomes)[live], np.log(100.0 - y[live]), rcond=None)[0]
    accuracy = np.where(live_all, 100.0 - np.exp(x_all @ coef), y[~live].mean())

    _write(out.latency_csv, ["arch", *LATENCY_COLUMNS], strings, [latency[c] for c in LATENCY_COLUMNS])
    _write(out.accuracy_csv, ["arch", ACCURACY_COLUMN], strings, [accuracy])
    return out


def _write(path: Path, header: list[str], strings: list[str], columns: list[np.ndarray]) -> None:
    rows = [",".join([s, *(repr(float(c[i])) for c in columns)]) for i, s in enumerate(strings)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join([",".join(header), *rows]) + "\n")
    tmp.replace(path)
