"""Learning quality of the presets: against rl-baselines3-zoo's published A2C results and
Stable-Baselines3 trained side by side.

Trains each preset for the given seeds at its budget, evaluates 20 deterministic episodes per
seed (env seeds 10,000 + seed, apart from training), and prints budget, median, min and max
evaluation return, wall time, the zoo's figure and how many seeds fall below it (a seed whose
training diverges is evaluated as it stood, marked, and the others go on). Beside each
acrl seed, SB3's A2C trains at the same budget and seed: with the zoo's entry for the env
(benchmarks/zoo.py), or for a MinAtar preset (the zoo has none) with the same network
(MinAtar's, as acrl's SmallCNN) and settings. ``--no-sb3`` skips SB3; ``--sb3-only`` skips acrl
(SB3's seeds for acrl figures already measured on the same kind of machine: scores, not times).
Not part of `make test`: the full run takes hours on 2 cores (LunarLanderContinuous alone is
5M steps per seed). `--scale 0.2` runs every budget at a fifth, for a first look.
`--curve 30000` also evaluates 10 episodes every 30,000 steps and prints the best point of
the seeds' mean curve, the statistic of Tianshou's MuJoCo benchmark (its A2C figures); with
`--log-dir DIR` each seed's curve stays in its `evaluations.csv`, and `--curves-in DIR` gives
the statistic over every seed there (seeds run in separate processes, two at a time).

    .venv/bin/python benchmarks/quality.py [--presets CartPole-v1,Pendulum-v1] [--seeds 0,1,2]
        [--log-dir runs/quality] [--no-sb3] [--curve STEPS] [--curves-in runs/quality]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import torch
from common import machine
from zoo import ZOO_RESULTS, ZOO_SETTINGS, sb3_zoo_run

from acrl import EvalCallback, evaluate_policy, make_vec_env
from acrl.algorithms.registry import make_model
from acrl.config.presets import load_presets
from acrl.config.runs import RunConfig, read_config_file, resolve_run_config
from acrl.errors import NonFiniteError, first_line
from acrl.run.log_files import EVALUATIONS

MINATAR = ("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1", "MinAtar/Freeway-v1")
SB3_KEYS = (
    "learning_rate",
    "n_steps",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "normalize_advantage",
    "rms_prop_eps",
)


def budget_of(config: RunConfig, scale: float) -> int:
    """``scale`` of the preset's budget, and at least one update."""
    return max(int(config.n_timesteps * scale), config.n_envs * config.hyperparams.n_steps)


class SeedResult(NamedTuple):
    """One acrl seed: its final evaluation, wall time, budget and curve; ``diverged`` is the
    NonFiniteError's line when training stopped early (the policy as it stood is evaluated)."""

    mean: float
    wall: float
    budget: int
    points: list[tuple[int, float]]
    diverged: str | None = None


def run(
    preset: str,
    seed: int,
    scale: float,
    log_dir: Path | None,
    algo: str = "a2c",
    assignments: tuple[str, ...] = (),
    file_values: dict | None = None,
    curve: int | None = None,
) -> SeedResult:
    """Train and evaluate one seed. A run that diverges (NonFiniteError: the update it would
    have spoiled is not applied) is evaluated as it stood, and says so, so that the other seeds
    go on."""
    config = resolve_run_config(
        preset, algo, overrides={"seed": seed}, assignments=assignments, file_values=file_values
    )
    budget = budget_of(config, scale)
    run_dir = None if log_dir is None else log_dir / preset / f"seed-{seed}"
    model = make_model(config, log_dir=run_dir)
    evaluations = None
    if curve is not None:  # 10 deterministic episodes every `curve` steps, as Tianshou tests
        evaluations = EvalCallback(
            eval_freq=curve, n_eval_episodes=10, n_envs=10, log_path=run_dir
        )  # with a log dir, its evaluations.csv: --curves-in joins seeds run apart
    start = time.perf_counter()
    diverged = None
    try:
        model.learn(budget, callback=evaluations)
    except NonFiniteError as exc:
        diverged = f"diverged at step {model.num_timesteps:,}: {first_line(exc)}"
    wall = time.perf_counter() - start
    points = []
    if evaluations is not None:
        results = evaluations.evaluations_results
        points = [
            (t, statistics.fmean(r))
            for t, r in zip(evaluations.evaluations_timesteps, results, strict=True)
        ]
    if run_dir is not None:
        model.save(run_dir / "model.acrl")  # acrl eval / video / plot --policy-slice read it
    mean, _ = evaluate_policy(model, model.make_env(8, seed=10_000 + seed), 20, seed=10_000 + seed)
    return SeedResult(mean, wall, budget, points, diverged)


def best_of_mean_curve(curves: list[list[tuple[int, float]]]) -> str:
    """Tianshou's MuJoCo statistic (the TD3 paper's): the best point of the seeds' mean curve,
    +/- the seeds' standard deviation there."""
    steps = [t for t, _ in curves[0]]
    if not steps or any([t for t, _ in c] != steps for c in curves):
        return "no common evaluation points"
    means = [statistics.fmean(c[i][1] for c in curves) for i in range(len(steps))]
    best = max(range(len(steps)), key=means.__getitem__)
    spread = statistics.pstdev(c[best][1] for c in curves)
    return (
        f"best of the mean curve over {len(curves)} seeds: {means[best]:.2f} +/- {spread:.2f} "
        f"at {steps[best]:,} steps ({len(steps)} evaluations); final point {means[-1]:.2f}"
    )


def curves_in(log_dir: Path, preset: str) -> list[list[tuple[int, float]]]:
    """The evaluation curves that `--curve` runs with `--log-dir` left for ``preset``, one per
    seed directory (seeds run in separate processes, for Tianshou's statistic over them all)."""
    curves = []
    for seed_dir in sorted((log_dir / preset).glob("seed-*")):
        with open(seed_dir / EVALUATIONS, newline="") as file:
            rows = list(csv.DictReader(file))
        curves.append([(int(r["timesteps"]), float(r["mean_return"])) for r in rows])
        print(f"  {seed_dir.name}: {len(rows)} evaluations, last {curves[-1][-1][1]:.2f}")
    if not curves:
        raise SystemExit(f"no seed-* directories under {log_dir / preset}")
    return curves


def sb3_run(preset: str, seed: int, scale: float) -> tuple[float, float]:
    """SB3's A2C beside ``preset`` at its budget: the zoo's entry, or MinAtar's settings."""
    if preset in MINATAR:
        return run_sb3(preset, seed, scale)
    if preset not in ZOO_SETTINGS:
        raise SystemExit(f"{preset}: no SB3 side by side (the zoo has no entry for it)")
    config = resolve_run_config(preset, overrides={"seed": seed})
    return sb3_zoo_run(preset, seed, budget_of(config, scale))


def run_sb3(preset: str, seed: int, scale: float) -> tuple[float, float]:
    """SB3's A2C with the MinAtar preset's network and settings: (evaluation mean, wall s)."""
    from minatar_breakout import sb3_minatar_model

    config = resolve_run_config(preset, overrides={"seed": seed})
    hyper = config.hyperparams
    if (
        not hyper.use_rms_prop
        or hyper.rms_prop_tf_like
        or not isinstance(hyper.learning_rate, float)
    ):
        raise SystemExit(f"{preset}: SB3 side by side takes plain RMSprop and a constant rate")
    budget = budget_of(config, scale)
    settings = {k: getattr(hyper, k) for k in SB3_KEYS}
    model = sb3_minatar_model(config.env_id, config.n_envs, seed, settings)
    start = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - start
    eval_env = make_vec_env(config.env_id, 8, seed=10_000 + seed)
    mean, _ = evaluate_policy(model, eval_env, 20, seed=10_000 + seed)
    return mean, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    presets = [name for name in ZOO_RESULTS if name in load_presets("a2c")]
    parser.add_argument("--presets", default=",".join((*presets, *MINATAR)))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each budget")
    parser.add_argument(
        "--log-dir", type=Path, help="keep each run's logs in LOG_DIR/PRESET/seed-S (for acrl plot)"
    )
    parser.add_argument("--no-sb3", action="store_true", help="acrl only, no SB3 side by side")
    parser.add_argument("--sb3-only", action="store_true", help="SB3 side by side only, no acrl")
    parser.add_argument("--algo", default="a2c", help="a2c, or a3c (its presets; no SB3)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="over the preset (a screen)"
    )
    parser.add_argument("--config", type=Path, help="settings over the preset (tune's best.yml)")
    parser.add_argument(
        "--curve",
        type=int,
        metavar="STEPS",
        help="also evaluate 10 episodes every STEPS steps and print the best point of the "
        "seeds' mean curve (Tianshou's MuJoCo statistic; it tests every 30000)",
    )
    parser.add_argument(
        "--curves-in",
        type=Path,
        metavar="LOG_DIR",
        help="train nothing: the statistic of --curve over every seed that --curve runs with "
        "--log-dir LOG_DIR left for the presets (seeds run in separate processes)",
    )
    args = parser.parse_args()
    if args.curves_in is not None:
        for preset in args.presets.split(","):
            print(f"{preset}: {best_of_mean_curve(curves_in(args.curves_in, preset))}")
        return
    torch.set_num_threads(1)
    values = None
    if args.config is not None:
        values = read_config_file(args.config)
        for key in ("algo", "preset", "seed", "n_timesteps"):
            values.pop(key, None)
    print(f"machine: {machine()}")
    print(f"{'preset':<26} {'budget':>9} {'median':>8} {'min':>8} {'max':>8} {'wall s':>7}  zoo")
    for preset in args.presets.split(","):
        results, theirs = [], []
        for seed in map(int, args.seeds.split(",")):  # interleaved: drift hits both
            if args.sb3_only:
                theirs.append(sb3_run(preset, seed, args.scale))
                print(
                    f"  SB3 seed {seed}: {theirs[-1][0]:.2f} in {theirs[-1][1]:.0f} s", flush=True
                )
                continue
            results.append(
                run(
                    preset,
                    seed,
                    args.scale,
                    args.log_dir,
                    args.algo,
                    tuple(args.set),
                    values,
                    args.curve,
                )
            )
            mine = results[-1]
            note = f" ({mine.diverged})" if mine.diverged else ""
            print(f"  {preset} seed {seed}: {mine.mean:.2f} in {mine.wall:.0f} s{note}", flush=True)
            if args.no_sb3 or args.algo != "a2c":
                continue
            if preset in MINATAR or preset in ZOO_SETTINGS:
                theirs.append(sb3_run(preset, seed, args.scale))
            if theirs:
                print(
                    f"  SB3 seed {seed}: {theirs[-1][0]:.2f} in {theirs[-1][1]:.0f} s", flush=True
                )
        if args.sb3_only:
            scores = [r for r, _ in theirs]
            print(
                f"{preset:<26} SB3 median {statistics.median(scores):.2f} (min {min(scores):.2f}, "
                f"max {max(scores):.2f}) in {sum(w for _, w in theirs):.0f} s",
                flush=True,
            )
            continue
        returns = [r.mean for r in results]
        yardstick = "none"  # the zoo publishes no A2C figure for this env
        if preset in ZOO_RESULTS:
            zoo_mean, zoo_std, zoo_budget = ZOO_RESULTS[preset]
            below = sum(r < zoo_mean for r in returns)
            yardstick = f"{zoo_mean:.2f} +/- {zoo_std:.2f} at {zoo_budget:,}"
            yardstick += f"; {below} of {len(returns)} seeds below it"
        if diverged := sum(r.diverged is not None for r in results):
            yardstick += f"; {diverged} diverged (scored as they stood)"
        if theirs:
            scores = [r for r, _ in theirs]
            if preset in MINATAR:
                settings = "same settings"
            elif preset in ZOO_RESULTS:
                settings = "the zoo's settings"
            else:
                settings = "the zoo's MuJoCo defaults (no entry of its own)"
            yardstick += (
                f"; SB3 median {statistics.median(scores):.2f} (min {min(scores):.2f}, max "
                f"{max(scores):.2f}) in {sum(w for _, w in theirs):.0f} s, {settings}"
            )
        print(
            f"{preset:<26} {results[0].budget:>9,} {statistics.median(returns):>8.2f} "
            f"{min(returns):>8.2f} {max(returns):>8.2f} {sum(r.wall for r in results):>7.0f}  "
            f"{yardstick}",
            flush=True,
        )
        if args.curve is not None:
            print(f"  {preset}: {best_of_mean_curve([r.points for r in results])}", flush=True)


if __name__ == "__main__":
    main()
