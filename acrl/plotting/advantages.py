"""The histogram of the last rollout's advantages, which training saves in its run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from acrl.plotting.curves import save

HISTOGRAM_SIZE = (7.0, 4.5)  # inches at 100 dpi: 700 x 450 pixels


def advantage_histogram(advantages: np.ndarray, title: str) -> Figure:
    """Histogram of GAE advantages (before any normalization), with mean and std marked."""
    fig = Figure(figsize=HISTOGRAM_SIZE, dpi=100)
    ax = fig.add_subplot()
    finite = advantages[np.isfinite(advantages)]
    ax.hist(finite, bins=min(60, max(10, finite.size // 20)), color="C0", alpha=0.8)
    if finite.size:
        mean, std = float(finite.mean()), float(finite.std())
        ax.axvline(mean, color="black", lw=1.5, label=f"mean {mean:.3g}")
        ax.axvspan(mean - std, mean + std, color="grey", alpha=0.2, label=f"± std {std:.3g}")
        ax.legend(fontsize="small")
    ax.set_xlabel("advantage (GAE, before normalization)")
    ax.set_ylabel("transitions")
    ax.set_title(f"{title}: {finite.size} transitions of the last rollout")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_advantage_histogram(run_dir: Path, title: str) -> Path | None:
    """advantages.png beside the advantages.npy that training left in ``run_dir`` (None if
    training left none)."""
    source = run_dir / "advantages.npy"
    if not source.is_file():
        return None
    out = run_dir / "advantages.png"
    figure = advantage_histogram(np.load(source), title)
    save(figure, out, dpi=figure.dpi)  # atomically: a symlink there is replaced
    return out
