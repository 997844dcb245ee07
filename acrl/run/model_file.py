"""The model file: tensors in safetensors, everything else as JSON in its header.

Nothing is ever unpickled. A file is written to a temporary name in the same
directory (``.NAME.XXXXXXXX.tmp``, the only temporary name a model write uses), flushed to
disk and renamed, so a crash never leaves half a model.

Every file carries a ``digest`` in its safetensors header, ``sha256:<H>:<T>``: H is the
SHA-256 of the header fields format, format_version and meta; T is the SHA-256 of the
tensors, each as its name, dtype, shape and raw bytes, in sorted name order (every field
preceded by its length in 8 bytes). Both are checked on every read, so one flipped bit
anywhere in the file is refused, and the message says which half no longer matches.
Files of format version 1 (acrl 0.2 and earlier) have no digest and are read unchecked;
from version 2 on a missing digest is damage. The meta JSON is parsed with a depth limit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from acrl.errors import UserError
from acrl.run.atomic import write_atomic
from acrl.run.model_path import find_model_file, model_path

FORMAT = "acrl-model"
FORMAT_VERSION = 2
UNSIGNED_VERSIONS = ("1",)  # written before the digest: read without one
DIGEST = "digest"
MAX_META_DEPTH = 64  # the deepest meta acrl writes is about 6


def write_model(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Atomically write tensors and JSON metadata, with their digest, to ``path``."""
    target = model_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "meta": json.dumps(meta)}
    # Copies: parameters are views of one vector, and safetensors refuses shared storage.
    contiguous = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    header[DIGEST] = digest(header, contiguous)
    write_atomic(target, save(contiguous, metadata=header))  # no temp file of safetensors'
    return target


def digest(header: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> str:
    """``sha256:<header>:<tensors>``, the two halves of a file's digest (module docstring)."""
    return f"sha256:{_header_hash(header)}:{_tensors_hash(tensors)}"


def _header_hash(header: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for key in ("format", "format_version", "meta"):
        _feed(h, key.encode())
        _feed(h, str(header.get(key, "")).encode())
    return h.hexdigest()


def _tensors_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        _feed(h, name.encode())
        _feed(h, str(tensor.dtype).encode())
        _feed(h, json.dumps(list(tensor.shape)).encode())
        _feed(h, tensor.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _feed(h: Any, data: bytes | np.ndarray) -> None:
    """One length-prefixed field, so that no two sequences of fields hash alike."""
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a model file, its digest checked; a UserError for anything
    that is not one, or that changed since it was written."""
    p = find_model_file(path)
    try:
        with safe_open(str(p), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{p} is not an acrl model file ({str(exc).splitlines()[0]})") from None
    if header.get("format") != FORMAT:
        raise UserError(f"{p} is not an acrl model file (no acrl header)")
    version = header.get("format_version")
    if version not in (*UNSIGNED_VERSIONS, str(FORMAT_VERSION)):
        readable = ", ".join([*UNSIGNED_VERSIONS, str(FORMAT_VERSION)])
        raise UserError(f"{p} has model format version {version}, expected one of {readable}")
    if DIGEST in header or version not in UNSIGNED_VERSIONS:
        check_digest(p, header, tensors)
    return tensors, parse_meta(p, header.get("meta"))


def check_digest(p: Path, header: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse a file whose header or tensors differ from what its digest says was written."""
    parts = str(header.get(DIGEST, "")).split(":")
    if len(parts) != 3 or parts[0] != "sha256":
        raise UserError(f"{p} has a damaged header: its checksum is missing or unreadable")
    if parts[1] != _header_hash(header):
        raise UserError(f"{p} has a damaged header: it does not match the file's checksum")
    if parts[2] != _tensors_hash(tensors):
        raise UserError(f"{p} is damaged: its weights do not match the file's checksum")


def parse_meta(p: Path, text: str | None) -> dict[str, Any]:
    """The JSON metadata of a header: a mapping, nested at most MAX_META_DEPTH deep."""
    try:
        meta = json.loads(text) if text is not None else None
    except (json.JSONDecodeError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or _nested_deeper(meta, MAX_META_DEPTH):
        raise UserError(f"{p} has a damaged header (its metadata is not an acrl model's)")
    return meta


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether lists and mappings in ``value`` nest more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class Stateful(Protocol):
    """What a model file reads and writes of an optimizer: torch.optim's state_dict layout."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, saved: dict[str, Any]) -> None: ...


def optimizer_to_tensors(
    optimizer: Stateful,
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
    optimizer: Stateful, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
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
