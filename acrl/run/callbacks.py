"""Ready-made callbacks for ``learn(callback=...)``: called after updates, False stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acrl.learner.reports import RECENT_EPISODES
from acrl.run.video import Episode, record_episodes


class CallbackList:
    """Several callbacks as one: each runs every time; training stops if any returns False."""

    def __init__(self, callbacks: list[Any]) -> None:
        self.callbacks = callbacks

    def __call__(self, model: Any) -> bool:
        results = [callback(model) for callback in self.callbacks]
        return all(result is not False for result in results)

    @property
    def stop_requested(self) -> bool:
        return any(stop_requested(callback) for callback in self.callbacks)


def stop_requested(callback: Any) -> bool:
    """Whether ``callback`` asks training to stop before the next update arrives (a callback
    may say so through a ``stop_requested`` attribute, as the CLI's signal handler does)."""
    return bool(getattr(callback, "stop_requested", False))


@dataclass
class StopOnReturn:
    """Stop once the mean return of the last ``window`` training episodes reaches ``threshold``.

    ``solved_at`` records the step count at which that happened (None until then), as
    Stable-Baselines3's StopTrainingOnRewardThreshold does for evaluation returns.
    """

    threshold: float
    window: int = 100
    solved_at: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.window <= RECENT_EPISODES:
            raise ValueError(f"window must be in [1, {RECENT_EPISODES}], got {self.window}")

    def __call__(self, model: Any) -> bool:
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
            self._next = (steps // self.every + 1) * self.every
        return True
