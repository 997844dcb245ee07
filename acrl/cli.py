"""The ``acrl`` command line: train, eval, presets."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import yaml

from acrl.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="acrl", description="Advantage actor-critic (A2C) on Gymnasium.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train an agent and write a run directory")
    train.add_argument("env_id", help="Gymnasium env id, or a preset name (see `acrl presets`)")
    train.add_argument("--algo", default="a2c", help="algorithm (default: a2c)")
    train.add_argument("--timesteps", type=int, help="environment steps (default: the preset's)")
    train.add_argument("--seed", type=int, help="random seed (default: 0)")
    train.add_argument("--n-envs", type=int, help="parallel environments (default: the preset's)")
    train.add_argument("--preset", help="preset name (default: the env's own preset, if any)")
    train.add_argument("--workers", type=int, help="A3C worker processes (default: one per core)")
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=100_000,
        metavar="STEPS",
        help="save the model into the run directory every STEPS steps (default: 100000)",
    )
    train.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set learning_rate=1e-3 "
        "--set policy_kwargs.net_arch=[64,64]",
    )
    train.add_argument(
        "--run-dir", type=Path, help="output directory (default: runs/ENV__ALGO__sSEED__TIME)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--log-interval", type=int, default=100, help="updates between metrics rows")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--device", default="cpu", help="torch device (default: cpu, fastest for MLPs)"
    )
    _add_threads(train)

    evaluate = sub.add_parser("eval", help="evaluate a saved model on its environment")
    evaluate.add_argument("path", type=Path, help="a model file (.acrl) or a run directory")
    evaluate.add_argument(
        "--episodes", type=int, default=10, help="complete episodes (default: 10)"
    )
    evaluate.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of the mode"
    )
    evaluate.add_argument("--json", action="store_true", help="print {mean, std, episodes} as JSON")
    evaluate.add_argument(
        "--seed", type=int, default=0, help="seed of the evaluation envs (default: 0)"
    )
    evaluate.add_argument("--n-envs", type=int, help="parallel evaluation envs (default: up to 8)")
    _add_threads(evaluate)

    sub.add_parser("presets", help="list the presets")
    return parser


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default: 1, the fastest for classic-control MLPs; "
        "results depend on it, so keep it fixed to reproduce a run)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "threads"):
            if args.threads < 1:
                raise UserError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "eval":
            return cmd_eval(args)
        return cmd_presets()
    except UserError as exc:
        print(f"acrl: error: {exc}", file=sys.stderr)
        return 2


def _version() -> str:
    from acrl import __version__

    return f"acrl {__version__}"


def cmd_presets() -> int:
    from acrl.run_config import ALGOS, preset_summaries

    rows = [(algo, *row) for algo in ALGOS for row in preset_summaries(algo)]
    width = max(len(r[1]) for r in rows)
    env_width = max(len(r[2]) for r in rows)
    for algo, name, env, budget, comment in rows:
        print(f"{name:<{width}}  {algo}  {env:<{env_width}}  {budget:>6}  {comment}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from acrl.a3c import WorkerError
    from acrl.envs import check_env_id
    from acrl.registry import make_model
    from acrl.run_config import resolve_run_config

    for name in ("timesteps", "n_envs", "log_interval", "workers", "checkpoint_every"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    overrides = {"n_timesteps": args.timesteps, "seed": args.seed, "n_envs": args.n_envs}
    if args.workers is not None:
        if args.algo != "a3c":
            raise UserError("--workers is an A3C setting; add --algo a3c")
        overrides["n_workers"] = args.workers
    run = resolve_run_config(args.env_id, args.algo, args.preset, overrides, args.assignments)
    check_env_id(run.env_id)
    run_dir = args.run_dir or Path("runs") / (
        f"{run.env_id}__{run.algo}__s{run.seed}__{datetime.now():%Y%m%d-%H%M%S}"
    )
    try:
        model = make_model(run, log_dir=run_dir, device=args.device)
    except ValueError as exc:  # an env this algorithm cannot handle, a bad device
        raise UserError(str(exc)) from None
    _prepare_run_dir(run_dir, args.overwrite)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(run.to_dict(), sort_keys=False))
    print(
        f"training {run.algo.upper()} on {run.env_id} for {run.n_timesteps} steps "
        f"(preset: {run.preset or 'none'}, seed {run.seed}) -> {run_dir}"
    )
    start = time.perf_counter()
    interrupted = False
    try:
        model.learn(
            run.n_timesteps,
            log_interval=args.log_interval,
            progress_bar=not args.no_progress,
            checkpoint_every=args.checkpoint_every,
        )
    except KeyboardInterrupt:
        interrupted = True
    except WorkerError as exc:
        print(f"acrl: error: {exc}; the last checkpoint in {run_dir} is kept", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    path = model.save(run_dir / "model.acrl")
    mean = model.recent_mean_return()
    print(
        f"{model.num_timesteps} steps in {elapsed:.1f} s "
        f"({model.num_timesteps / elapsed:,.0f} steps/s); "
        f"last-100 training return {mean:.1f}; model saved to {path}"
    )
    if interrupted:
        print("interrupted: the model trained so far is saved", file=sys.stderr)
        return 130
    return 0


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    try:
        run_dir.mkdir(parents=True)  # atomic: two runs cannot both create the same directory
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise UserError(f"cannot create run dir {run_dir}: {exc.strerror}") from None
    if not run_dir.is_dir():
        raise UserError(f"run dir {run_dir} exists and is not a directory")
    if any(run_dir.iterdir()):
        if not overwrite:
            raise UserError(f"run dir {run_dir} already exists; pass --overwrite to replace it")
        for name in ("model.acrl", "config.yaml", "metrics.csv"):
            (run_dir / name).unlink(missing_ok=True)


def cmd_eval(args: argparse.Namespace) -> int:
    from acrl.evaluation import evaluate_policy
    from acrl.registry import load_model

    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.n_envs is not None and args.n_envs < 1:
        raise UserError(f"--n-envs must be >= 1, got {args.n_envs}")
    model = load_model(args.path, device="cpu")
    n_envs = args.n_envs or min(args.episodes, 8)
    env = model.make_env(n_envs, seed=args.seed)
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


if __name__ == "__main__":
    sys.exit(main())
