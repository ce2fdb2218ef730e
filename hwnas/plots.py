"""Plots a run writes beside its CSVs.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no display, no global backend
switch) and written atomically as PNG.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hwnas.io import atomic_write_bytes


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def _staircase(ax, latency: np.ndarray, accuracy: np.ndarray, **style) -> None:
    order = np.argsort(latency)
    ax.step(np.asarray(latency)[order], np.asarray(accuracy)[order], where="post", **style)


def _zoom(ax, budgets: Sequence[float], points: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Show the budgets' range: latency up to 1.5x the largest budget, accuracy of the points from a
    quarter of the smallest budget on (networks far below the budgets, e.g. NB201's 10 % cells,
    would flatten the plot)."""
    if not len(budgets):
        return
    xmax = 1.5 * max(budgets)
    ax.set_xlim(0, xmax)
    values = [np.asarray(acc)[(np.asarray(lat) >= 0.25 * min(budgets)) & (np.asarray(lat) <= xmax)
                              & np.isfinite(acc)] for lat, acc in points]
    values = np.concatenate(values) if values else np.zeros(0)
    if len(values):
        span = max(float(values.max() - values.min()), 1.0)
        ax.set_ylim(float(values.min()) - 0.1 * span, float(values.max()) + 0.1 * span)


def pareto_plot(path: str | os.PathLike, front_latency: np.ndarray, front_accuracy: np.ndarray,
                budgets: Sequence[float], pick_latency: np.ndarray, pick_accuracy: np.ndarray, *,
                true_front: tuple[np.ndarray, np.ndarray] | None = None,
                verified: tuple[np.ndarray, np.ndarray] | None = None,
                latency_label: str = "predicted latency (ms)", title: str = "") -> Path:
    """Accuracy vs latency: the found front, the picks per budget, budgets as vertical lines.

    ``verified`` adds the front re-measured on the device (true latency), ``true_front`` the
    front of the whole space where it is known.
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    if true_front is not None and len(true_front[0]):
        _staircase(ax, true_front[0], true_front[1], color="0.6", lw=1.2, label="true front")
    if len(front_latency):
        _staircase(ax, front_latency, front_accuracy, color="C0", lw=1.0, alpha=0.6)
        ax.scatter(front_latency, front_accuracy, s=14, color="C0", label=f"found front ({len(front_latency)})")
    if verified is not None and np.isfinite(verified[0]).any():
        ax.scatter(verified[0], verified[1], s=14, marker="x", color="C2", label="found front, true latency")
    ok = np.isfinite(pick_latency) & np.isfinite(pick_accuracy)
    if ok.any():
        ax.scatter(np.asarray(pick_latency)[ok], np.asarray(pick_accuracy)[ok], s=70, marker="*", color="C3",
                   zorder=5, label="pick per budget")
    for i, b in enumerate(budgets):
        ax.axvline(b, color="C3", ls=":", lw=0.8, label="latency budgets" if i == 0 else None)
    _zoom(ax, budgets, [(front_latency, front_accuracy), (pick_latency, pick_accuracy), *([true_front] if true_front else [])])
    ax.set_xlabel(latency_label)
    ax.set_ylabel("accuracy (%)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)
