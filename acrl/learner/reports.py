"""What an update measured, and what an engine reports after applying updates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

Episode = tuple[float, int]  # (return, length) of a finished training episode
RECENT_EPISODES = 100  # training episodes a model keeps for its recent mean return


@dataclass(frozen=True)
class UpdateStats:
    """What one update measured; tensors stay on the device until a row is written."""

    policy_loss: Tensor
    value_loss: Tensor
    entropy: Tensor
    grad_norm: Tensor
    explained_variance: Tensor
    learning_rate: float

    def as_floats(self) -> list[float]:
        """The statistics as plain numbers, in the order of ``from_floats``."""
        values = torch.stack(
            [
                self.policy_loss,
                self.value_loss,
                self.entropy,
                self.grad_norm,
                self.explained_variance,
            ]
        ).tolist()
        return [*values, self.learning_rate]

    @classmethod
    def from_floats(cls, values: list[float]) -> UpdateStats:
        policy_loss, value_loss, entropy, grad_norm, explained_variance = map(
            torch.tensor, values[:5]
        )
        return cls(policy_loss, value_loss, entropy, grad_norm, explained_variance, values[5])


@dataclass(frozen=True)
class UpdateReport:
    """Updates an engine has applied: the global step count after them, what each measured
    (an engine may report several at once, or none: then only the step count moved) and
    the training episodes that finished meanwhile."""

    timesteps: int
    stats: list[UpdateStats] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)


class Bookkeeping(Protocol):
    """Where an engine sends its reports (acrl.run.bookkeeping); False asks it to stop."""

    def after_update(self, report: UpdateReport) -> bool: ...

    def stop_requested(self) -> bool: ...
