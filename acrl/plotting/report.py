"""``acrl report``: one self-contained HTML file of one or more runs (Plotly, its JavaScript
embedded: it opens offline). Learning curves (seeds as a band, hover: step, return, seed),
the evaluations, the diagnostics, the advantage histograms, the policy/value slice where
the observation space allows one, each run's config and its videos.
"""

from __future__ import annotations

import base64
import html
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from acrl.errors import UserError
from acrl.plotting.curves import DIAGNOSTICS, seed_band
from acrl.plotting.runs import Run, group_runs, load_runs, moving_average, solved_threshold

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
MAX_VIDEO_BYTES = 20_000_000  # a run's videos embedded up to this many bytes in all


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise UserError("acrl report needs plotly: pip install 'acrl[report]'") from None
    return go


def learning_curve(runs: list[Run], target: float | None, window: int) -> Any:
    go = _plotly()
    fig = go.Figure()
    for color, (label, members) in zip(_cycle(), group_runs(runs), strict=False):
        curves = [r for r in members if r.episodes.get("return") is not None]
        curves = [r for r in curves if r.episodes["return"].size]
        for run in curves:  # every seed, thin, with its raw returns in the hover
            seed = run.config.get("seed")
            fig.add_scatter(
                x=run.episodes["timesteps"],
                y=moving_average(run.episodes["return"], window),
                mode="lines",
                line={"color": color, "width": 1 if len(curves) > 1 else 2},
                name=f"{label}, seed {seed}",
                legendgroup=label,
                showlegend=len(curves) > 1,
                customdata=np.stack(
                    [run.episodes["return"], np.full(run.episodes["return"].size, seed)], -1
                ),
                hovertemplate="step %{x}<br>mean %{y:.1f}<br>return %{customdata[0]:.1f}"
                "<br>seed %{customdata[1]}<extra></extra>",
                opacity=0.5 if len(curves) > 1 else 1.0,
            )
        if len(curves) > 1:
            _band(
                fig, curves, color, f"{label}, {window}-episode mean of {len(curves)} seeds", window
            )
        for run in members:
            steps, means = run.evaluations.get("timesteps"), run.evaluations.get("mean_return")
            if steps is not None and means is not None and steps.size:
                fig.add_scatter(
                    x=steps,
                    y=means,
                    mode="lines+markers",
                    line={"color": color, "dash": "dash"},
                    name=f"{label}, evaluation, seed {run.config.get('seed')}",
                    hovertemplate="step %{x}<br>evaluation %{y:.1f}<extra></extra>",
                )
    if target is not None:
        fig.add_hline(y=target, line_dash="dot", annotation_text=f"target {target:g}")
    fig.update_layout(
        title="learning curve", xaxis_title="environment steps", yaxis_title="episodic return"
    )
    return _legend_below(fig)


def _band(fig: Any, runs: list[Run], color: str, name: str, window: int) -> None:
    """The seeds' moving averages as a mean with a standard-deviation band (as the PNG's)."""
    curves = [(r.episodes["timesteps"], moving_average(r.episodes["return"], window)) for r in runs]
    resampled = seed_band(curves)
    if resampled is None:  # the runs do not overlap: their own lines are drawn already
        return
    grid, _, mean, std = resampled
    fig.add_scatter(x=grid, y=mean + std, mode="lines", line={"width": 0}, showlegend=False,
                    hoverinfo="skip")  # fmt: skip
    fig.add_scatter(
        x=grid, y=mean - std, mode="lines", line={"width": 0}, fill="tonexty",
        fillcolor=_rgba(color, 0.2), showlegend=False, hoverinfo="skip",
    )  # fmt: skip
    fig.add_scatter(x=grid, y=mean, mode="lines", line={"color": color, "width": 3}, name=name)


def diagnostics(runs: list[Run]) -> Any:
    go = _plotly()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=4, subplot_titles=[title for _, title in DIAGNOSTICS])
    for color, (label, members) in zip(_cycle(), group_runs(runs), strict=False):
        for i, (column, _) in enumerate(DIAGNOSTICS):
            for j, run in enumerate(members):
                if column not in run.metrics:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=run.metrics["timesteps"],
                        y=run.metrics[column],
                        mode="lines+markers" if run.metrics[column].size < 30 else "lines",
                        line={"color": color, "width": 1.2},
                        name=label,
                        legendgroup=label,
                        showlegend=i == 0 and j == 0,
                    ),
                    row=i // 4 + 1,
                    col=i % 4 + 1,
                )
    fig.update_layout(title="training diagnostics", height=650)
    return _legend_below(fig)


def advantage_histograms(runs: list[Run]) -> Any | None:
    go = _plotly()
    fig = go.Figure()
    for color, run in zip(_cycle(), runs, strict=False):
        path = run.path / "advantages.npy"
        if path.is_file():
            try:
                values = np.load(path, allow_pickle=False).ravel()
            except ValueError:  # a damaged file: no histogram for this run
                continue
            fig.add_histogram(x=values, name=str(run.path.name), marker_color=color, opacity=0.6)
    if not fig.data:
        return None
    fig.update_layout(title="the last rollout's advantages", barmode="overlay")
    return _legend_below(fig)


def policy_value_slice(run: Run) -> Any | None:
    """The slice of the run's model over its first two observation dimensions, if it has a
    flat Box observation space of at least two dimensions (else None)."""
    if not (run.path / "model.acrl").is_file():
        return None
    from acrl.algorithms.registry import load_model
    from acrl.learner.backends import torch_threads
    from acrl.plotting.policy_slice import slice_data

    try:
        with torch_threads(1):  # small forward passes: one thread is the fastest
            model = load_model(run.path, device="cpu")
            data = slice_data(model, (0, 1), resolution=41)
    except UserError:  # images, Dict spaces, one dimension, an env that cannot be made
        return None
    go = _plotly()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(data.panels), subplot_titles=[p[0] for p in data.panels])
    for i, (_, values, limits) in enumerate(data.panels):
        fig.add_trace(
            go.Heatmap(
                x=data.xs, y=data.ys, z=values, colorscale="Viridis", showscale=False,
                zmin=limits.get("vmin"), zmax=limits.get("vmax"),
            ),
            row=1, col=i + 1,
        )  # fmt: skip
    fig.update_layout(title=data.title, height=380)
    fig.update_xaxes(title_text=data.x_label)
    fig.update_yaxes(title_text=data.y_label, col=1)
    return fig


def build_report(paths: list[Path], target: float | None = None, window: int = 100) -> str:
    """The report's HTML."""
    from plotly.offline import get_plotlyjs

    _plotly()
    runs = load_runs(paths)
    if target is None:
        target = solved_threshold(runs[0].env_id)
    figures = [learning_curve(runs, target, window), diagnostics(runs)]
    figures += [f for f in (advantage_histograms(runs), policy_value_slice(runs[0])) if f]
    sections = [
        f.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{i}")
        for i, f in enumerate(figures)
    ]
    sections += [_config_section(run) for run in runs]
    sections += [v for v in (_videos(run) for run in runs) if v]
    title = html.escape(f"acrl report: {', '.join(sorted({r.env_id for r in runs}))}")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script>"
        "<style>body{font-family:sans-serif;margin:1em 2em}pre{background:#f6f6f6;"
        "padding:.5em;overflow:auto}video{max-width:480px;margin:.5em}</style></head>"
        f"<body><h1>{title}</h1>{''.join(sections)}</body></html>"
    )


def _config_section(run: Run) -> str:
    text = yaml.safe_dump(run.config, sort_keys=False)
    return f"<h2>config: {html.escape(str(run.path))}</h2><pre>{html.escape(text)}</pre>"


def _videos(run: Run) -> str:
    folder = run.path / "videos"
    if not folder.is_dir() or folder.is_symlink():
        return ""
    parts, total = [], 0
    for path in sorted(p for p in folder.glob("*.mp4") if not p.is_symlink()):
        size = path.stat().st_size
        if total + size > MAX_VIDEO_BYTES:
            break
        total += size
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(
            f"<figure><video controls src='data:video/mp4;base64,{data}'></video>"
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
        )
    return f"<h2>videos: {html.escape(str(run.path))}</h2>{''.join(parts)}" if parts else ""


def _legend_below(fig: Any) -> Any:
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    return fig


def _cycle() -> Iterator[str]:
    return itertools.cycle(COLORS)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
