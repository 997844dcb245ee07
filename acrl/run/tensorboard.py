"""TensorBoard event files beside metrics.csv: the same rows under stable tag names.

``tensorboard --logdir runs/`` shows every run; the hyperparameters appear in its HPARAMS tab.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TAGS = {
    "ep_return_mean": "charts/episodic_return",  # mean of the last 100 training episodes
    "ep_length_mean": "charts/episodic_length",
    "steps_per_second": "charts/steps_per_second",
    "learning_rate": "charts/learning_rate",
    "policy_loss": "losses/policy_loss",
    "value_loss": "losses/value_loss",
    "entropy": "losses/entropy",
    "grad_norm": "losses/grad_norm",  # before clipping
    "explained_variance": "losses/explained_variance",
}


class TensorBoardLog:
    """Writes metrics rows (at their ``timesteps``) and a run's hyperparameters to ``log_dir``."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        """``purge_step``: a resumed run hides the events logged at or after it before."""
        from torch.utils.tensorboard import SummaryWriter  # imported only for runs that log

        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=30, purge_step=purge_step)

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        flat = {k: _hparam_value(v) for k, v in _flatten(hparams).items()}
        metrics = {tag: math.nan for tag in ("charts/episodic_return",)}
        file_writer = self.writer.file_writer
        assert file_writer is not None  # SummaryWriter's constructor opens it
        for summary in hparams_summary(flat, metrics):
            file_writer.add_summary(summary)  # into this run, not a sub-run as add_hparams does
        self.writer.flush()

    def write_row(self, row: Mapping[str, Any]) -> None:
        step = int(row["timesteps"])
        for column, tag in TAGS.items():
            value = row.get(column)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def write_scalars(self, values: Mapping[str, float], step: int) -> None:
        """Scalars under their own tags (an evaluation's) at ``step``."""
        for tag, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _hparam_value(value: Any) -> int | float | str | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
