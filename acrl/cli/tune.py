"""``acrl tune``: the command line of acrl.tune."""

from __future__ import annotations

import argparse
from pathlib import Path

from acrl.cli.arguments import steps
from acrl.errors import UserError


def add_tune(tune: argparse.ArgumentParser) -> None:
    tune.add_argument(
        "env_id", help="Gymnasium env id, or a preset name (its settings are the base)"
    )
    tune.add_argument("--algo", default="a2c", choices=("a2c", "a3c"), help="default: a2c")
    tune.add_argument(
        "--trials", type=int, default=20, help="trials the study holds at the end (default: 20)"
    )
    tune.add_argument(
        "--timesteps",
        type=steps,
        help="steps each seed of a trial trains (default: the preset's, else 100000)",
    )
    tune.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds 0..K-1 per trial; the objective is their median (default: 3)",
    )
    tune.add_argument(
        "--jobs", type=int, default=1, help="trials at a time, one process each (default: 1)"
    )
    tune.add_argument(
        "--evaluations",
        type=int,
        default=5,
        help="evaluations per seed, for the pruner (default: 5)",
    )
    tune.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="deterministic episodes per evaluation (default: 10)",
    )
    tune.add_argument(
        "--config",
        type=Path,
        metavar="FILE.yml",
        help="fixed settings over the preset (a preset entry's keys); the search overrides "
        "the keys it samples",
    )
    tune.add_argument(
        "--study-dir",
        type=Path,
        help="where the study lives; the same command resumes it (default: studies/ENV__ALGO)",
    )
    tune.add_argument(
        "--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default: 0)"
    )


def cmd_tune(args: argparse.Namespace) -> int:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError("acrl tune needs Optuna: pip install 'acrl[tune]'") from None
    from acrl.algorithms.run_modules import import_run_modules
    from acrl.cli.stop import import_torch
    from acrl.config.runs import read_config_file, resolve_run_config, without_a3c_defaults
    from acrl.engines.signals import check_time_limits

    import_torch()  # a Ctrl-C meanwhile: one line, not an abort
    from acrl.tune import Budget, StudyPlan, tune

    budget = Budget(args.trials, args.jobs, args.sampler_seed)
    base = read_config_file(args.config) if args.config is not None else {}
    named = base.pop("env_id", None)
    if named is not None and named != resolve_run_config(args.env_id, args.algo).env_id:
        raise UserError(f"--config {args.config} is for {named}, not {args.env_id}")
    base = without_a3c_defaults(base, args.algo)
    # the trial's own: the seed, the budget; what the file's run was is not the study's base
    for key in ("algo", "preset", "seed", "n_timesteps"):
        base.pop(key, None)
    config = resolve_run_config(args.env_id, args.algo, file_values=base)
    import_run_modules(config)
    check_time_limits()  # each trial trains: a bad one, before the study's folder
    timesteps = args.timesteps if args.timesteps is not None else config.n_timesteps
    plan = StudyPlan(
        env_id=args.env_id,
        algo=args.algo,
        timesteps=timesteps,
        seeds=args.seeds,
        evaluations=args.evaluations,
        eval_episodes=args.eval_episodes,
        base=base,
    )
    name = f"{args.env_id.replace('/', '-')}__{args.algo}"
    return tune(plan, args.study_dir or Path("studies") / name, budget)
