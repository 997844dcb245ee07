"""``acrl train``: one run, or one run per seed (``--seeds``) with a summary and plots."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import yaml

from acrl.algorithms.a2c import A2C
from acrl.algorithms.base import Agent
from acrl.config.runs import RUNTIMES, RunConfig
from acrl.engines.torchrun import DistributedError, DistributedSync
from acrl.errors import NonFiniteError, UserError

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
    args.renamed = None
    if args.backend in RUNTIMES:  # acrl 0.2's spelling of --runtime
        args.renamed = f"--backend {args.backend} is now --runtime {args.backend}"
        args.runtime, args.backend = args.runtime or args.backend, None
    for name in ("timesteps", "n_envs", "log_interval", "workers", "checkpoint_every"):
        _check_positive(args, name)
    for name in ("video_every", "jobs", "keep_checkpoints"):
        _check_positive(args, name)
    if args.distributed and (args.resume is not None or args.seeds is not None):
        raise UserError("--distributed trains one fresh run: drop --resume and --seeds")
    if args.resume is not None:
        return resume_one(args)
    if args.seeds is None:
        if args.jobs != 1:
            raise UserError("--jobs runs seeds in parallel; add --seeds")
        return train_one(args)
    from acrl.cli.multiseed import parse_seeds, train_seeds

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
    from acrl.config.runs import A3C_DEFAULTS, read_config_file, resolve_run_config
    from acrl.envs import check_env_id

    file_values = read_config_file(args.config) if args.config is not None else {}
    algo = args.algo or file_values.get("algo") or "a2c"
    preset = args.preset or file_values.get("preset")
    env_id = args.env_id or file_values.get("env_id") or preset
    if env_id is None:
        raise UserError(
            "give an env id or preset name to train on, a --config file with env_id, "
            "or --resume RUN_DIR"
        )
    file_values = {k: v for k, v in file_values.items() if k not in ("algo", "preset")}
    if algo != "a3c":  # a run's config.yaml lists the A3C keys at their defaults
        for key, default in A3C_DEFAULTS.items():
            if key in file_values and file_values[key] == default:
                del file_values[key]
    overrides = {"n_timesteps": args.timesteps, "seed": args.seed, "n_envs": args.n_envs}
    if args.workers is not None:
        if algo != "a3c":
            raise UserError("--workers is an A3C setting; add --algo a3c")
        overrides["n_workers"] = args.workers
    if args.backend is not None:
        overrides["backend"] = args.backend
    if args.runtime is not None:
        if algo != "a3c":
            raise UserError("--runtime is an A3C setting; add --algo a3c")
        overrides["runtime"] = args.runtime
    run = resolve_run_config(
        str(env_id), algo, preset, overrides, args.assignments, file_values=file_values
    )
    check_env_id(run.env_id)
    if args.address is not None:
        if run.runtime != "ray":
            raise UserError("--address joins a Ray cluster; add --algo a3c --runtime ray")
        from acrl.engines.ray import check_reachable

        check_reachable(args.address)  # before the run directory is made
    return run


def train_one(args: argparse.Namespace) -> int:
    from acrl.algorithms.registry import make_model

    run = _run_config(args)
    sync = _join_ranks(args, run) if args.distributed else None
    main = sync is None or sync.is_main
    run_dir = args.run_dir or Path("runs") / (
        f"{run.env_id}__{run.algo}__s{run.seed}__{datetime.now():%Y%m%d-%H%M%S}"
    )
    # rank r of several seeds its envs seed + r * n_envs + i; rank 0 alone writes files
    rank_run = run if sync is None else replace(run, seed=run.seed + sync.rank * run.n_envs)
    device = args.device if sync is None else str(sync.device)
    try:
        model = make_model(
            rank_run,
            log_dir=run_dir if main else None,
            device=device,
            ray_address=args.address,
            threads=args.threads,
        )
    except ValueError as exc:  # an env this algorithm cannot handle, a bad device
        raise UserError(str(exc)) from None
    if main:
        prepare_run_dir(run_dir, args.overwrite)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(run.to_dict(), sort_keys=False))
        ranks = "" if sync is None else f" on {sync.world_size} ranks"
        print(
            f"training {run.algo.upper()} on {run.env_id} for {run.n_timesteps} steps{ranks} "
            f"(preset: {run.preset or 'none'}, seed {run.seed}) -> {run_dir}\n"
            f"compute: {model.compute.describe()}",
            flush=True,
        )
        if args.renamed:
            print(f"acrl: {args.renamed}", file=sys.stderr)
    if sync is not None:
        assert isinstance(model, A2C)
        model.distribute(sync)
    model.keep_checkpoints = args.keep_checkpoints
    try:
        status = _learn_and_save(model, run_dir, run.n_timesteps, args, reset_num_timesteps=True)
        if sync is not None and status != 1:  # 1: a rank was lost; no collective can run
            sync.check_identical(model)
        return status
    except DistributedError as exc:
        print(f"acrl: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if sync is not None:
            sync.close()


def _join_ranks(args: argparse.Namespace, run: RunConfig) -> DistributedSync:
    """This process's rank among torchrun's (after the config is known to be valid)."""
    if run.algo != "a2c":
        raise UserError("--distributed trains A2C; A3C scales out with --runtime ray")
    return DistributedSync.from_torchrun(args.device)


def resume_one(args: argparse.Namespace) -> int:
    """Continue the run in ``args.resume`` from its latest checkpoint to its step budget."""
    from acrl.algorithms.registry import load_model
    from acrl.run.run_files import latest_checkpoint, remove_stale_temp_files, resume_logs

    run_dir: Path = args.resume
    fixed = {
        "an env id": args.env_id,
        "--algo": args.algo,
        "--config": args.config,
        "--seed": args.seed,
        "--seeds": args.seeds,
        "--n-envs": args.n_envs,
        "--preset": args.preset,
        "--workers": args.workers,
        "--backend": args.backend,
        "--runtime": args.runtime,
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
    path = latest_checkpoint(run_dir)
    model = load_model(path, device=args.device, log_dir=run_dir, threads=args.threads)
    _check_same_run(model, config, path)
    if args.address is not None:
        if getattr(model, "runtime", None) != "ray":
            raise UserError("--address joins a Ray cluster; this run does not use --runtime ray")
        model.ray_address = args.address  # type: ignore[attr-defined]
    remove_stale_temp_files(run_dir)
    if model.num_timesteps >= total:
        print(f"{run_dir} is complete: {model.num_timesteps} of {total} steps")
        return 0
    model.restore_rng_state()
    resume_logs(model, run_dir)
    model.keep_checkpoints = args.keep_checkpoints
    print(
        f"resuming {model.algo.upper()} on {model.env_id} from {path} "
        f"at {model.num_timesteps} of {total} steps\ncompute: {model.compute.describe()}",
        flush=True,
    )
    return _learn_and_save(
        model, run_dir, total - model.num_timesteps, args, reset_num_timesteps=False
    )


def _check_same_run(model: Agent, config: dict[str, object], path: Path) -> None:
    """Refuse a checkpoint that another run put in this directory (other algorithm or env)."""
    theirs = (config.get("algo", "a2c"), config.get("env_id"), config.get("env_kwargs") or {})
    ours = (model.algo, model.env_id, dict(model.env_kwargs or {}))
    if ours != theirs:
        raise UserError(
            f"{path} holds {ours[0].upper()} on {ours[1]}, but the run's config.yaml says "
            f"{str(theirs[0]).upper()} on {theirs[1]}; it is not this run's checkpoint"
        )


def _learn_and_save(
    model: Agent, run_dir: Path, steps: int, args: argparse.Namespace, reset_num_timesteps: bool
) -> int:
    """Train, stop cleanly on a signal or a fault, save; the exit status."""
    from acrl.cli.stop import StopSignals
    from acrl.errors import WorkerError
    from acrl.run.callbacks import CallbackList, RecordVideoEvery

    videos = (
        None
        if args.video_every is None
        else RecordVideoEvery(args.video_every, run_dir / "videos", seed=model.seed or 0)
    )
    stop = StopSignals()
    callback = CallbackList([c for c in (videos, stop) if c is not None])
    start, first_step = time.perf_counter(), model.num_timesteps
    with stop:
        try:
            model.learn(
                steps,
                callback=callback,
                log_interval=args.log_interval,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=not args.no_progress and model.log_dir is not None,
                checkpoint_every=args.checkpoint_every,
            )
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, save nothing more
            print(f"interrupted twice: stopped without saving; {_kept(run_dir)}", file=sys.stderr)
            return 130
        except (WorkerError, NonFiniteError, DistributedError) as exc:
            print(f"acrl: error: {exc}; {_kept(run_dir)}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - start
        if model.log_dir is None:  # a rank other than 0 of a distributed run: no files
            return stop.exit_status if stop.received is not None else 0
        path = model.save(run_dir / "model.acrl")
    from acrl.plotting.advantages import save_advantage_histogram

    title = f"{model.env_id} {model.algo.upper()} at {model.num_timesteps:,} steps"
    save_advantage_histogram(run_dir, title)
    mean = model.recent_mean_return()
    print(
        f"{model.num_timesteps} steps in {elapsed:.1f} s "
        f"({(model.num_timesteps - first_step) / elapsed:,.0f} steps/s); "
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
