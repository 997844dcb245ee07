"""Periodic checkpoints: the model saved into its run directory every N steps."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Saveable(Protocol):
    def save(self, path: Path) -> Path: ...


class Checkpointer:
    """Saves a model to ``path`` each time training passes another ``every`` steps."""

    def __init__(self, model: Saveable, path: Path | None, every: int | None, start: int) -> None:
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise ValueError(f"checkpoint_every must be an integer >= 1 or None, got {every!r}")
        self.model = model
        self.path = path if every else None
        self.every = every or 0
        self._next = start + self.every

    def maybe_save(self, num_timesteps: int) -> None:
        if self.path is not None and num_timesteps >= self._next:
            self.model.save(self.path)
            self._next = num_timesteps + self.every
