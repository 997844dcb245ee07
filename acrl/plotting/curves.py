"""Learning curves and training diagnostics of one or more runs.

One run: its raw episode returns and their moving average. Several runs of one config
(seeds): the mean of their moving averages with a shaded band (standard deviation or 95%
confidence interval of the mean), each seed as a thin line. Several configs: one colour each.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from acrl.plotting.runs import Run, group_runs, moving_average
from acrl.run.atomic import write_atomic

CURVE_SIZE = (9.0, 5.5)  # inches; at DPI, 900 x 550 pixels
DIAGNOSTICS_SIZE = (16.0, 8.0)  # 1600 x 800 pixels
DPI = 100
BANDS = ("std", "ci95")
DIAGNOSTICS = (
    ("policy_loss", "policy loss"),
    ("value_loss", "value loss"),
    ("entropy", "entropy"),
    ("grad_norm", "gradient norm (before clipping)"),
    ("explained_variance", "explained variance"),
    ("steps_per_second", "steps / s"),
    ("learning_rate", "learning rate"),
    ("ep_length_mean", "episode length (last 100)"),
)
GRID_POINTS = 200
LEGEND_WIDTH = 60  # characters per legend line


def learning_curve(
    runs: list[Run], target: float | None = None, window: int = 100, band: str = "std"
) -> Figure:
    """Episodic return against environment steps, with ``target`` as a dashed line."""
    fig = Figure(figsize=CURVE_SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for color, (label, members) in zip(_colors(), group_runs(runs), strict=False):
        curves = [
            (r.episodes["timesteps"], moving_average(r.episodes["return"], window))
            for r in members
            if r.episodes.get("return") is not None and r.episodes["return"].size
        ]
        if not curves:
            ax.plot([], [], color=color, label=f"{label}: no finished episode")
            continue
        if len(curves) == 1:
            raw = members[0].episodes
            ax.scatter(raw["timesteps"], raw["return"], s=4, color=color, alpha=0.25, lw=0)
            ax.plot(*curves[0], color=color, lw=2, label=f"{label}, {window}-episode mean")
        else:
            _mean_with_band(ax, curves, color, f"{label}, {window}-episode mean", band)
        _evaluations(ax, members, color, f"{label}, evaluation (deterministic)")
    if target is not None:
        ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("episodic return")
    ax.set_title(_title(runs, "learning curve"))
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    return fig


def _evaluations(ax: Axes, members: list[Run], color: str, label: str) -> None:
    """The runs' evaluations (EvalCallback, ``--eval-every``): each seed's means as markers
    on a dashed line; labelled once."""
    for run in members:
        steps, means = run.evaluations.get("timesteps"), run.evaluations.get("mean_return")
        if steps is None or means is None or not steps.size:
            continue
        ax.plot(steps, means, color=color, ls="--", marker="o", ms=4, lw=1, label=label)
        label = "_nolegend_"


def diagnostics(runs: list[Run], band: str = "std") -> Figure:
    """Losses, gradient norm, explained variance, speed and learning rate in one figure."""
    fig = Figure(figsize=DIAGNOSTICS_SIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    groups = group_runs(runs)
    for ax, (column, title) in zip(axes, DIAGNOSTICS, strict=True):
        for color, (label, members) in zip(_colors(), groups, strict=False):
            curves = [
                (r.metrics["timesteps"], r.metrics[column])
                for r in members
                if column in r.metrics and np.isfinite(r.metrics[column]).any()
            ]
            if len(curves) == 1:
                x, y = curves[0]
                keep = np.isfinite(y)
                few = keep.sum() < 30  # a few rows: show them as points too
                ax.plot(x[keep], y[keep], color=color, lw=1.2, marker="o" if few else None, ms=3)
                ax.plot([], [], color=color, label=label)
            elif curves:
                _mean_with_band(ax, curves, color, label, band)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("environment steps", fontsize="small")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize="small")
    fig.suptitle(_title(runs, "training diagnostics"))
    _legend_below(fig, axes[0])
    return fig


def _legend_below(fig: Figure, ax: Axes) -> None:
    """``ax``'s legend under the plots, its labels wrapped: it never covers a curve, and the
    constrained layout keeps it on the canvas however many runs it names."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    wrapped = [textwrap.fill(label, LEGEND_WIDTH) for label in labels]
    columns = 2 if len(handles) > 1 and max(map(len, labels)) <= LEGEND_WIDTH * 2 // 3 else 1
    fig.legend(handles, wrapped, loc="outside lower center", ncols=columns, fontsize="small")


def save_curves(
    runs: list[Run], out: Path, target: float | None, window: int = 100, band: str = "std"
) -> tuple[Path, Path]:
    """The learning curve at ``out`` and the diagnostics beside it as NAME-diagnostics.png."""
    curve = save(learning_curve(runs, target, window, band), out)
    return curve, save(diagnostics(runs, band), out.with_name(f"{out.stem}-diagnostics.png"))


def save(fig: Figure, path: Path, dpi: float = DPI) -> Path:
    """``fig`` as a PNG at ``path``, written atomically: a symlink there is replaced, never
    written through."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    write_atomic(path, buffer.getvalue())
    return path


def seed_band(
    curves: list[tuple[np.ndarray, np.ndarray]], band: str = "std"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Curves (steps, values) resampled on the grid of steps they all cover: the grid, each
    curve on it, their mean and the band's half-width (standard deviation, or the 95%
    confidence interval of the mean); None if they do not overlap."""
    cleaned = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in curves]
    cleaned = [(x, y) for x, y in cleaned if x.size]
    low = max(x[0] for x, _ in cleaned)
    high = min(x[-1] for x, _ in cleaned)
    if high <= low:
        return None
    grid = np.linspace(low, high, GRID_POINTS)
    ys = np.stack([np.interp(grid, x, y) for x, y in cleaned])
    spread = ys.std(axis=0, ddof=1)
    if band == "ci95":
        spread = 1.96 * spread / np.sqrt(len(ys))
    return grid, ys, ys.mean(axis=0), spread


def _mean_with_band(
    ax: Axes, curves: list[tuple[np.ndarray, np.ndarray]], color: str, label: str, band: str
) -> None:
    """Curves resampled on a common step grid: thin lines, their mean and a shaded band."""
    resampled = seed_band(curves, band)
    if resampled is None:  # the runs do not overlap: show them one by one
        for x, y in curves:
            ax.plot(x[np.isfinite(y)], y[np.isfinite(y)], color=color, lw=1)
        ax.plot([], [], color=color, label=label)
        return
    grid, ys, mean, spread = resampled
    for y in ys:
        ax.plot(grid, y, color=color, lw=0.5, alpha=0.35)
    ax.plot(grid, mean, color=color, lw=2, label=f"{label} ± {band}")
    ax.fill_between(grid, mean - spread, mean + spread, color=color, alpha=0.2, lw=0)


def _colors() -> list[str]:
    return [f"C{i}" for i in range(10)]


def _title(runs: list[Run], what: str) -> str:
    envs = sorted({r.env_id for r in runs})
    return f"{', '.join(envs)}: {what}"
