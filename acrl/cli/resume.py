"""``acrl train --resume RUN_DIR``: continue a run from its newest intact checkpoint of that
run, with the cadence (checkpoints, log rows, videos) it was started with."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from acrl.cli.stop import import_torch
from acrl.config.wrappers import EnvWrapper, wrapper_stack
from acrl.errors import UserError
from acrl.run.lock import RunLock

if TYPE_CHECKING:  # torch is imported once the run is known to be resumable
    from acrl.algorithms.base import Agent

# What --resume cannot change: it continues the run as it was configured.
FIXED_FLAGS = {
    "env_id": "an env id",
    "algo": "--algo",
    "config": "--config",
    "seed": "--seed",
    "seeds": "--seeds",
    "n_envs": "--n-envs",
    "preset": "--preset",
    "workers": "--workers",
    "backend": "--backend",
    "runtime": "--runtime",
    "assignments": "--set",
    "run_dir": "--run-dir",
    "overwrite": "--overwrite",
}


def resume_one(args: argparse.Namespace) -> int:
    """Continue the run in ``args.resume`` from its latest checkpoint to its step budget."""
    from acrl.cli.train import learn_and_save, resolve_cadence, write_run_config
    from acrl.run.owned import check_run_file_names, remove_stale_temp_files

    run_dir: Path = args.resume
    given = [flag for name, flag in FIXED_FLAGS.items() if _given(getattr(args, name))]
    if given:
        raise UserError(f"--resume continues a run as it was configured; drop {', '.join(given)}")
    read_run_config(run_dir)  # not a run directory: one line before anything is locked
    with RunLock(run_dir):
        check_run_file_names(run_dir)
        config = read_run_config(run_dir)  # as it is now that no one else writes it
        try:
            total = int(args.timesteps or config["n_timesteps"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{run_dir} is not a run directory written by `acrl train`") from None
        import_torch()  # a Ctrl-C meanwhile: one line, the lock given back
        model, path = resume_point(run_dir, config, args)
        from acrl.run.run_files import resume_logs

        model.check_env()  # a module its env id names is imported only with --env-module
        if args.address is not None:
            if getattr(model, "runtime", None) != "ray":
                raise UserError(
                    "--address joins a Ray cluster; this run does not use --runtime ray"
                )
            model.ray_address = args.address  # type: ignore[attr-defined]
        remove_stale_temp_files(run_dir)
        if model.num_timesteps >= total:
            print(f"{run_dir} is complete: {model.num_timesteps} of {total} steps")
            return 0
        cadence = resolve_cadence(args, config.get("cadence"))
        if asdict(cadence) != config.get("cadence"):
            write_run_config(run_dir, {**config, "cadence": asdict(cadence)})
        model.restore_rng_state()
        resume_logs(model, run_dir)
        print(
            f"resuming {model.algo.upper()} on {model.env_id} from {path} "
            f"at {model.num_timesteps} of {total} steps\ncompute: {model.compute.describe()}",
            flush=True,
        )
        return learn_and_save(
            model, run_dir, total - model.num_timesteps, cadence, args, reset_num_timesteps=False
        )


def _given(value: Any) -> bool:
    """Whether a flag was given on the command line (0 is given; None, False, [] are not)."""
    return value is not None and value is not False and value != []


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run directory's config.yaml as written by ``acrl train``."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        config = None
    if not isinstance(config, dict) or "env_id" not in config:
        raise UserError(f"{run_dir} is not a run directory written by `acrl train`")
    return config


def resume_point(
    run_dir: Path, config: dict[str, Any], args: argparse.Namespace
) -> tuple[Agent, Path]:
    """The newest model file of ``run_dir`` that loads, holds finite weights and belongs to
    this run (same algorithm, env, seed, envs and hyperparameters as its config.yaml); each
    newer one passed over is named with the reason, on stderr."""
    from acrl.algorithms.registry import load_model
    from acrl.run.run_files import resume_candidates

    candidates, passed_over = resume_candidates(run_dir)
    for _, path in candidates:
        try:
            model = load_model(path, device=args.device, log_dir=run_dir, threads=args.threads)
        except UserError as exc:
            passed_over.append(str(exc))
            continue
        difference = run_difference(model, config)
        if difference is not None:
            passed_over.append(f"{path} is not this run's checkpoint: {difference}")
            continue
        for reason in passed_over:
            print(f"acrl: passed over {reason}", file=sys.stderr, flush=True)
        return model, path
    if passed_over:
        more = f" (and {len(passed_over) - 1} more)" if len(passed_over) > 1 else ""
        raise UserError(f"{run_dir} has no checkpoint to resume from: {passed_over[0]}{more}")
    raise UserError(f"{run_dir} has no checkpoint to resume from")


def run_difference(model: Agent, config: dict[str, Any]) -> str | None:
    """How ``model`` differs from the run that ``config`` (a config.yaml) describes, in what
    defines the run; None if it does not."""
    theirs = (config.get("algo", "a2c"), config.get("env_id"), config.get("env_kwargs") or {})
    ours = (model.algo, model.env_id, dict(model.env_kwargs or {}))
    if _plain(ours) != _plain(theirs):
        return (
            f"it holds {ours[0].upper()} on {ours[1]} {ours[2] or ''}, the run is "
            f"{str(theirs[0]).upper()} on {theirs[1]} {theirs[2] or ''}".replace(" ,", ",")
        ).strip()
    theirs_wrappers = [_wrapper_key(w) for w in run_wrappers(config)]
    ours_wrappers = [_wrapper_key(w) for w in model.env_wrappers]
    if _plain(ours_wrappers) != _plain(theirs_wrappers):
        return f"its env wrappers are {ours_wrappers or 'none'}, the run's {theirs_wrappers}"
    names = ["seed", "n_envs", "vectorization"]
    if model.algo == "a3c":
        names += ["lock_updates", "runtime"] + (["n_workers"] if config.get("n_workers") else [])
    fields: dict[str, tuple[Any, Any]] = {
        name: (getattr(model, name, None), config.get(name)) for name in names if name in config
    }
    saved = model.config.to_dict()
    run_hyper = config.get("hyperparams") or {}
    for name, value in run_hyper.items():
        if name == "learning_rate" and isinstance(value, str):
            continue  # a schedule: the file holds the rate it had reached
        fields[name] = (saved.get(name), value)
    for name, (mine, run) in fields.items():
        if _plain(mine) != _plain(run):
            return f"its {name} is {mine!r}, the run's {run!r}"
    return None


def run_wrappers(config: dict[str, Any]) -> tuple[EnvWrapper, ...]:
    """The wrappers that a run's config.yaml names (env_wrapper, then frame_stack)."""
    try:
        return wrapper_stack(config.get("env_wrapper"), config.get("frame_stack"))
    except UserError as exc:
        raise UserError(f"config.yaml: {exc}") from None


def _wrapper_key(wrapper: EnvWrapper) -> tuple[str, dict[str, Any]]:
    """What identifies a wrapper of a run: its entry point and arguments."""
    return wrapper.entry_point, dict(wrapper.kwargs or {})


def _plain(value: Any) -> Any:
    """``value`` as JSON would carry it (tuples as lists), for comparing YAML with a file."""
    return json.loads(json.dumps(value, default=str))
