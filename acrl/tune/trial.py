"""One trial of ``acrl tune``: its settings trained on every seed of the study, evaluated
as it goes, and its objective (the median of the seeds' last evaluations)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from acrl.algorithms.registry import make_model
from acrl.config.runs import RunConfig, resolve_run_config
from acrl.errors import NonFiniteError, UserError, WorkerError
from acrl.run.eval_callback import EvalCallback
from acrl.tune.space import SpaceShape


@dataclass(frozen=True)
class StudyPlan:
    """What every trial of a study shares: the env, the budget, the seeds, the evaluations."""

    env_id: str
    algo: str = "a2c"
    timesteps: int = 100_000
    seeds: int = 3  # seeds 0 .. seeds-1, the same for every trial
    evaluations: int = 5  # per seed, evenly spaced; the last at the end of training
    eval_episodes: int = 10
    base: Mapping[str, Any] = field(default_factory=dict)  # a --config file's values

    def __post_init__(self) -> None:
        for name in ("timesteps", "seeds", "evaluations", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(
                    f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}"
                )
        if self.timesteps < self.evaluations:
            raise UserError(f"--timesteps {self.timesteps} is fewer than the evaluations")

    def to_dict(self) -> dict[str, Any]:
        """What identifies the study (study.yaml): a resumed study must ask the same."""
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "timesteps": self.timesteps,
            "seeds": self.seeds,
            "evaluations": self.evaluations,
            "eval_episodes": self.eval_episodes,
            "base": dict(self.base),
        }


def run_config(plan: StudyPlan, settings: Mapping[str, Any], seed: int) -> RunConfig:
    """The run of ``settings`` for ``seed``: the env's preset, the study's base values, then
    the settings (their policy_kwargs merged into the preset's)."""
    values = {**plan.base, **settings}
    overrides = {"n_timesteps": plan.timesteps, "seed": seed}
    if "policy_kwargs" in settings:
        base = resolve_run_config(plan.env_id, plan.algo, file_values=plan.base)
        values["policy_kwargs"] = {
            **base.hyperparams.policy_kwargs,
            **settings["policy_kwargs"],
        }
    return resolve_run_config(plan.env_id, plan.algo, overrides=overrides, file_values=values)


def space_shape(plan: StudyPlan) -> SpaceShape:
    """The parts of the search space that fit the env: made once, nothing trained."""
    config = run_config(plan, {}, 0)
    try:
        model = make_model(config, threads=1)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        obs, act = model.observation_space, model.action_space
    finally:
        env = getattr(model, "env", None)
        if env is not None:
            env.close()
    vector = isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1
    return SpaceShape(plan.algo, vector, isinstance(act, gym.spaces.Box))


class Pruned(Exception):
    """The pruner stopped the trial at ``step`` (its intermediate value, compared with the
    other trials' at the same step, was too low)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step


class Diverged(Exception):
    """Training met a NaN or infinity with these settings."""


@dataclass
class TrialResult:
    value: float
    per_seed: list[float]
    seconds: float


Report = Callable[[float, int], bool]
"""``report(value, step) -> prune?``: the trial's intermediate value at report ``step``."""


def run_trial(
    plan: StudyPlan,
    settings: Mapping[str, Any],
    report: Report,
) -> TrialResult:
    """Train ``settings`` on seeds 0 .. plan.seeds-1 one after another, evaluating each
    ``plan.evaluations`` times (deterministic, on env seeds held apart from training).
    Evaluation i of seed k is report step k * evaluations + i, so every trial reports the
    same steps; a True from ``report`` (prune) raises Pruned, a NaN in training Diverged."""
    start = time.perf_counter()
    finals: list[float] = []
    for seed in range(plan.seeds):
        config = run_config(plan, settings, seed)
        finals.append(_train_seed(plan, config, seed, report))
    return TrialResult(statistics.median(finals), finals, time.perf_counter() - start)


def _train_seed(plan: StudyPlan, config: RunConfig, seed: int, report: Report) -> float:
    """One seed's run: its last evaluation's mean return."""
    model = make_model(config, threads=1)
    freq = -(-plan.timesteps // plan.evaluations)  # ceil: evaluation k is at k/E or later
    pruned: list[int] = []
    reported = [-1]

    def after_eval(model: Any) -> bool:
        # numbered by progress, so that report i is the same point of training in every
        # trial, whatever its batch (a batch larger than freq skips numbers)
        progress = model.num_timesteps * plan.evaluations // plan.timesteps - 1
        index = min(plan.evaluations - 1, progress)
        if index <= reported[0]:
            return True
        reported[0] = index
        step = seed * plan.evaluations + index
        if report(float(model.last_evaluation[1]), step):
            pruned.append(step)
            return False
        return True

    evaluator = EvalCallback(
        eval_freq=freq,
        n_eval_episodes=plan.eval_episodes,
        callback_after_eval=after_eval,
    )
    try:
        model.learn(plan.timesteps, callback=evaluator, progress_bar=False)
        if pruned:
            raise Pruned(pruned[0])
        last = model.last_evaluation
        if last is None or last[0] != model.num_timesteps:  # budget not a multiple of freq
            evaluator.evaluate(model)
            evaluator.on_training_end(model)
        assert model.last_evaluation is not None
        return float(model.last_evaluation[1])
    except NonFiniteError as exc:
        raise Diverged(str(exc)) from None
    except WorkerError as exc:  # A3C: a worker's NaN reaches the main process as its error
        if "NonFiniteError" in str(exc):
            raise Diverged(str(exc)) from None
        raise
    finally:
        env = getattr(model, "env", None)
        if env is not None:
            env.close()
