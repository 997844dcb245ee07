"""``acrl eval``: deterministic (or sampled) evaluation of a saved model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from acrl.cli.stop import import_torch
from acrl.config.checks import MAX_SEED
from acrl.errors import UserError
from acrl.run.model_path import find_model_file

if TYPE_CHECKING:
    from acrl.algorithms.base import Agent


def load_cpu_model(path: Path, threads: int = 1) -> Agent:
    """The model at ``path`` (a .acrl file or a run directory) on the CPU, torch on
    ``threads`` threads: what eval, video, plot and export run. Torch is imported here, once a
    command's flags are checked, so that a mistake in them is answered at once."""
    find_model_file(path)  # a wrong path: one line before torch
    import_torch()
    import torch

    from acrl.algorithms.registry import load_model

    torch.set_num_threads(threads)
    return load_model(path, device="cpu")


def check_seed_flag(seed: int) -> None:
    """--seed of eval and video: episode seeds are seed, seed + 1, ..."""
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    if seed > MAX_SEED:
        raise UserError(f"--seed must be <= {MAX_SEED}, got {seed}")


def cmd_eval(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    check_seed_flag(args.seed)
    if args.n_envs is not None and not 1 <= args.n_envs <= args.episodes:
        raise UserError(
            f"--n-envs must be in [1, --episodes] (every env runs an episode), got {args.n_envs}"
        )
    model = load_cpu_model(args.path, args.threads)
    from acrl.run.evaluation import evaluate_policy

    n_envs = args.n_envs or min(args.episodes, 8)
    env = model.make_env(n_envs, seed=args.seed)  # refuses an env module the file names
    try:
        mean, std = evaluate_policy(
            model,
            env,
            n_eval_episodes=args.episodes,
            deterministic=not args.stochastic,
            seed=args.seed,
        )
    finally:
        env.close()
    if args.json:
        print(json.dumps({"mean": mean, "std": std, "episodes": args.episodes}))
    else:
        kind = "stochastic" if args.stochastic else "deterministic"
        print(
            f"{model.env_id}: mean return {mean:.2f} ± {std:.2f} "
            f"over {args.episodes} {kind} episodes"
        )
    return 0
