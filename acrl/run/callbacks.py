"""Callbacks for ``learn(callback=...)``: what they may be, how several combine, and the
ready-made ones (EvalCallback lives in acrl.run.eval_callback).

A callback is a callable ``f(model)``, run after updates (returning False stops training),
an object with any of the hooks ``on_training_start(model)``, ``on_rollout_end(model)``
(after each update; False stops) and ``on_training_end(model)`` (after training, however it
ended), or a list of these.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acrl.learner.reports import RECENT_EPISODES
from acrl.run.evaluation import EvaluationStopped
from acrl.run.video import Episode, record_episodes

HOOKS = ("on_training_start", "on_rollout_end", "on_training_end")


class BaseCallback:
    """A callback with hooks, as Stable-Baselines3's: subclass it and override any of them.
    Calling it is ``on_rollout_end``."""

    def on_training_start(self, model: Any) -> None:
        """Before the first update of a ``learn()`` call."""

    def on_rollout_end(self, model: Any) -> bool | None:
        """After each update (A3C: as workers report); False stops training."""
        return True

    def on_training_end(self, model: Any) -> None:
        """After the last update, however training ended (also on an error)."""

    def __call__(self, model: Any) -> bool | None:
        return self.on_rollout_end(model)


class CallbackList(BaseCallback):
    """Several callbacks as one: each runs every time; training stops if any returns False."""

    def __init__(self, callbacks: list[Any] | tuple[Any, ...]) -> None:
        if not isinstance(callbacks, list | tuple):
            raise TypeError(f"CallbackList takes a list, got {type(callbacks).__name__}")
        self.callbacks = [
            c if not isinstance(c, list | tuple) else CallbackList(c) for c in callbacks
        ]
        for callback in self.callbacks:
            check_callback(callback)

    def on_training_start(self, model: Any) -> None:
        for callback in self.callbacks:
            if hasattr(callback, "on_training_start"):
                callback.on_training_start(model)

    def on_rollout_end(self, model: Any) -> bool:
        proceed = True
        for callback in self.callbacks:
            if self.stop_requested:  # a signal: stop now, not after an evaluation or a video
                return False
            proceed = after_update(callback, model) is not False and proceed
        return proceed

    def on_training_end(self, model: Any) -> None:
        """Every callback's, even after one of them raised (the first error is raised)."""
        error: BaseException | None = None
        for callback in self.callbacks:
            if hasattr(callback, "on_training_end"):
                try:
                    callback.on_training_end(model)
                except BaseException as exc:  # the others still close their envs
                    error = error or exc
        if error is not None:
            raise error

    @property
    def stop_requested(self) -> bool:
        return any(stop_requested(callback) for callback in self.callbacks)


def check_callback(callback: Any) -> None:
    """Raise TypeError unless ``callback`` is callable or has one of the hooks."""
    if not callable(callback) and not any(hasattr(callback, hook) for hook in HOOKS):
        raise TypeError(
            f"a callback is a callable, an object with {', '.join(HOOKS)}, or a list of "
            f"these; got {type(callback).__name__}"
        )


def after_update(callback: Any, model: Any) -> Any:
    """Run ``callback`` after an update: its ``on_rollout_end``, else the callable itself
    (an object with only the other hooks does nothing here)."""
    if hasattr(callback, "on_rollout_end"):
        return callback.on_rollout_end(model)
    return callback(model) if callable(callback) else True


def as_callback(callback: Any) -> CallbackList | None:
    """``callback`` as one CallbackList (None stays None); TypeError for anything else."""
    if callback is None or isinstance(callback, CallbackList):
        return callback
    return CallbackList(list(callback) if isinstance(callback, list | tuple) else [callback])


def next_multiple(value: int, every: int) -> int:
    """The first multiple of ``every`` after ``value``: when a periodic callback runs next."""
    return (value // every + 1) * every


def stop_requested(callback: Any) -> bool:
    """Whether ``callback`` asks training to stop before the next update arrives (a callback
    may say so through a ``stop_requested`` attribute, as the CLI's signal handler does)."""
    return bool(getattr(callback, "stop_requested", False))


@dataclass
class StopOnReturn:
    """Stop once the mean return of the last ``window`` training episodes reaches ``threshold``,
    or with ``on="evaluation"`` once the last evaluation's mean does (an EvalCallback's,
    ``model.last_evaluation``; as Stable-Baselines3's StopTrainingOnRewardThreshold).

    ``solved_at`` records the step count at which that happened (None until then).
    """

    threshold: float
    window: int = 100
    on: str = "training"
    solved_at: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.window <= RECENT_EPISODES:
            raise ValueError(f"window must be in [1, {RECENT_EPISODES}], got {self.window}")
        if self.on not in ("training", "evaluation"):
            raise ValueError(f"on must be 'training' or 'evaluation', got {self.on!r}")

    def __call__(self, model: Any) -> bool:
        if self.on == "evaluation":
            last = getattr(model, "last_evaluation", None)
            if last is not None and last[1] >= self.threshold:
                self.solved_at = last[0]
                return False
            return True
        episodes = list(model.recent_episodes)[-self.window :]
        if (
            len(episodes) == self.window
            and sum(r for r, _ in episodes) / self.window >= self.threshold
        ):
            self.solved_at = model.num_timesteps
            return False
        return True


@dataclass
class RecordVideoEvery:
    """Record one deterministic episode each time training passes another ``every`` steps.

    Videos go to ``out_dir/step-{N}.mp4`` (N: the step count when recorded), rendered in a
    separate environment reset with ``seed``, so training itself is unchanged. A3C workers
    keep training while the main process records: a recording that lasts longer than
    ``every`` steps of training (about a second for a CartPole episode) skips a multiple.
    """

    every: int
    out_dir: Path
    seed: int = 0
    recorded: list[Episode] = field(default_factory=list)
    _next: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}")
        self.out_dir = Path(self.out_dir)

    def __call__(self, model: Any) -> bool:
        steps = model.num_timesteps
        if self._next is not None and steps >= self._next:
            name = f"step-{steps:09d}"
            with contextlib.suppress(EvaluationStopped):  # no video: the run stops
                self.recorded += record_episodes(
                    model,
                    model.env_id,
                    self.out_dir,
                    1,
                    self.seed,
                    model.env_kwargs,
                    name,
                    wrappers=getattr(model, "env_wrappers", ()),
                )
        if self._next is None or steps >= self._next:  # the first multiple of every after now
            self._next = next_multiple(steps, self.every)
        return True
