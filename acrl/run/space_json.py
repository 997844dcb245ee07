"""Gymnasium spaces as JSON, for a model file's header, and back: Discrete, Box,
MultiDiscrete, MultiBinary, and Dict and Tuple of those.

Reading is as strict as the file is untrusted: sizes are bounded by MAX_SPACE_SIZE and
nesting by MAX_NESTING before anything is allocated, and anything ``space_to_json`` could
not have written is a one-line UserError.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from acrl.errors import UserError

MAX_SPACE_SIZE = 2**24  # actions of a Discrete space, elements of a Box, parts of a Dict
MAX_NESTING = 8  # Dict and Tuple spaces inside one another
BOX_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8")


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """``space`` as JSON-ready data; ValueError for a space acrl does not save."""
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
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.astype(np.int64).ravel().tolist(),
            "shape": list(space.shape),
            "start": space.start.astype(np.int64).ravel().tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n  # an int, or a shape: kept as given, which is how the spaces compare
        return {"type": "MultiBinary", "shape": list(space.shape), "n_is_int": _is_int(n)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(s) for s in space.spaces]}
    raise ValueError(f"cannot save space {space}")


def space_from_json(data: Any, depth: int = 0) -> spaces.Space:
    """The space ``space_to_json`` wrote; a UserError for one it could not have written."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "Discrete":
        n = _integer(data, "n", 1, MAX_SPACE_SIZE)
        return spaces.Discrete(n, start=_integer(data, "start", -(2**62), 2**62))
    if kind == "Box":
        shape = _shape(data)
        if data.get("dtype") not in BOX_DTYPES:
            raise UserError(f"bad Box dtype {data.get('dtype')!r} in model file")
        size = math.prod(shape)
        bounds = [_numbers(data, key, size) for key in ("low", "high")]
        dtype = np.dtype(data["dtype"])
        low, high = (np.asarray(b, np.float64).reshape(shape).astype(dtype) for b in bounds)
        return spaces.Box(low=low, high=high, shape=tuple(shape), dtype=dtype)
    if kind == "MultiDiscrete":
        shape = _shape(data)
        size = math.prod(shape)
        nvec = _numbers(data, "nvec", size)
        start = _numbers(data, "start", size)
        if not all(_is_int(n) and 1 <= n <= MAX_SPACE_SIZE for n in nvec) or not all(
            _is_int(s) and abs(s) <= 2**62 for s in start
        ):
            raise UserError("bad MultiDiscrete nvec or start in model file")
        if data.get("dtype") not in INT_DTYPES:
            raise UserError(f"bad MultiDiscrete dtype {data.get('dtype')!r} in model file")
        return spaces.MultiDiscrete(
            np.asarray(nvec).reshape(shape),
            dtype=np.dtype(data["dtype"]),
            start=np.asarray(start).reshape(shape),
        )
    if kind == "MultiBinary":
        shape = _shape(data)
        return spaces.MultiBinary(shape[0] if data.get("n_is_int") and len(shape) == 1 else shape)
    if kind in ("Dict", "Tuple"):
        if depth >= MAX_NESTING:
            raise UserError(f"model file nests Dict and Tuple spaces over {MAX_NESTING} deep")
        parts = data.get("spaces")
        if kind == "Dict" and isinstance(parts, dict) and len(parts) <= MAX_SPACE_SIZE:
            return spaces.Dict({str(k): space_from_json(v, depth + 1) for k, v in parts.items()})
        if kind == "Tuple" and isinstance(parts, list) and len(parts) <= MAX_SPACE_SIZE:
            return spaces.Tuple([space_from_json(v, depth + 1) for v in parts])
        raise UserError(f"bad {kind} space in model file")
    raise UserError(f"unknown space type {kind!r} in model file")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(data: dict[str, Any], key: str, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UserError(f"bad {data['type']} {key} {value!r} in model file ({low} to {high})")
    return value


def _shape(data: dict[str, Any]) -> list[int]:
    shape = data.get("shape")
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 1 for s in shape):
        raise UserError(f"bad {data['type']} shape {shape!r} in model file")
    if math.prod(shape) > MAX_SPACE_SIZE:
        raise UserError(f"{data['type']} shape {shape} in model file is over {MAX_SPACE_SIZE}")
    return shape


def _numbers(data: dict[str, Any], key: str, size: int) -> list[float]:
    values = data.get(key)
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise UserError(f"bad {data['type']} {key} in model file (needs {size} numbers)")
    return values
