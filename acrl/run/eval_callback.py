"""Evaluation during training: deterministic episodes on an env of its own, every
``eval_freq`` training steps, with the best model kept (Stable-Baselines3's EvalCallback).

Evaluation k (counting a resumed run's earlier ones) resets its env with a seed drawn from
``(seed, k)`` (``seed``: the model's seed + 10,000 unless given), apart from training's: each
evaluation sees new starts, and the same run evaluates on the same starts in any number of
``learn()`` calls or resumes. Acting normalizes observations with the model's statistics and
never updates them. A3C's main process evaluates the shared model while the workers train on.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from acrl.config.checks import MAX_SEED
from acrl.envs import as_vector_env, make_vec_env
from acrl.run.atomic import write_atomic
from acrl.run.callbacks import BaseCallback, after_update, check_callback, next_multiple
from acrl.run.evaluation import EvaluationStopped, evaluate_policy
from acrl.run.log_files import EVALUATION_COLUMNS, EVALUATIONS
from acrl.run.owned import check_replaceable, is_regular_file

BEST_MODEL = "best_model.acrl"
SEED_OFFSET = 10_000  # the evaluation env's seed, from the model's: apart from training's


class EvalCallback(BaseCallback):
    """Evaluate every ``eval_freq`` training steps (summed over envs and workers; SB3 counts
    calls, one per vector step) for ``n_eval_episodes`` complete episodes.

    ``eval_env``: an env id, an Env or a VectorEnv (yours: not closed here), or None for a
    fresh copy of the model's own env (``n_envs`` of them; acrl's Atari settings evaluate
    whole games on unclipped scores). Results go to ``log_path/evaluations.csv`` (one row per
    evaluation, rewritten atomically), to TensorBoard as ``eval/mean_return`` and
    ``eval/mean_length`` if the run logs there, and to ``evaluations_timesteps``,
    ``evaluations_results`` and ``evaluations_length``. A mean better than every earlier one
    saves ``best_model_save_path/best_model.acrl`` (atomically) and runs
    ``callback_on_new_best``; ``callback_after_eval`` runs after each evaluation; a False
    from either stops training. ``model.last_evaluation`` holds the last ``(step, mean)``
    (``StopOnReturn(on="evaluation")`` judges it). A ``log_path`` that already holds
    evaluations keeps those at or before the model's step count when training starts: a
    resumed run continues its file; one that acrl did not write stops training before it
    starts (UserError: acrl replaces only its own files).
    """

    def __init__(
        self,
        eval_env: str | gym.Env | VectorEnv | None = None,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 5,
        deterministic: bool = True,
        best_model_save_path: str | Path | None = None,
        log_path: str | Path | None = None,
        callback_on_new_best: Any = None,
        callback_after_eval: Any = None,
        seed: int | None = None,
        n_envs: int | None = None,
        verbose: int = 0,
    ) -> None:
        for name, value in (("eval_freq", eval_freq), ("n_eval_episodes", n_eval_episodes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if n_envs is not None and not 1 <= n_envs <= n_eval_episodes:
            raise ValueError(f"n_envs must be in [1, n_eval_episodes], got {n_envs!r}")
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be in [0, {MAX_SEED}], got {seed!r}")
        for hook in (callback_on_new_best, callback_after_eval):
            if hook is not None:
                check_callback(hook)
        self.eval_env, self.eval_freq, self.n_eval_episodes = eval_env, eval_freq, n_eval_episodes
        self.deterministic, self.seed, self.n_envs, self.verbose = (
            deterministic,
            seed,
            n_envs,
            verbose,
        )
        self.best_model_save_path = (
            None if best_model_save_path is None else Path(best_model_save_path)
        )
        self.log_path = None if log_path is None else Path(log_path)
        self.callback_on_new_best, self.callback_after_eval = (
            callback_on_new_best,
            callback_after_eval,
        )
        self.evaluations_timesteps: list[int] = []
        self.evaluations_results: list[list[float]] = []
        self.evaluations_length: list[list[int]] = []
        self.best_mean_reward = -math.inf
        self.last_mean_reward = -math.inf
        self._rows: list[dict[str, Any]] = []
        self._env: VectorEnv | None = None
        self._owned = False
        self._next: int | None = None
        self._start = time.perf_counter()
        self._wall_offset = 0.0  # a resumed run's clock goes on from its last evaluation

    # ---- hooks --------------------------------------------------------------------------
    def on_training_start(self, model: Any) -> None:
        self._next = next_multiple(model.num_timesteps, self.eval_freq)
        self._start = time.perf_counter()
        self._keep_earlier_rows(model.num_timesteps)
        self._environment(model)  # an env that cannot be made fails now, not after eval_freq

    def on_rollout_end(self, model: Any) -> bool:
        if self._next is None:  # called without on_training_start: begin at this step
            self.on_training_start(model)
        assert self._next is not None
        if model.num_timesteps < self._next:
            return True
        self._next = next_multiple(model.num_timesteps, self.eval_freq)
        return self.evaluate(model)

    def on_training_end(self, model: Any) -> None:
        if self._owned and self._env is not None:
            self._env.close()
            self._env = None
        self._next = None

    # ---- one evaluation -----------------------------------------------------------------
    def evaluate(self, model: Any) -> bool:
        """Evaluate now, record and keep the best; False if a hook asks training to stop."""
        env = self._environment(model)
        seed = self.evaluation_seed(model, len(self._rows))
        try:
            returns, lengths = evaluate_policy(
                model, env, self.n_eval_episodes, self.deterministic, True, seed=seed
            )
        except EvaluationStopped:  # no row: the run stops after this update
            return True
        mean, std = float(np.mean(returns)), float(np.std(returns))
        steps = int(model.num_timesteps)
        self.evaluations_timesteps.append(steps)
        self.evaluations_results.append(list(returns))  # type: ignore[arg-type]
        self.evaluations_length.append(list(lengths))  # type: ignore[arg-type]
        self.last_mean_reward = mean
        model.last_evaluation = (steps, mean)
        self._record(model, steps, mean, std, float(np.mean(lengths)))
        if self.verbose:
            print(f"eval at {steps} steps: mean return {mean:.2f} ± {std:.2f}", flush=True)
        proceed = True
        if mean > self.best_mean_reward:
            self.best_mean_reward = mean
            if self.best_model_save_path is not None:
                self.best_model_save_path.mkdir(parents=True, exist_ok=True)
                model.save(self.best_model_save_path / BEST_MODEL)
            proceed = _run(self.callback_on_new_best, model)
        return _run(self.callback_after_eval, model) and proceed

    def _environment(self, model: Any) -> VectorEnv:
        if self._env is None:
            n = self.n_envs or min(self.n_eval_episodes, 8)
            if self.eval_env is None:
                self._env, self._owned = model.make_env(n), True
            elif isinstance(self.eval_env, str):
                self._env, self._owned = make_vec_env(self.eval_env, n), True
            else:
                self._env, self._owned = as_vector_env(self.eval_env), False
        return self._env

    def evaluation_seed(self, model: Any, index: int) -> int:
        """The env seed of evaluation ``index``: drawn from (``seed``, ``index``)."""
        base = self.seed
        if base is None:
            base = ((getattr(model, "seed", None) or 0) + SEED_OFFSET) % (MAX_SEED + 1)
        return int(np.random.SeedSequence([base, index]).generate_state(1)[0])

    # ---- evaluations.csv and TensorBoard --------------------------------------------------
    def _record(self, model: Any, steps: int, mean: float, std: float, length: float) -> None:
        wall = time.perf_counter() - self._start + self._wall_offset
        self._rows.append(
            {
                "timesteps": steps,
                "wall_time": round(wall, 3),
                "mean_return": mean,
                "std_return": std,
                "mean_length": length,
                "episodes": self.n_eval_episodes,
            }
        )
        if self.log_path is not None:
            self.log_path.mkdir(parents=True, exist_ok=True)
            write_atomic(self.log_path / EVALUATIONS, _csv(self._rows))
        metrics = getattr(model, "metrics", None)
        tensorboard = getattr(metrics, "tensorboard", None)
        if tensorboard is not None:
            tensorboard.write_scalars({"eval/mean_return": mean, "eval/mean_length": length}, steps)

    def _keep_earlier_rows(self, steps: int) -> None:
        """A log_path's earlier evaluations at or before ``steps`` carry on (a resume); a
        file there that acrl did not write stops training before it starts (UserError)."""
        if self.log_path is None:
            return
        check_replaceable(self.log_path / EVALUATIONS, "move it, or pass another log_path")
        if self._rows or not is_regular_file(self.log_path / EVALUATIONS):
            return
        rows = read_evaluations(self.log_path / EVALUATIONS)
        self._rows = [row for row in rows if row["timesteps"] <= steps]
        if self._rows:
            self.best_mean_reward = max(row["mean_return"] for row in self._rows)
            self._wall_offset = float(self._rows[-1]["wall_time"])
        write_atomic(self.log_path / EVALUATIONS, _csv(self._rows))


def read_evaluations(path: Path) -> list[dict[str, Any]]:
    """The rows of an evaluations.csv (numbers parsed; a damaged row is skipped)."""
    rows = []
    with open(path, newline="", errors="replace") as fh:  # a damaged row is skipped
        for row in csv.DictReader(fh):
            try:
                parsed = {k: float(row[k]) for k in EVALUATION_COLUMNS}
            except (KeyError, TypeError, ValueError):
                continue
            parsed["timesteps"], parsed["episodes"] = (
                int(parsed["timesteps"]),
                int(parsed["episodes"]),
            )
            rows.append(parsed)
    return rows


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EVALUATION_COLUMNS)
    for row in rows:
        writer.writerow([row[k] for k in EVALUATION_COLUMNS])
    return out.getvalue().encode()


def _run(hook: Any, model: Any) -> bool:
    return hook is None or after_update(hook, model) is not False
