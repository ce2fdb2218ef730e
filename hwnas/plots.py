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


def _finish(fig: Figure, ax, path, xlabel: str, ylabel: str, title: str, legend: bool) -> Path:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if legend:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def line_plot(path: str | os.PathLike, series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], *,
              xlabel: str, ylabel: str, logx: bool = False, logy: bool = False, title: str = "") -> Path:
    """One line per ``(label, x, y mean, y std)`` with error bars (e.g. a learning curve over seeds)."""
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, x, y, err) in enumerate(series):
        order = np.argsort(x)
        ax.errorbar(np.asarray(x)[order], np.asarray(y)[order], yerr=np.asarray(err)[order], marker="o", ms=4,
                    capsize=3, color=f"C{i % 10}", label=label or None)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for on, axis, scale in ((logx, ax.xaxis, ax.set_xscale), (logy, ax.yaxis, ax.set_yscale)):
        if on:  # plain numbers at the decades, no crowded minor labels
            scale("log")
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
    return _finish(fig, ax, path, xlabel, ylabel, title, any(label for label, *_ in series))


def predicted_vs_true_plot(path: str | os.PathLike, groups: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
                           xlabel: str = "true latency (ms)", ylabel: str = "predicted latency (ms)",
                           title: str = "") -> Path:
    """Log-log scatter of ``(label, true, predicted)`` per group with the y = x line."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    values = np.concatenate([np.concatenate([t, p]) for _, t, p in groups]) if groups else np.ones(1)
    values = values[np.isfinite(values) & (values > 0)]
    for i, (label, true, pred) in enumerate(groups):
        ax.scatter(true, pred, s=4, alpha=0.35, color=f"C{i % 10}", label=label or None, rasterized=True)
    if len(values):
        lo, hi = float(values.min()) / 1.1, float(values.max()) * 1.1
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--", label="y = x")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _finish(fig, ax, path, xlabel, ylabel, title, True)


def fronts_plot(path: str | os.PathLike, groups: Sequence[tuple[str, Sequence[tuple[np.ndarray, np.ndarray]]]], *,
                xlabel: str = "predicted latency (ms)", ylabel: str = "accuracy (%)", title: str = "") -> Path:
    """Accuracy-latency fronts overlaid: one colour per group, one staircase per run of the group."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, fronts) in enumerate(groups):
        for j, (lat, acc) in enumerate(fronts):
            ok = np.isfinite(lat) & np.isfinite(acc)
            _staircase(ax, np.asarray(lat)[ok], np.asarray(acc)[ok], color=f"C{i % 10}", lw=1.0, alpha=0.7,
                       label=(label or None) if j == 0 else None)
            ax.scatter(np.asarray(lat)[ok], np.asarray(acc)[ok], s=6, color=f"C{i % 10}", alpha=0.7)
    return _finish(fig, ax, path, xlabel, ylabel, title, any(label for label, _ in groups))
