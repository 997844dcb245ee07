"""Run directories as data: their config, metrics.csv and episodes.csv, grouped by config."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from acrl.errors import UserError
from acrl.run.csv_repair import parse_log, report
from acrl.run.log_files import EVALUATIONS, LOGS

SUMMARY = "summary.json"


@dataclass(frozen=True)
class Run:
    """One training run: where it is, its resolved config and its logged columns."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, np.ndarray]  # metrics.csv, one array per column
    episodes: dict[str, np.ndarray]  # episodes.csv: timesteps, wall_time, return, length
    evaluations: dict[str, np.ndarray] = field(default_factory=dict)  # evaluations.csv

    @property
    def env_id(self) -> str:
        return str(self.config.get("env_id", "?"))


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() and (path / "metrics.csv").is_file()


def seed_dirs(path: Path) -> list[Path]:
    """The run directories of a multi-seed run (its sub-directories that are runs)."""
    return sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))


def load_runs(paths: list[Path]) -> list[Run]:
    """The runs at ``paths``; a multi-seed directory stands for all its seeds."""
    runs: list[Run] = []
    for path in paths:
        if is_run_dir(path):
            runs.append(load_run(path))
        elif path.is_dir() and seed_dirs(path):
            runs.extend(load_run(p) for p in seed_dirs(path))
        else:
            raise UserError(
                f"{path} is not a run directory (no config.yaml and metrics.csv written by "
                "`acrl train`)"
            )
    return runs


def load_run(path: Path) -> Run:
    try:
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
        metrics = read_columns(path / "metrics.csv")
        episodes_path = path / "episodes.csv"
        episodes = read_columns(episodes_path) if episodes_path.is_file() else {}
        evaluations_path = path / EVALUATIONS
        evaluations = read_columns(evaluations_path) if evaluations_path.is_file() else {}
    except UserError:
        raise
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read run {path}: {exc}") from None
    if not isinstance(config, dict):
        raise UserError(f"cannot read run {path}: config.yaml is not a mapping")
    return Run(path, config, metrics, episodes, evaluations)


def read_columns(path: Path) -> dict[str, np.ndarray]:
    """A CSV log as float arrays by column (empty cells are NaN). A last row (or header)
    that a kill cut is skipped with a warning on stderr; damage anywhere else is a
    UserError that names the line (``acrl train --resume`` repairs it)."""
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path.name} is empty")
    log = parse_log(data, LOGS.get(path.name))
    header, body = log.header, log.rows
    last = [n for n in log.damaged if n == log.lines]
    first = next((n for n in log.damaged if n != log.lines), None)
    if header is None or (log.header_fix and log.lines > 1):
        first = 1
    if header is None or first is not None:
        raise UserError(
            f"{path}: line {first} is damaged (only a last row cut by a kill is skipped; "
            "`acrl train --resume` repairs a run's logs)"
        )
    if log.header_fix or last:
        what = "header" if log.header_fix else "last row"
        report([f"{path}: skipped a damaged {what} (line {log.lines}, cut by a kill?)"], True)
    columns = list(zip(*body, strict=True)) if body else [() for _ in header]
    return {
        name: np.array([float(v) if v else math.nan for v in values], dtype=np.float64)
        for name, values in zip(header, columns, strict=True)
    }


def group_runs(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """Runs grouped by config (all but the seed), each group with a legend label."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run.config.items() if k != "seed"}, sort_keys=True)
        groups.setdefault(key, []).append(run)
    flat = [
        _flatten({k: v for k, v in g[0].config.items() if k != "seed"}) for g in groups.values()
    ]
    differing = sorted(k for k in set().union(*flat) if len({str(f.get(k)) for f in flat}) > 1)
    labelled = []
    for members, settings in zip(groups.values(), flat, strict=True):
        first = members[0].config
        name = f"{first.get('env_id', '?')} {str(first.get('algo', '')).upper()}"
        if differing:
            name = ", ".join(f"{k}={settings.get(k)}" for k in differing)
        seeds = f"{len(members)} seeds" if len(members) > 1 else f"seed {first.get('seed')}"
        labelled.append((f"{name} ({seeds})", members))
    return labelled


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "hyperparams" and isinstance(value, dict):  # labels say learning_rate=...
            out.update(_flatten(value, prefix))
        elif isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def solved_threshold(env_id: str) -> float | None:
    """The return at which Gymnasium calls ``env_id`` solved, if it names one."""
    try:
        threshold = gym.spec(env_id.rpartition(":")[2]).reward_threshold
    except gym.error.Error:
        return None
    return None if threshold is None else float(threshold)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start)."""
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    start = np.maximum(idx - window, 0)
    return (sums[idx] - sums[start]) / (idx - start)
