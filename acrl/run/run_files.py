"""What a run directory holds besides metrics: config.yaml, the last rollout's advantages,
checkpoints, and the random-number state that an exact resume restores."""

from __future__ import annotations

import io
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from acrl.config.runs import RunConfig
from acrl.errors import UserError
from acrl.run.atomic import write_atomic
from acrl.run.csv_repair import read_log, repair_notes, report, rewrite_log
from acrl.run.log_files import LOGS
from acrl.run.metrics import MetricsLog
from acrl.run.model_file import read_model
from acrl.run.owned import check_run_file_names, checkpoints, is_regular_file
from acrl.run.tensorboard import TensorBoardLog

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
        env_packages=tuple(getattr(agent, "env_packages", ())),
        env_wrapper=tuple(getattr(agent, "env_wrappers", ())),
        hyperparams=agent.config,
        n_workers=getattr(agent, "n_workers", None),
        lock_updates=getattr(agent, "lock_updates", False),
        runtime=getattr(agent, "runtime", "processes"),
    )
    write_atomic(path, yaml.safe_dump(run.to_dict(), sort_keys=False).encode())


def open_logs(
    agent: Any, start: int, total_timesteps: int, hparams: Mapping[str, Any]
) -> MetricsLog:
    """The metrics log of a ``learn()`` call from step ``start``; with a log_dir, metrics.csv,
    TensorBoard events and config.yaml there. A run that starts at step 0 never writes into
    another run's logs: that raises before anything is written."""
    log_dir: Path | None = agent.log_dir
    if log_dir is None:
        return MetricsLog(None, start, None)
    check_run_file_names(log_dir)  # learn() of the API too: never written through a link
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
    buffer = io.BytesIO()
    np.save(buffer, advantages)
    write_atomic(log_dir / ADVANTAGES, buffer.getvalue())


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
    """Restore what ``rng_state`` captured; a UserError, with nothing changed, if it is not
    a state that ``rng_state`` could have captured."""
    torch_state, numpy_state, python_state = rng_states(tensors, meta)
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def resume_candidates(run_dir: Path) -> tuple[list[tuple[int, Path]], list[str]]:
    """The run's model files that read back, as (step count, path), newest first
    (``model.acrl`` before the checkpoint of the same step), and why each other one was
    passed over."""
    found, passed_over = [], []
    paths = [p for _, p in checkpoints(run_dir)]
    if is_regular_file(run_dir / "model.acrl"):
        paths.append(run_dir / "model.acrl")
    for path in paths:
        try:
            steps = int(read_model(path)[1]["num_timesteps"])
        except (UserError, KeyError, TypeError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, UserError) else f"{path}: no step count"
            passed_over.append(reason)
            continue
        found.append((steps, path.name == "model.acrl", path))
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [(steps, path) for steps, _, path in found], passed_over


def truncate_logs(run_dir: Path, timesteps: int, episodes: int | None = None) -> float:
    """Drop rows of metrics.csv and episodes.csv logged after ``timesteps`` (they came after
    the checkpoint that a resume starts from), episode rows beyond the checkpoint's count of
    ``episodes`` (A3C logs a late report's episodes at the step count it was counted in, which
    can be the checkpoint's own step after the checkpoint was saved), and rows or a header
    that a kill damaged, saying so on stderr (acrl.run.csv_repair); the wall time of the last
    row kept."""
    wall = 0.0
    for name, columns in LOGS.items():
        path = run_dir / name
        if not path.is_file() or path.stat().st_size == 0:
            continue
        log = read_log(path, columns)
        header = log.header or list(columns)
        step, when = header.index("timesteps"), header.index("wall_time")
        kept = [row for row in log.rows if float(row[step]) <= timesteps]
        if name == "episodes.csv" and episodes is not None:
            kept = kept[:episodes]
        if name == "metrics.csv" and kept:
            wall = float(kept[-1][when])
        rewrite_log(path, header, kept)
        report(repair_notes(name, log, len(kept)))
    return wall


def resume_logs(model: Any, run_dir: Path) -> None:
    """Continue a run's metrics.csv, episodes.csv and TensorBoard events from the model's
    step count: what was logged after it is dropped, the wall clock goes on."""
    steps = model.num_timesteps
    wall = truncate_logs(run_dir, steps, model.total_episodes)
    tensorboard = TensorBoardLog(run_dir, purge_step=steps + 1)
    model.metrics = MetricsLog(run_dir / "metrics.csv", steps, tensorboard, start_wall=wall)


MT_WORDS = 624  # the Mersenne Twister's state, in 32-bit words, of NumPy and Python


def rng_states(
    tensors: Mapping[str, torch.Tensor], meta: Any
) -> tuple[torch.Tensor, tuple[Any, ...], tuple[Any, ...]]:
    """The torch, NumPy and Python RNG states that ``rng_state`` captured, each tried on a
    fresh generator (the global ones are left alone); a UserError says what is wrong."""
    try:
        torch_state = tensors["rng.torch"]
        torch.Generator().set_state(torch_state)
        name, pos, has_gauss, cached = meta["numpy"]
        keys = _mt_words(tensors["rng.numpy"], MT_WORDS, "rng.numpy")
        if not (0 <= pos <= MT_WORDS and has_gauss in (0, 1)):
            raise ValueError("the NumPy state's position is out of range")
        numpy_state = (name, np.asarray(keys, np.uint32), int(pos), int(has_gauss), float(cached))
        np.random.RandomState().set_state(numpy_state)
        version, gauss = meta["python"]
        words = _mt_words(tensors["rng.python"], MT_WORDS + 1, "rng.python")
        if not (words[-1] <= MT_WORDS and (gauss is None or isinstance(gauss, float))):
            raise ValueError("the Python state's position is out of range")
        python_state = (version, tuple(words), gauss)
        random.Random().setstate(python_state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"bad RNG state ({type(exc).__name__}: {detail})") from None
    return torch_state, numpy_state, python_state


def _mt_words(tensor: torch.Tensor, length: int, name: str) -> list[int]:
    """The 32-bit words of a Mersenne Twister state as ``rng_state`` stores them (int64)."""
    if tensor.dtype != torch.int64 or tuple(tensor.shape) != (length,):
        raise ValueError(f"{name} is not {length} int64 values")
    words = [int(x) for x in tensor.tolist()]
    if not all(0 <= w < 2**32 for w in words):
        raise ValueError(f"{name} holds values outside 32 bits")
    return words
