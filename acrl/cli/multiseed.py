"""Several seeds of one config: one ``acrl train`` process per seed, then a summary.

Each seed runs in its own sub-directory ``seed-S`` of the parent run directory (sequentially,
or ``jobs`` at a time). The parent then gets ``summary.json`` (per seed: final deterministic
evaluation, last-100 training return, steps to the target; across seeds: mean, std, median)
and the aggregate learning-curve and diagnostics plots.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from acrl.cli.stop import PARENT_ENV, StopSignals
from acrl.config.checks import MAX_SEED
from acrl.errors import UserError
from acrl.plotting.runs import SUMMARY, load_run, solved_threshold
from acrl.run.atomic import write_atomic

EVAL_EPISODES = 10
EVAL_SEED_OFFSET = 10_000  # seed S is evaluated on envs seeded 10_000 + S, unseen in training
WINDOW = 100  # episodes in the moving mean that must reach the target


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds takes distinct non-negative integers, got {text!r}")
    if max(seeds) > MAX_SEED:  # refused here, not by the seed's run after the others trained
        raise UserError(f"--seeds: a seed must be at most {MAX_SEED}, got {max(seeds)}")
    return seeds


def child_argv(args: argparse.Namespace, seed: int, run_dir: Path, progress: bool) -> list[str]:
    """The ``acrl train`` command line of one seed's run."""
    argv = [sys.executable, "-m", "acrl", "train"]
    argv += [] if args.env_id is None else [args.env_id]
    options = {
        "--algo": args.algo,
        "--config": None if args.config is None else Path(args.config).resolve(),
        "--timesteps": args.timesteps,
        "--n-envs": args.n_envs,
        "--preset": args.preset,
        "--workers": args.workers,
        "--backend": args.backend,
        "--runtime": args.runtime,
        "--address": args.address,
        "--checkpoint-every": args.checkpoint_every,
        "--keep-checkpoints": args.keep_checkpoints,
        "--video-every": args.video_every,
        "--eval-every": args.eval_every,
        "--eval-episodes": args.eval_episodes,
        "--log-interval": args.log_interval,
        "--device": args.device,
        "--threads": args.threads,
    }
    for flag, value in options.items():
        if value is not None:
            argv += [flag, str(value)]
    for assignment in args.assignments:
        argv += ["--set", assignment]
    for module in args.env_modules:  # each seed's process imports what this one did
        argv += ["--env-module", module]
    argv += ["--seed", str(seed), "--run-dir", str(run_dir), "--overwrite"]
    return argv if progress else [*argv, "--no-progress"]


def train_seeds(args: argparse.Namespace, seeds: list[int], parent: Path) -> int:
    """Run every seed, then write the summary and plots; the exit status of the worst run."""
    jobs = min(args.jobs, len(seeds))
    print(f"training {len(seeds)} seeds ({jobs} at a time) -> {parent}", flush=True)
    pending = list(seeds)
    running: dict[int, tuple[subprocess.Popen[bytes], Any]] = {}
    codes: dict[int, int] = {}
    stop = StopSignals()
    forwarded = False
    try:
        with stop:
            while pending or running:
                if stop.received is not None and not forwarded:
                    forwarded = True
                    pending.clear()  # start no more; ask the running ones to stop and save
                    for process, _ in running.values():
                        process.send_signal(signal.SIGTERM)
                while pending and len(running) < jobs:
                    seed = pending.pop(0)
                    progress = jobs == 1 and not args.no_progress
                    argv = child_argv(args, seed, parent / f"seed-{seed}", progress)
                    log = None if jobs == 1 else (parent / f"seed-{seed}.log").open("wb")
                    env = {**os.environ, PARENT_ENV: str(os.getpid())}  # it stops if we die
                    process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
                    running[seed] = (process, log)
                time.sleep(0.05)
                for seed, (process, log) in list(running.items()):
                    if process.poll() is not None:
                        codes[seed] = process.returncode
                        if log is not None:
                            log.close()
                        del running[seed]
                        if jobs > 1:
                            print(f"seed {seed}: exit {process.returncode}", flush=True)
    except KeyboardInterrupt:  # a second Ctrl-C, which the children got too
        for process, _ in running.values():
            process.wait()
        print("interrupted twice: runs that finished are kept", file=sys.stderr)
        return 130
    if stop.received is not None:
        print(
            f"interrupted by {stop.name}: each run stopped saved its model; no summary written",
            file=sys.stderr,
        )
        return stop.exit_status
    done = [s for s in seeds if codes.get(s) == 0]
    for seed in seeds:
        if codes.get(seed) != 0:
            print(f"acrl: error: seed {seed} failed (exit {codes.get(seed)})", file=sys.stderr)
    if done:
        target = args.target if args.target is not None else _target_of(parent / f"seed-{done[0]}")
        summary = summarize([parent / f"seed-{s}" for s in done], target)
        write_atomic(parent / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
        _plot(parent, target)
        _print_summary(summary, parent)
    return max(codes.values(), default=1)


def _target_of(run_dir: Path) -> float | None:
    return solved_threshold(load_run(run_dir).env_id)


def steps_to_target(
    timesteps: np.ndarray, returns: np.ndarray, target: float, window: int = WINDOW
) -> int | None:
    """First step count at which the mean of the last ``window`` episodes reached ``target``."""
    if returns.size < window:
        return None
    sums = np.cumsum(np.insert(returns, 0, 0.0))
    means = (sums[window:] - sums[:-window]) / window  # means[k]: episodes k .. k+window-1
    hits = np.flatnonzero(means >= target)
    return None if hits.size == 0 else int(timesteps[hits[0] + window - 1])


def summarize(run_dirs: list[Path], target: float | None) -> dict[str, Any]:
    """Per-seed results and their aggregates (seeds evaluated deterministically)."""
    from acrl.algorithms.registry import load_model
    from acrl.run.evaluation import evaluate_policy

    per_seed = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        model = load_model(run_dir, device="cpu")
        seed = int(run.config.get("seed", 0))
        env = model.make_env(min(EVAL_EPISODES, 8), seed=EVAL_SEED_OFFSET + seed)
        try:
            mean, std = evaluate_policy(model, env, EVAL_EPISODES, seed=EVAL_SEED_OFFSET + seed)
        finally:
            env.close()
        episodes = run.episodes
        per_seed.append(
            {
                "seed": seed,
                "run_dir": run_dir.name,
                "timesteps": model.num_timesteps,
                "eval_mean_return": mean,
                "eval_std_return": std,
                "train_mean_return_last_100": _last_finite(run.metrics.get("ep_return_mean")),
                "steps_to_target": None
                if target is None or not episodes
                else steps_to_target(episodes["timesteps"], episodes["return"], target),
                "wall_time_s": _last_finite(run.metrics.get("wall_time")),
            }
        )
    solved = [s["steps_to_target"] for s in per_seed if s["steps_to_target"] is not None]
    return {
        "target": target,
        "eval_episodes": EVAL_EPISODES,
        "seeds": per_seed,
        "eval_mean_return": _stats([s["eval_mean_return"] for s in per_seed]),
        "train_mean_return_last_100": _stats([s["train_mean_return_last_100"] for s in per_seed]),
        "solved": f"{len(solved)}/{len(per_seed)}",
        "steps_to_target": _stats(solved),
    }


def _stats(values: list[Any]) -> dict[str, float | None]:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "median": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(finite),
        "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
        "median": statistics.median(finite),
        "min": min(finite),
        "max": max(finite),
    }


def _last_finite(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


def _plot(parent: Path, target: float | None) -> None:
    from acrl.plotting.curves import save_curves
    from acrl.plotting.runs import load_runs

    save_curves(load_runs([parent]), parent / "learning_curve.png", target)


def _print_summary(summary: dict[str, Any], parent: Path) -> None:
    for s in summary["seeds"]:
        steps = s["steps_to_target"]
        print(
            f"seed {s['seed']}: eval {s['eval_mean_return']:.1f} ± {s['eval_std_return']:.1f}, "
            f"target reached at {'-' if steps is None else f'{steps:,} steps'}"
        )
    ev = summary["eval_mean_return"]
    print(
        f"across seeds: eval mean {ev['mean']:.1f}, std {ev['std']:.1f}, median {ev['median']:.1f}"
        f"; solved {summary['solved']}; summary and plots in {parent}"
    )
