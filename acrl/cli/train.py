"""``acrl train``: one run, or one run per seed (``--seeds``) with a summary and plots."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from acrl.cli.run_dir import claimed_run_dir
from acrl.cli.stop import import_torch
from acrl.config.runs import RUNTIMES, RunConfig
from acrl.engines.signals import check_time_limits
from acrl.envs import describe_envs
from acrl.errors import DistributedError, NonFiniteError, UserError
from acrl.run.atomic import write_atomic
from acrl.run.owned import VIDEOS

if TYPE_CHECKING:  # torch is imported once the flags and the config are known to be valid
    from acrl.algorithms.base import Agent
    from acrl.engines.torchrun import DistributedSync


@dataclass(frozen=True)
class Cadence:
    """How often a run writes: recorded in its config.yaml, kept by --resume unless a flag
    overrides it."""

    checkpoint_every: int = 100_000
    keep_checkpoints: int = 2
    log_interval: int | None = None  # None: about 200 rows a run
    video_every: int | None = None
    eval_every: int | None = None
    eval_episodes: int = 10


def cmd_train(args: argparse.Namespace) -> int:
    args.renamed = None
    if args.backend in RUNTIMES:  # acrl 0.2's spelling of --runtime
        args.renamed = f"--backend {args.backend} is now --runtime {args.backend}"
        args.runtime, args.backend = args.runtime or args.backend, None
    for name in ("timesteps", "n_envs", "log_interval", "workers", "checkpoint_every"):
        _check_positive(args, name)
    for name in ("video_every", "eval_every", "eval_episodes", "jobs", "keep_checkpoints"):
        _check_positive(args, name)
    if args.distributed and (args.resume is not None or args.seeds is not None):
        raise UserError("--distributed trains one fresh run: drop --resume and --seeds")
    if args.resume is not None:
        from acrl.cli.resume import resume_one

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
    _check_model(run, args)  # and one the model finds (a policy that does not fit the env)
    parent = args.run_dir or Path("runs") / (
        f"{run.env_id}__{run.algo}__seeds{seeds[0]}-{seeds[-1]}__{datetime.now():%Y%m%d-%H%M%S}"
    )
    with claimed_run_dir(parent, args.overwrite):
        return train_seeds(args, seeds, parent)


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The resolved config of the run that ``args`` describe, with its env id checked."""
    from acrl.algorithms.run_modules import import_run_modules
    from acrl.config.runs import read_config_file, resolve_run_config, without_a3c_defaults

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
    file_values = without_a3c_defaults(file_values, algo)
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
    import_run_modules(run)  # the user's own settings, all before any directory
    check_time_limits()
    if args.address is not None:
        if run.runtime != "ray":
            raise UserError("--address joins a Ray cluster; add --algo a3c --runtime ray")
        from acrl.engines.ray import check_reachable

        check_reachable(args.address)  # before the run directory is made
    return run


def _check_model(run: RunConfig, args: argparse.Namespace) -> None:
    """Build the run's model once, writing nothing, so that a mistake only the model finds
    (a policy name that does not fit the space, a network too large) is one line before
    ``--seeds`` makes its directory, not one line per seed after."""
    model = _make_model(run, log_dir=None, device=args.device, threads=args.threads)
    if model.env is not None:
        model.env.close()


def _make_model(run: RunConfig, **kwargs: Any) -> Agent:
    """``make_model`` (acrl.algorithms.registry), its ValueErrors (an env this algorithm
    cannot handle, a policy that does not fit the space, a bad device) as one line."""
    from acrl.algorithms.registry import make_model

    try:
        return make_model(run, **kwargs)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def train_one(args: argparse.Namespace) -> int:
    run = _run_config(args)
    import_torch()  # a Ctrl-C meanwhile: one line, not an abort
    sync = _join_ranks(args, run) if args.distributed else None
    main = sync is None or sync.is_main
    run_dir = args.run_dir or Path("runs") / (
        f"{run.env_id}__{run.algo}__s{run.seed}__{datetime.now():%Y%m%d-%H%M%S}"
    )
    # rank r of several seeds its envs seed + r * n_envs + i; rank 0 alone writes files
    rank_run = run if sync is None else replace(run, seed=run.seed + sync.rank * run.n_envs)
    device = args.device if sync is None else str(sync.device)
    model = _make_model(
        rank_run,
        log_dir=run_dir if main else None,
        device=device,
        ray_address=args.address,
        threads=args.threads,
    )
    # the settings as the model resolved them (an image policy's net_arch, A3C's worker
    # count), so that config.yaml rebuilds this run on any machine and --resume finds its
    # checkpoints the run's
    run = replace(run, hyperparams=model.config, n_workers=getattr(model, "n_workers", None))
    cadence = resolve_cadence(args, None)
    with claimed_run_dir(run_dir, args.overwrite) if main else contextlib.nullcontext(run_dir):
        if main:
            write_run_config(run_dir, {**run.to_dict(), "cadence": asdict(cadence)})
            ranks = "" if sync is None else f" on {sync.world_size} ranks"
            print(
                f"training {run.algo.upper()} on {run.env_id} for {run.n_timesteps} steps"
                f"{ranks} (preset: {run.preset or 'none'}, seed {run.seed}) -> {run_dir}\n"
                f"compute: {model.compute.describe()}",
                flush=True,
            )
            env = getattr(model, "env", None)
            if env is not None:
                print(f"envs: {describe_envs(env)}", flush=True)
            if run.preset is None:
                print(_without_preset(run), flush=True)
            if args.renamed:
                print(f"acrl: {args.renamed}", file=sys.stderr)
        if sync is not None:
            from acrl.algorithms.a2c import A2C

            assert isinstance(model, A2C)
            model.distribute(sync)
        try:
            status = learn_and_save(
                model, run_dir, run.n_timesteps, cadence, args, reset_num_timesteps=True
            )
            # 1: a rank was lost, and no collective can run
            if sync is not None and status != 1 and not sync.abandoned:
                sync.check_identical(model)
        except DistributedError as exc:
            print(f"acrl: error: {exc}", file=sys.stderr)
            status = 1
        finally:
            if sync is not None:
                sync.close()
    if sync is not None and sync.abandoned:  # the run directory is given back by now
        sync.leave(status)
    return status


def _without_preset(run: RunConfig) -> str:
    """The settings a run without a preset trains with, and where a preset exists."""
    from acrl.config.presets import load_presets
    from acrl.config.runs import ALGOS

    h = run.hyperparams
    optimizer = "RMSprop" if h.use_rms_prop else f"Adam {tuple(h.adam_betas)}"
    line = (
        f"no {run.algo.upper()} preset for {run.env_id}: {run.algo.upper()}'s defaults "
        f"(learning_rate {h.learning_rate}, n_steps {h.n_steps}, gamma {h.gamma}, gae_lambda "
        f"{h.gae_lambda}, ent_coef {h.ent_coef}, vf_coef {h.vf_coef}, max_grad_norm "
        f"{h.max_grad_norm}, {optimizer}) and the settings given"
    )
    others = [a for a in ALGOS if a != run.algo and run.env_id in load_presets(a)]
    if others:
        line += f"; --algo {others[0]} has a preset for it"
    return line


def resolve_cadence(args: argparse.Namespace, recorded: Any) -> Cadence:
    """Checkpoint, log and video intervals: the flags given, else what the run recorded
    (``recorded``: config.yaml's ``cadence``), else the defaults."""
    recorded = recorded if isinstance(recorded, Mapping) else {}
    values: dict[str, Any] = {}
    for name, default in asdict(Cadence()).items():
        value = getattr(args, name)
        value = value if value is not None else recorded.get(name, default)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise UserError(f"config.yaml: cadence.{name} must be an integer >= 1, got {value!r}")
        values[name] = value
    return Cadence(**values)


def write_run_config(run_dir: Path, config: Mapping[str, Any]) -> None:
    """config.yaml, written atomically."""
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(dict(config), sort_keys=False).encode())


def _join_ranks(args: argparse.Namespace, run: RunConfig) -> DistributedSync:
    """This process's rank among torchrun's (after the config is known to be valid)."""
    if run.algo != "a2c":
        raise UserError("--distributed trains A2C; A3C scales out with --runtime ray")
    from acrl.engines.torchrun import DistributedSync

    return DistributedSync.from_torchrun(args.device)


def learn_and_save(
    model: Agent,
    run_dir: Path,
    steps: int,
    cadence: Cadence,
    args: argparse.Namespace,
    reset_num_timesteps: bool,
) -> int:
    """Train, stop cleanly on a signal or a fault, save; the exit status."""
    from acrl.cli.stop import StopSignals, stop_with_parent
    from acrl.errors import WorkerError
    from acrl.run.callbacks import CallbackList, RecordVideoEvery
    from acrl.run.eval_callback import EvalCallback

    writes = model.log_dir is not None  # not a rank other than 0 of a distributed run
    every = cadence.video_every
    videos = None if every is None else RecordVideoEvery(every, run_dir / VIDEOS, model.seed or 0)
    evaluations = None
    if cadence.eval_every is not None and writes:
        evaluations = EvalCallback(
            eval_freq=cadence.eval_every,
            n_eval_episodes=cadence.eval_episodes,
            best_model_save_path=run_dir,
            log_path=run_dir,
        )
    stop = StopSignals()
    callback = CallbackList([c for c in (evaluations, videos, stop) if c is not None])
    model.keep_checkpoints = cadence.keep_checkpoints
    start, first_step = time.perf_counter(), model.num_timesteps
    with stop, stop_with_parent():
        try:
            model.learn(
                steps,
                callback=callback,
                log_interval=cadence.log_interval,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=not args.no_progress and model.log_dir is not None,
                checkpoint_every=cadence.checkpoint_every if writes else None,
            )
            elapsed = time.perf_counter() - start
            if model.log_dir is None:  # a rank other than 0 of a distributed run: no files
                return stop.exit_status if stop.received is not None else 0
            path = model.save(run_dir / "model.acrl")
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, save nothing more
            print(f"interrupted twice: stopped without saving; {_kept(run_dir)}", file=sys.stderr)
            return 130
        except (WorkerError, NonFiniteError, DistributedError) as exc:
            print(f"acrl: error: {exc}; {_kept(run_dir)}", file=sys.stderr)
            return 1
        except OSError as exc:  # a full disk, a run dir made read-only, a removed folder
            where = f" ({exc.filename})" if exc.filename else ""
            print(
                f"acrl: error: cannot write the run{where}: {exc.strerror or exc}; "
                f"{_kept(run_dir)}",
                file=sys.stderr,
            )
            return 1
    from acrl.plotting.advantages import save_advantage_histogram

    title = f"{model.env_id} {model.algo.upper()} at {model.num_timesteps:,} steps"
    save_advantage_histogram(run_dir, title)
    mean = model.recent_mean_return()
    recent = (
        "no training episode finished"
        if math.isnan(mean)
        else f"last-100 training return {mean:.1f}"
    )
    print(
        f"{model.num_timesteps} steps in {elapsed:.1f} s "
        f"({(model.num_timesteps - first_step) / elapsed:,.0f} steps/s); "
        f"{recent}; model saved to {path}",
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


def _check_positive(args: argparse.Namespace, name: str) -> None:
    value = getattr(args, name)
    if value is not None and value < 1:
        raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
