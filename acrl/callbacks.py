"""Ready-made callbacks for ``learn(callback=...)``: called after updates, False stops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acrl.agent import RECENT_EPISODES


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
