"""Training metrics: per-update statistics averaged per log interval into metrics.csv, and
every finished training episode in episodes.csv (the raw learning curve)."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import torch

from acrl.learner.reports import UpdateStats
from acrl.run.csv_repair import read_log, repair_notes, report, rewrite_log
from acrl.run.log_files import COLUMNS, EPISODE_COLUMNS
from acrl.run.tensorboard import TensorBoardLog


class MetricsLog:
    """Collects UpdateStats and writes one averaged row per log interval."""

    def __init__(
        self,
        csv_path: Path | None = None,
        start_timesteps: int = 0,
        tensorboard: TensorBoardLog | None = None,
        start_wall: float = 0.0,
    ) -> None:
        """Rows go to ``csv_path`` (appended to if it exists) and ``tensorboard``, if given;
        episodes go to episodes.csv beside ``csv_path``, written with each row. Wall times
        count from ``start_wall`` (a resumed run continues its clock)."""
        self.csv_path = csv_path
        self.episodes_path = None if csv_path is None else csv_path.with_name("episodes.csv")
        self.tensorboard = tensorboard
        self.rows: list[dict[str, Any]] = []
        self._pending: list[UpdateStats] = []
        self._pending_episodes: list[tuple[int, float, float, int]] = []
        self._start = time.perf_counter() - start_wall
        self._last_time = time.perf_counter()
        self._last_steps = start_timesteps
        if csv_path is not None and self.episodes_path is not None:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            _start_csv(csv_path, COLUMNS)
            _start_csv(self.episodes_path, EPISODE_COLUMNS)

    def record_episodes(self, timesteps: int, episodes: list[tuple[float, int]]) -> None:
        """Episodes (return, length) that finished by step ``timesteps``."""
        if episodes:
            wall = round(time.perf_counter() - self._start, 3)
            self._pending_episodes.extend((timesteps, wall, r, n) for r, n in episodes)

    def record(self, stats: UpdateStats) -> None:
        self._pending.append(stats)

    def write_row(
        self,
        timesteps: int,
        updates: int,
        episodes: int,
        ep_return_mean: float,
        ep_length_mean: float,
    ) -> dict[str, Any]:
        """Average the updates since the last row, append it to metrics.csv, return it."""
        now = time.perf_counter()
        elapsed = max(now - self._last_time, 1e-9)
        row: dict[str, Any] = {
            "timesteps": timesteps,
            "updates": updates,
            "wall_time": round(now - self._start, 3),
            "steps_per_second": round((timesteps - self._last_steps) / elapsed, 1)
            if timesteps > self._last_steps
            else math.nan,
            "episodes": episodes,
            "ep_return_mean": ep_return_mean,
            "ep_length_mean": ep_length_mean,
        }
        row.update(_average(self._pending))
        self._pending = []
        self._last_time, self._last_steps = now, timesteps
        self.rows.append(row)
        if self.csv_path is not None:
            with self.csv_path.open("a", newline="") as fh:
                csv.writer(fh).writerow([_fmt(row[c]) for c in COLUMNS])
        self.write_episodes()
        if self.tensorboard is not None:
            self.tensorboard.write_row(row)
        return row

    def write_episodes(self) -> None:
        """Append the episodes recorded since the last write to episodes.csv."""
        if self.episodes_path is not None and self._pending_episodes:
            with self.episodes_path.open("a", newline="") as fh:
                csv.writer(fh).writerows(
                    (t, w, f"{r:.6g}", n) for t, w, r, n in self._pending_episodes
                )
        self._pending_episodes = []

    @property
    def last_timesteps(self) -> int:
        """The step count of the last row written (or of the start)."""
        return self._last_steps

    @property
    def has_pending(self) -> bool:
        return bool(self._pending or self._pending_episodes)


def _start_csv(path: Path, columns: tuple[str, ...]) -> None:
    """Write the header of a new (or empty) CSV file; an existing one is appended to, once
    a row or header that a kill damaged is repaired (rows appended after a cut row would
    join it)."""
    if not path.exists() or path.stat().st_size == 0:
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerow(columns)
        return
    log = read_log(path, columns)
    if log.damaged or log.header_fix:
        rewrite_log(path, log.header or columns, log.rows)
        report(repair_notes(path.name, log, len(log.rows)))


def _average(stats: list[UpdateStats]) -> dict[str, float]:
    if not stats:
        return {k: math.nan for k in COLUMNS[7:]}
    stacked = torch.stack(
        [
            torch.stack([s.policy_loss, s.value_loss, s.entropy, s.grad_norm, s.explained_variance])
            for s in stats
        ]
    ).float()
    means = torch.nanmean(stacked, dim=0).tolist()
    out = dict(
        zip(
            ("policy_loss", "value_loss", "entropy", "grad_norm", "explained_variance"),
            means,
            strict=True,
        )
    )
    out["learning_rate"] = stats[-1].learning_rate
    return out


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value
