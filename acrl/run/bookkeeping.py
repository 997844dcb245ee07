"""What happens after every update, whichever engine applied it: the one place that counts.

Engines report applied updates (acrl.learner.reports.UpdateReport); the bookkeeping moves the
model's step and update counters, records the update statistics and finished episodes,
advances the progress bar, writes a metrics row each time the update count passes a
multiple of ``log_interval`` (never two rows at one step count), saves checkpoints and runs
the user's callback, whose False asks the engine to stop.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from acrl.learner.reports import Episode, UpdateReport
from acrl.run.callbacks import CallbackList, next_multiple, stop_requested
from acrl.run.checkpoints import Checkpointer
from acrl.run.metrics import MetricsLog
from acrl.run.progress import ProgressBar
from acrl.run.run_files import save_advantages

ROWS_PER_RUN = 200  # metrics rows that the default log interval aims at, whatever the budget


def check_settings(log_interval: int | None, checkpoint_every: int | None) -> None:
    """Raise ValueError for a bad ``log_interval`` or ``checkpoint_every`` (before a run
    writes anything)."""
    every = log_interval
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"log_interval must be an integer >= 1 or None, got {every!r}")
    every = checkpoint_every
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1 or None, got {every!r}")


def default_log_interval(end_timesteps: int, steps_per_update: int) -> int:
    """Updates between metrics rows for about ROWS_PER_RUN rows over a run of
    ``end_timesteps`` steps (a short run gets a row per update, a long one is not flooded)."""
    updates = max(1, end_timesteps // max(1, steps_per_update))
    return max(1, round(updates / ROWS_PER_RUN))


class Bookkeeper:
    """The bookkeeping of one ``learn()`` call of ``model`` (an acrl.algorithms model)."""

    def __init__(
        self,
        model: Any,
        bar_total: int,
        callback: CallbackList | None = None,
        log_interval: int = 100,
        progress_bar: bool = False,
        checkpoint_every: int | None = None,
    ) -> None:
        check_settings(log_interval, checkpoint_every)
        self.model = model
        self.metrics: MetricsLog = model.metrics
        self.callback = callback
        self.log_interval = log_interval
        self.checkpoints = Checkpointer(
            model, model.log_dir, checkpoint_every, model.num_timesteps, model.keep_checkpoints
        )
        self.bar = ProgressBar(bar_total, enabled=progress_bar)
        self._shown = model.num_timesteps
        self._next_row = self._row_after(model.num_updates)

    def _row_after(self, updates: int) -> int:
        return next_multiple(updates, self.log_interval)

    def after_update(self, report: UpdateReport) -> bool:
        """Account for ``report``; False if the callback asks training to stop."""
        model = self.model
        model.num_timesteps = report.timesteps
        for stats in report.stats:
            self.metrics.record(stats)
        model.num_updates += len(report.stats)
        self._add_episodes(report.episodes)
        self.bar.advance(max(0, model.num_timesteps - self._shown), model.recent_mean_return)
        self._shown = max(self._shown, model.num_timesteps)
        if (
            model.num_updates >= self._next_row
            and model.num_timesteps > self.metrics.last_timesteps
        ):
            self.write_row()
            self._next_row = self._row_after(model.num_updates)
        self.checkpoints.maybe_save(model.num_timesteps)
        if report.stats and self.callback is not None:
            return self.callback(model) is not False
        return True

    def stop_requested(self) -> bool:
        """Whether the callback asks to stop now, between updates (engines that wait for
        workers check it while they wait)."""
        return stop_requested(self.callback)

    def _add_episodes(self, episodes: list[Episode]) -> None:
        """Count episodes that finished by ``num_timesteps`` steps and log them."""
        model = self.model
        model.recent_episodes.extend(episodes)
        model.total_episodes += len(episodes)
        self.metrics.record_episodes(model.num_timesteps, episodes)

    def write_row(self) -> None:
        model = self.model
        episodes = model.recent_episodes
        lengths = [n for _, n in episodes]
        row = self.metrics.write_row(
            timesteps=model.num_timesteps,
            updates=model.num_updates,
            episodes=model.total_episodes,
            ep_return_mean=model.recent_mean_return(),
            ep_length_mean=sum(lengths) / len(lengths) if lengths else math.nan,
        )
        if model.verbose:
            print(
                " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                )
            )

    def close(self) -> None:
        self.bar.close()

    def finish(self, advantages: np.ndarray) -> None:
        """After training: the last row, and the last rollout's advantages in the run dir."""
        # never two rows at one step count (A3C's reports can arrive after their count);
        # the episodes that such late reports carry are logged all the same
        if self.metrics.has_pending and self.model.num_timesteps > self.metrics.last_timesteps:
            self.write_row()
        self.metrics.write_episodes()
        if self.model.log_dir is not None and advantages.size:
            save_advantages(self.model.log_dir, advantages)
