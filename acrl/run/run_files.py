"""What a run directory holds besides metrics: config.yaml, the last rollout's advantages,
checkpoints, and the random-number state that an exact resume restores."""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from acrl.config.runs import RunConfig
from acrl.errors import UserError
from acrl.run.metrics import MetricsLog
from acrl.run.model_file import read_model
from acrl.run.tensorboard import TensorBoardLog

CHECKPOINTS = "checkpoints"
ADVANTAGES = "advantages.npy"


def write_config(log_dir: Path, agent: Any, total_timesteps: int) -> None:
    """config.yaml as ``acrl train`` writes it, unless one is there (the CLI's, with its preset)."""
    path = log_dir / "config.yaml"
    if path.exists():
        return
    run = RunConfig(
        env_id=str(agent.env_id),
        algo=agent.algo,
        n_envs=agent.n_envs,
        n_timesteps=total_timesteps,
        seed=agent.seed,
        vectorization=agent.vectorization,
        env_kwargs=agent.env_kwargs,
        hyperparams=agent.config,
        n_workers=getattr(agent, "n_workers", None),
        lock_updates=getattr(agent, "lock_updates", False),
        runtime=getattr(agent, "runtime", "processes"),
    )
    path.write_text(yaml.safe_dump(run.to_dict(), sort_keys=False))


def open_logs(
    agent: Any, start: int, total_timesteps: int, hparams: Mapping[str, Any]
) -> MetricsLog:
    """The metrics log of a ``learn()`` call from step ``start``; with a log_dir, metrics.csv,
    TensorBoard events and config.yaml there. A run that starts at step 0 never writes into
    another run's logs: that raises before anything is written."""
    log_dir: Path | None = agent.log_dir
    if log_dir is None:
        return MetricsLog(None, start, None)
    if start == 0:
        check_no_logs(log_dir)
    tensorboard = TensorBoardLog(log_dir)
    tensorboard.write_hparams(hparams)
    metrics = MetricsLog(log_dir / "metrics.csv", start, tensorboard)
    write_config(log_dir, agent, total_timesteps)
    return metrics


def check_no_logs(log_dir: Path) -> None:
    """Refuse to start a new run's logs in a directory that holds another run's: its rows
    would be mixed into theirs."""
    found = [
        path.name
        for path in (log_dir / "metrics.csv", log_dir / "episodes.csv")
        if path.is_file() and path.stat().st_size > 0
    ] + [path.name for path in sorted(log_dir.glob("events.out.tfevents.*"))[:1]]
    if found:
        raise UserError(
            f"log_dir {log_dir} already holds a run's logs ({', '.join(found)}); give a new "
            "log_dir, or continue that run: load its model and learn(..., "
            "reset_num_timesteps=False)"
        )


def save_advantages(log_dir: Path, advantages: np.ndarray) -> None:
    """advantages.npy: the last rollout's advantages (``acrl plot`` draws their histogram)."""
    np.save(log_dir / ADVANTAGES, advantages)


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The torch, NumPy and Python global RNG states, as tensors and JSON."""
    np_state = np.random.get_state()
    assert isinstance(np_state, tuple)
    py_version, py_internal, py_gauss = random.getstate()
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "rng.python": torch.tensor(py_internal, dtype=torch.int64),
    }
    meta = {
        "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_version, py_gauss],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    torch.set_rng_state(tensors["rng.torch"])
    name, pos, has_gauss, cached = meta["numpy"]
    keys = tensors["rng.numpy"].numpy().astype(np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))
    version, gauss = meta["python"]
    random.setstate((version, tuple(int(x) for x in tensors["rng.python"].tolist()), gauss))


def checkpoint_name(timesteps: int) -> str:
    return f"step-{timesteps:012d}.acrl"


def latest_checkpoint(run_dir: Path) -> Path:
    """The model file of ``run_dir`` with the most steps (model.acrl or a checkpoint) that
    reads back; an unreadable one is passed over."""
    candidates = [run_dir / "model.acrl", *sorted((run_dir / CHECKPOINTS).glob("step-*.acrl"))]
    best: tuple[int, Path] | None = None
    for path in candidates:
        if not path.is_file():
            continue
        try:
            steps = int(read_model(path)[1]["num_timesteps"])
        except (UserError, KeyError, TypeError, ValueError):
            continue
        if best is None or steps > best[0]:
            best = (steps, path)
    if best is None:
        raise UserError(f"{run_dir} has no checkpoint to resume from")
    return best[1]


# Ours (".model.acrl.XXXX.tmp") and safetensors' (".tmpXXXXXX": save_file writes one in the
# target's folder, then renames it).
TEMP_PATTERNS = (".*.tmp", ".tmp*")


def remove_stale_temp_files(run_dir: Path) -> None:
    """Delete the temporary files that a process killed mid-write left (never a whole model:
    a file only gets its real name once complete)."""
    for folder in (run_dir, run_dir / CHECKPOINTS):
        for pattern in TEMP_PATTERNS:
            for path in folder.glob(pattern):
                path.unlink(missing_ok=True)


def truncate_logs(run_dir: Path, timesteps: int) -> float:
    """Drop rows of metrics.csv and episodes.csv logged after ``timesteps`` (they came after
    the checkpoint that a resume starts from); the wall time of the last row kept."""
    wall = 0.0
    for name in ("metrics.csv", "episodes.csv"):
        path = run_dir / name
        if not path.is_file():
            continue
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            continue
        header, body = rows[0], rows[1:]
        step, when = header.index("timesteps"), header.index("wall_time")
        kept = [row for row in body if row and int(row[step]) <= timesteps]
        if name == "metrics.csv" and kept:
            wall = float(kept[-1][when])
        tmp = path.with_name(f".{name}.tmp")
        with tmp.open("w", newline="") as fh:
            csv.writer(fh).writerows([header, *kept])
        tmp.replace(path)
    return wall


def resume_logs(model: Any, run_dir: Path) -> None:
    """Continue a run's metrics.csv, episodes.csv and TensorBoard events from the model's
    step count: what was logged after it is dropped, the wall clock goes on."""
    steps = model.num_timesteps
    wall = truncate_logs(run_dir, steps)
    tensorboard = TensorBoardLog(run_dir, purge_step=steps + 1)
    model.metrics = MetricsLog(run_dir / "metrics.csv", steps, tensorboard, start_wall=wall)
