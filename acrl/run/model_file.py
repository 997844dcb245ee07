"""The model file: tensors in safetensors, everything else as JSON in its header.

Nothing is ever unpickled. A file is written to a temporary name in the same
directory, flushed to disk and renamed, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from acrl.errors import UserError

FORMAT = "acrl-model"
FORMAT_VERSION = 1
SUFFIX = ".acrl"


def model_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with the .acrl suffix added when it has none (as SB3 adds .zip)."""
    p = Path(path)
    return p if p.suffix else p.with_suffix(SUFFIX)


def write_model(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Atomically write tensors and JSON metadata to ``path``."""
    target = model_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "meta": json.dumps(meta)}
    # Copies: parameters are views of one vector, and safetensors refuses shared storage.
    contiguous = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        save_file(contiguous, tmp, metadata=header)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a model file is an ordinary file
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a model file; a UserError for anything that is not one."""
    p = Path(path)
    if not p.exists() and model_path(p).exists():
        p = model_path(p)
    if p.is_dir() and (p / f"model{SUFFIX}").exists():
        p = p / f"model{SUFFIX}"
    if not p.is_file():
        raise UserError(f"no model file at {path}")
    try:
        with safe_open(str(p), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{p} is not an acrl model file ({str(exc).splitlines()[0]})") from None
    if header.get("format") != FORMAT:
        raise UserError(f"{p} is not an acrl model file (no acrl header)")
    if header.get("format_version") != str(FORMAT_VERSION):
        raise UserError(
            f"{p} has model format version {header.get('format_version')}, "
            f"expected {FORMAT_VERSION}"
        )
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError):
        raise UserError(f"{p} has a damaged header") from None
    return tensors, meta


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": space.low.astype(np.float64).ravel().tolist(),
            "high": space.high.astype(np.float64).ravel().tolist(),
        }
    raise ValueError(f"cannot save space {space}")


def space_from_json(data: dict[str, Any]) -> spaces.Space:
    if data["type"] == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data["start"]))
    if data["type"] == "Box":
        shape = tuple(int(s) for s in data["shape"])
        dtype = np.dtype(data["dtype"])
        low = np.asarray(data["low"], dtype=np.float64).reshape(shape).astype(dtype)
        high = np.asarray(data["high"], dtype=np.float64).reshape(shape).astype(dtype)
        return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    raise UserError(f"unknown space type {data['type']!r} in model file")


def optimizer_to_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors and JSON-ready hyperparameters."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Load what ``optimizer_to_tensors`` wrote into ``optimizer``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
