"""``acrl train``: one run, or one run per seed (``--seeds``) with a summary and plots."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from acrl.agent import Agent
from acrl.errors import NonFiniteError, UserError
from acrl.run_config import RunConfig

# What a run directory holds; --overwrite removes exactly these (and TensorBoard events).
RUN_FILES = (
    "model.acrl",
    "config.yaml",
    "metrics.csv",
    "episodes.csv",
    "advantages.npy",
    "advantages.png",
    "summary.json",
    "learning_curve.png",
    "learning_curve-diagnostics.png",
)


def cmd_train(args: argparse.Namespace) -> int:
    for name in ("timesteps", "n_envs", "log_interval", "workers", "checkpoint_every"):
        _check_positive(args, name)
    for name in ("video_every", "jobs", "keep_checkpoints"):
        _check_positive(args, name)
    if args.resume is not None:
        return resume_one(args)
    if args.env_id is None:
        raise UserError("give an env id or preset name to train on, or --resume RUN_DIR")
    if args.seeds is None:
        if args.jobs != 1:
            raise UserError("--jobs runs seeds in parallel; add --seeds")
        return train_one(args)
    from acrl.multiseed import parse_seeds, train_seeds

    if args.seed is not None:
        raise UserError("give either --seed or --seeds, not both")
    seeds = parse_seeds(args.seeds)
    run = _run_config(args)  # a mistake in the config stops here, before any directory
    parent = args.run_dir or Path("runs") / (
        f"{run.env_id}__{run.algo}__seeds{seeds[0]}-{seeds[-1]}__{datetime.now():%Y%m%d-%H%M%S}"
    )
    prepare_run_dir(parent, args.overwrite)
    return train_seeds(args, seeds, parent)


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The resolved config of the run that ``args`` describe, with its env id checked."""
    from acrl.envs import check_env_id
    from acrl.run_config import resolve_run_config

    overrides = {"n_timesteps": args.timesteps, "seed": args.seed, "n_envs": args.n_envs}
    if args.workers is not None:
        if args.algo != "a3c":
            raise UserError("--workers is an A3C setting; add --algo a3c")
        overrides["n_workers"] = args.workers
    run = resolve_run_config(args.env_id, args.algo, args.preset, overrides, args.assignments)
    check_env_id(run.env_id)
    return run


def train_one(args: argparse.Namespace) -> int:
    from acrl.registry import make_model

    run = _run_config(args)
    run_dir = args.run_dir or Path("runs") / (
        f"{run.env_id}__{run.algo}__s{run.seed}__{datetime.now():%Y%m%d-%H%M%S}"
    )
    try:
        model = make_model(run, log_dir=run_dir, device=args.device)
    except ValueError as exc:  # an env this algorithm cannot handle, a bad device
        raise UserError(str(exc)) from None
    prepare_run_dir(run_dir, args.overwrite)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(run.to_dict(), sort_keys=False))
    print(
        f"training {run.algo.upper()} on {run.env_id} for {run.n_timesteps} steps "
        f"(preset: {run.preset or 'none'}, seed {run.seed}) -> {run_dir}",
        flush=True,
    )
    model.keep_checkpoints = args.keep_checkpoints
    return _learn_and_save(model, run_dir, run.n_timesteps, args, reset_num_timesteps=True)


def resume_one(args: argparse.Namespace) -> int:
    """Continue the run in ``args.resume`` from its latest checkpoint to its step budget."""
    from acrl.registry import load_model
    from acrl.run_files import latest_checkpoint, remove_stale_temp_files, resume_logs

    run_dir: Path = args.resume
    fixed = {
        "an env id": args.env_id,
        "--seed": args.seed,
        "--seeds": args.seeds,
        "--n-envs": args.n_envs,
        "--preset": args.preset,
        "--workers": args.workers,
        "--set": args.assignments,
        "--run-dir": args.run_dir,
        "--overwrite": args.overwrite,
    }
    given = [name for name, value in fixed.items() if value]
    if given:
        raise UserError(f"--resume continues a run as it was configured; drop {', '.join(given)}")
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        total = int(args.timesteps or config["n_timesteps"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        raise UserError(f"{run_dir} is not a run directory written by `acrl train`") from None
    remove_stale_temp_files(run_dir)
    path = latest_checkpoint(run_dir)
    model = load_model(path, device=args.device, log_dir=run_dir)
    if model.num_timesteps >= total:
        print(f"{run_dir} is complete: {model.num_timesteps} of {total} steps")
        return 0
    model.restore_rng_state()
    resume_logs(model, run_dir)
    model.keep_checkpoints = args.keep_checkpoints
    print(
        f"resuming {model.algo.upper()} on {model.env_id} from {path} "
        f"at {model.num_timesteps} of {total} steps",
        flush=True,
    )
    return _learn_and_save(
        model, run_dir, total - model.num_timesteps, args, reset_num_timesteps=False
    )


def _learn_and_save(
    model: Agent, run_dir: Path, steps: int, args: argparse.Namespace, reset_num_timesteps: bool
) -> int:
    """Train, stop cleanly on a signal or a fault, save; the exit status."""
    from acrl.a3c import WorkerError
    from acrl.callbacks import CallbackList, RecordVideoEvery
    from acrl.cli.stop import StopSignals

    videos = (
        None
        if args.video_every is None
        else RecordVideoEvery(args.video_every, run_dir / "videos", seed=model.seed or 0)
    )
    stop = StopSignals()
    callback = CallbackList([c for c in (videos, stop) if c is not None])
    start = time.perf_counter()
    with stop:
        try:
            model.learn(
                steps,
                callback=callback,
                log_interval=args.log_interval,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=not args.no_progress,
                checkpoint_every=args.checkpoint_every,
            )
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, save nothing more
            print(f"interrupted twice: stopped without saving; {_kept(run_dir)}", file=sys.stderr)
            return 130
        except (WorkerError, NonFiniteError) as exc:
            print(f"acrl: error: {exc}; {_kept(run_dir)}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - start
        path = model.save(run_dir / "model.acrl")
    mean = model.recent_mean_return()
    print(
        f"{model.num_timesteps} steps in {elapsed:.1f} s "
        f"({steps / elapsed:,.0f} steps/s); "
        f"last-100 training return {mean:.1f}; model saved to {path}",
        flush=True,
    )
    if stop.received is not None:
        print(
            f"interrupted by {stop.name} at {model.num_timesteps} steps (after a whole update): "
            f"the model is saved to {path}; `acrl train --resume {run_dir}` continues it",
            file=sys.stderr,
        )
        return stop.exit_status
    return 0


def _kept(run_dir: Path) -> str:
    """What a run that stops without saving leaves behind."""
    if (run_dir / "model.acrl").exists():
        return f"the last checkpoint in {run_dir} is kept"
    return "no model is saved"


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Create ``run_dir``; an existing non-empty one only with ``overwrite`` (then emptied
    of what a run writes, and nothing else)."""
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
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for pattern in ("events.out.tfevents.*", "videos/step-*.mp4", "checkpoints/step-*.acrl"):
            for path in run_dir.glob(pattern):
                path.unlink()


def _check_positive(args: argparse.Namespace, name: str) -> None:
    value = getattr(args, name)
    if value is not None and value < 1:
        raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
