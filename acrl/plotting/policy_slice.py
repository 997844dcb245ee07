"""Heatmaps of a policy and its critic over a 2-D slice of the observation space.

Two observation dimensions vary over a grid; the others stay at fixed values (zeros unless
given). Panels: the probability of each action (discrete) or the mean of each action
dimension (continuous), then the critic's value. A recurrent policy's are those of an
episode's first step (its state zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from matplotlib.figure import Figure

from acrl.algorithms.base import Agent
from acrl.config.limits import FLOAT_BYTES, check_fits
from acrl.envs import EpisodeStarts
from acrl.errors import UserError

PANEL_SIZE = (4.2, 3.6)  # inches per panel at 100 dpi
OBS_NAMES = {
    "CartPole-v1": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Acrobot-v1": ("cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"),
    "MountainCar-v0": ("position", "velocity"),
    "MountainCarContinuous-v0": ("position", "velocity"),
    "Pendulum-v1": ("cos θ", "sin θ", "angular velocity"),
    "LunarLander-v3": (
        "x",
        "y",
        "x velocity",
        "y velocity",
        "angle",
        "angular velocity",
        "left leg contact",
        "right leg contact",
    ),
}
ACTION_NAMES = {
    "CartPole-v1": ("push left", "push right"),
    "Acrobot-v1": ("torque -1", "torque 0", "torque +1"),
    "MountainCar-v0": ("accelerate left", "no push", "accelerate right"),
    "LunarLander-v3": ("nothing", "left engine", "main engine", "right engine"),
}


def check_dims(model: Agent, dims: Sequence[int]) -> int:
    """The observation size, after checking that ``dims`` are two distinct dimensions of it."""
    space = model.observation_space
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise UserError(f"--policy-slice needs a flat Box observation space, not {space}")
    size = int(space.shape[0])
    if len(dims) != 2 or dims[0] == dims[1]:
        raise UserError(f"--dims needs two different dimensions, got {','.join(map(str, dims))}")
    for d in dims:
        if not 0 <= d < size:
            raise UserError(f"observation dimension {d} is out of range: observations have {size}")
    return size


def check_grid(model: Agent, resolution: int) -> None:
    """Refuse a grid whose observations, activations and panels cannot fit in memory."""
    config = model.policy.config
    hidden = config.pi_arch if config.shared_trunk else config.pi_arch + config.vf_arch
    per_point = FLOAT_BYTES * (model.policy.obs_dim + 2 * sum(hidden) + 4 * _n_panels(model))
    check_fits(
        f"a policy slice of --resolution {resolution} ({resolution**2:,} grid points)",
        per_point * resolution**2,
        "lower --resolution (the figure shows about 400 points per axis)",
    )


def _n_panels(model: Agent) -> int:
    space = model.action_space
    if isinstance(space, spaces.Discrete):
        return int(space.n) + 1
    return int(np.prod(space.shape or (1,))) + 1


def visited_ranges(
    model: Agent, dims: Sequence[int], episodes: int = 3, seed: int = 0
) -> list[tuple[float, float]]:
    """Ranges of ``dims`` that the deterministic policy visits, padded by 10%."""
    env = model.make_env(1, seed=seed)
    seen: list[np.ndarray] = []
    try:
        obs, _ = env.reset(seed=seed)
        finished = 0
        state = None  # a recurrent policy's, zeroed where an episode starts
        starts = EpisodeStarts(env)
        while finished < episodes and len(seen) < 5000:
            seen.append(np.asarray(obs)[0])
            action, state = model.predict(
                obs, state=state, episode_start=starts.starts, deterministic=True
            )
            obs, _, terminated, truncated, _ = env.step(action)
            finished += int(starts.step(terminated, truncated)[0])
    finally:
        env.close()
    visited = np.stack(seen)
    out = []
    for d in dims:
        low, high = float(visited[:, d].min()), float(visited[:, d].max())
        pad = 0.1 * (high - low) or 1.0
        out.append((low - pad, high + pad))
    return out


@dataclass(frozen=True)
class Slice:
    """A policy/value slice's data: the grid's axes, and (title, values, colour limits) per
    panel; what the matplotlib figure and the HTML report draw."""

    xs: np.ndarray
    ys: np.ndarray
    panels: list
    x_label: str
    y_label: str
    title: str


def slice_data(
    model: Agent,
    dims: Sequence[int],
    fixed: Sequence[float] | None = None,
    ranges: Sequence[tuple[float, float]] | None = None,
    resolution: int = 101,
) -> Slice:
    """The policy and value over a grid of two observation dimensions, the others fixed
    (``fixed``, default zeros); ``ranges`` default to the ranges the policy visits."""
    size = check_dims(model, dims)
    check_grid(model, resolution)
    base = np.zeros(size, dtype=np.float32) if fixed is None else np.asarray(fixed, np.float32)
    if base.shape != (size,):
        raise UserError(f"--fixed needs {size} values (one per observation dimension)")
    if ranges is None:
        ranges = visited_ranges(model, dims)
    xs = np.linspace(*ranges[0], resolution, dtype=np.float32)
    ys = np.linspace(*ranges[1], resolution, dtype=np.float32)
    grid = np.tile(base, (resolution * resolution, 1))
    gx, gy = np.meshgrid(xs, ys)  # rows follow y, columns follow x
    grid[:, dims[0]] = gx.ravel()
    grid[:, dims[1]] = gy.ravel()
    panels = _panels(model, torch.as_tensor(grid), (resolution, resolution))
    obs_names = OBS_NAMES.get(str(model.env_id), ())
    others = [f"{_dim_name(obs_names, d)}={base[d]:g}" for d in range(size) if d not in dims]
    title = f"{model.env_id}: policy and value; " + (", ".join(others) or "no other dims")
    return Slice(
        xs, ys, panels, _dim_name(obs_names, dims[0]), _dim_name(obs_names, dims[1]), title
    )


def policy_slice(
    model: Agent,
    dims: Sequence[int],
    fixed: Sequence[float] | None = None,
    ranges: Sequence[tuple[float, float]] | None = None,
    resolution: int = 101,
) -> Figure:
    """The heatmap figure; ``ranges`` default to the visited ranges of the two dimensions."""
    data = slice_data(model, dims, fixed, ranges, resolution)
    fig = Figure(figsize=(PANEL_SIZE[0] * len(data.panels), PANEL_SIZE[1]), dpi=100)
    axes = fig.subplots(1, len(data.panels), squeeze=False)[0]
    extent = (data.xs[0], data.xs[-1], data.ys[0], data.ys[-1])
    for ax, (title, values, limits) in zip(axes, data.panels, strict=True):
        image = ax.imshow(
            values, origin="lower", extent=extent, aspect="auto", cmap="viridis", **limits
        )
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(data.x_label)
        ax.set_ylabel(data.y_label)
    fig.suptitle(data.title)
    fig.tight_layout()
    return fig


def _panels(model: Agent, obs: torch.Tensor, shape: tuple[int, int]) -> list:
    """(title, values on the grid, colour limits) for each action and for the value."""
    with torch.inference_mode():
        params, values = model.policy(obs.to(model.device))
    panels = []
    if isinstance(model.action_space, spaces.Discrete):
        probs = torch.softmax(params[0], dim=-1).cpu().numpy()
        names = ACTION_NAMES.get(str(model.env_id), ())
        for a in range(probs.shape[1]):
            name = names[a] if a < len(names) else f"action {a}"
            panels.append((f"P({name})", probs[:, a].reshape(shape), {"vmin": 0.0, "vmax": 1.0}))
    elif isinstance(model.action_space, spaces.Box):
        means = params[0].cpu().numpy()
        for a in range(means.shape[1]):
            panels.append((f"mean action[{a}]", means[:, a].reshape(shape), {}))
    else:  # MultiDiscrete, MultiBinary: the deterministic action of each dimension
        modes = model.policy.distribution.mode(params).cpu().numpy()
        for a in range(modes.shape[1]):
            panels.append((f"action[{a}] (mode)", modes[:, a].reshape(shape), {}))
    panels.append(("value V(s)", values.cpu().numpy().reshape(shape), {}))
    return panels


def _dim_name(names: Sequence[str], d: int) -> str:
    return f"obs[{d}] {names[d]}" if d < len(names) else f"obs[{d}]"
