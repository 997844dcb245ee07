"""Periodic checkpoints: the model saved into its run directory every N steps.

Each checkpoint is written atomically (temporary file, fsync, rename) to
``checkpoints/step-N.acrl``; ``model.acrl`` then becomes the newest one (a hard link swapped
in by rename), and only the newest ``keep`` checkpoints stay. Whenever the process dies, even
in the middle of a write, the run directory holds a complete latest model. Pruning removes
only acrl's own checkpoint names (acrl.run.owned), oldest step first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from acrl.run.atomic import fsync_dir
from acrl.run.owned import CHECKPOINTS, checkpoint_name, checkpoints, real_subdir, remove


class Saveable(Protocol):
    def save(self, path: Path) -> Path: ...


class Checkpointer:
    """Saves a model into ``run_dir`` each time training passes another ``every`` steps."""

    def __init__(
        self, model: Saveable, run_dir: Path | None, every: int | None, start: int, keep: int = 2
    ) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep_checkpoints must be an integer >= 1, got {keep!r}")
        self.model = model
        self.run_dir = run_dir if every else None
        self.every = every or 0
        self.keep = keep
        self._start = start
        self._written: set[Path] = set()
        self._next = start + self.every

    def maybe_save(self, num_timesteps: int) -> None:
        """Save a checkpoint if training has passed the next multiple of ``every``."""
        if self.run_dir is None or num_timesteps < self._next:
            return
        folder = real_subdir(self.run_dir, CHECKPOINTS)  # never written through a symlink
        path = self.model.save(folder / checkpoint_name(num_timesteps))
        self._written.add(path)
        latest = self.run_dir / "model.acrl"
        tmp = self.run_dir / ".model.acrl.latest.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, tmp)
        os.replace(tmp, latest)
        fsync_dir(self.run_dir)
        # acrl's names only, oldest first: those up to the step this process started from
        # and those it wrote, never one a resume passed over (newer than where it started:
        # of another run, or damaged) even once training has passed its step
        ours = [
            path
            for steps, path in checkpoints(self.run_dir)
            if steps <= self._start or path in self._written
        ]
        for old in ours[: -self.keep]:
            remove(old)
        self._next = num_timesteps + self.every
