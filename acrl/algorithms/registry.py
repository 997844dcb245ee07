"""Algorithms by name: build a model from a run config, load a saved model of any algorithm."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from acrl.algorithms.a2c import A2C
from acrl.algorithms.a3c import A3C
from acrl.algorithms.base import Agent
from acrl.config.runs import RunConfig
from acrl.errors import UserError
from acrl.run.model_file import read_model

ALGORITHMS: dict[str, type[Agent]] = {"a2c": A2C, "a3c": A3C}


def make_model(
    run: RunConfig,
    log_dir: str | Path | None = None,
    device: str = "cpu",
    ray_address: str | None = None,
    threads: int | str = "auto",
) -> Agent:
    """A fresh model for a resolved run config (preset, flags and overrides applied);
    ``ray_address``: the Ray cluster an A3C run on the Ray runtime joins. The run's
    env_packages must have been imported (the caller's act: acrl.cli.train)."""
    common: dict[str, Any] = dict(
        **run.hyperparams.as_kwargs(),
        n_envs=run.n_envs,
        seed=run.seed,
        device=device,
        env_kwargs=run.env_kwargs,
        vectorization=run.vectorization,
        log_dir=log_dir,
        threads=threads,
    )
    model: Agent
    env_wrapper = [w.to_setting() for w in run.env_wrapper]
    if run.algo == "a3c":
        model = A3C(
            run.policy,
            run.env_id,
            n_workers=run.n_workers,
            lock_updates=run.lock_updates,
            runtime=run.runtime,
            ray_address=ray_address,
            env_wrapper=env_wrapper,
            frame_stack=run.frame_stack,
            **common,
        )
    else:
        model = A2C(
            run.policy,
            run.env_id,
            env_wrapper=env_wrapper,
            frame_stack=run.frame_stack,
            **common,
        )
    model.env_packages = run.env_packages  # recorded, to name them if the env is missing
    return model


def load_model(path: str | os.PathLike[str], **kwargs: Any) -> Agent:
    """The model saved at ``path`` (a .acrl file or a run directory)."""
    _, meta = read_model(path)
    algo = meta.get("algo")
    if algo not in ALGORITHMS:
        raise UserError(f"{path} holds a model of unknown algorithm {algo!r}")
    return ALGORITHMS[algo].load(path, **kwargs)
