"""Observation layouts: how observations of a Gymnasium space are stored as flat float32 rows
(what a rollout keeps per env and step, and what the encoder reads), in NumPy.

A layout lists the space's leaves: Box, Discrete, MultiDiscrete and MultiBinary spaces, inside
Dict and Tuple spaces of any depth (Dict keys sorted, as Gymnasium sorts them). A row stores
them compactly: first its float values, in three runs: the Box values (flattened), the
MultiBinary bits, and one index per Discrete leaf and per MultiDiscrete entry, minus its start
(FrozenLake 8x8: one float per step, not 64); then the images' pixels as the env gives them.
Box values come first so that observation normalization covers exactly the first ``box_dim``
float values, never bits, indices or pixels. Every index is below 2**24, so float32 holds it
exactly.

An image is a Box of shape (H, W, C) or (C, H, W) of uint8 values bounded by 0 and 255, or of
bools, or (H, W) of uint8 0-255 (one channel), as Stable-Baselines3 detects them. A space
without images has float32 rows. A space with images has uint8 rows: the float values' bytes
(``floats_of`` views them as float32), then one byte per pixel, so pixels are never stored as
floats (16 envs x 5 steps of 4x84x84 frames: 2.3 MB, not 9 MB).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium import spaces

from acrl.errors import one_line

MAX_INDEX = 2**24
"""The most values of one Discrete leaf or MultiDiscrete entry: float32 holds every index."""

KINDS = ("box", "bits", "index", "image")  # the runs of a row, in order
SUPPORTED = (
    "acrl handles Box (vectors and images), Discrete, MultiDiscrete and MultiBinary "
    "observations, and Dict and Tuple spaces of them"
)


MIN_GREY_SIDE = 8  # a 2-D uint8 Box smaller than this on a side is a table, not an image


def is_image_space(space: spaces.Space) -> bool:
    """A Box of uint8 pixels bounded by 0 and 255, or of bools: 3-D, (H, W, C) or (C, H, W);
    4-D, those stacked on a first axis (FrameStackObservation of an RGB env); or 2-D grey
    (H, W), of at least 8x8 uint8 pixels. What acrl encodes with a CNN."""
    if not isinstance(space, spaces.Box):
        return False
    shape = space.shape
    if space.dtype == np.bool_:
        return len(shape) in (3, 4)
    if space.dtype != np.uint8 or not (np.all(space.low == 0) and np.all(space.high == 255)):
        return False
    return len(shape) in (3, 4) or (len(shape) == 2 and min(shape) >= MIN_GREY_SIDE)


@dataclass(frozen=True, eq=False)
class Leaf:
    """One Box (vector or image), Discrete, MultiDiscrete or MultiBinary part of an
    observation space."""

    path: tuple[str | int, ...]  # Dict keys and Tuple positions from the root space
    space: spaces.Space
    kind: str  # "box", "bits", "image" or "index"
    shape: tuple[int, ...]  # of one observation of this leaf
    size: int  # its values in a row
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # index leaves
    nvec: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # index leaves

    @property
    def name(self) -> str:
        """``observation['pos']`` or ``observation[0]``, for messages."""
        return "observation" + "".join(f"[{key!r}]" for key in self.path)

    def value(self, observation: Any) -> np.ndarray:
        """This leaf's part of ``observation`` (one, or a batch), as an array."""
        for key in self.path:
            try:
                observation = observation[key]
            except (KeyError, IndexError, TypeError, ValueError):
                raise ValueError(
                    f"{self.name} is missing from the observation (its space is {self.space})"
                ) from None
        return np.asarray(observation)


@dataclass(frozen=True, eq=False)
class ObservationLayout:
    """The leaves of an observation space in row order (Box, then MultiBinary, then index
    leaves; the space's order within each run) and the sizes of the runs."""

    space: spaces.Space
    leaves: tuple[Leaf, ...]

    @cached_property
    def box_dim(self) -> int:
        """Box values per row: the columns observation normalization covers."""
        return sum(leaf.size for leaf in self.leaves if leaf.kind == "box")

    @cached_property
    def dense_dim(self) -> int:
        """Box values and bits per row: the columns the encoder passes through."""
        return sum(leaf.size for leaf in self.leaves if leaf.kind in ("box", "bits"))

    @cached_property
    def images(self) -> tuple[Leaf, ...]:
        """The image leaves, in row order."""
        return tuple(leaf for leaf in self.leaves if leaf.kind == "image")

    @cached_property
    def nvec(self) -> tuple[int, ...]:
        """The number of values of each index column, in row order."""
        return tuple(int(n) for leaf in self.leaves for n in leaf.nvec)

    @cached_property
    def float_dim(self) -> int:
        """Float values per row: Box values, bits, then indices (index columns start at
        ``dense_dim``)."""
        return self.dense_dim + len(self.nvec)

    @cached_property
    def pixel_dim(self) -> int:
        """Pixels per row, of every image."""
        return sum(leaf.size for leaf in self.images)

    @cached_property
    def dtype(self) -> type[np.generic]:
        """The dtype of stored rows: uint8 when the space has images, else float32."""
        return np.uint8 if self.images else np.float32

    @cached_property
    def raw_dim(self) -> int:
        """The length of a stored row: its float values; or with images, the float values'
        bytes and the pixels, padded to a multiple of 4 bytes where there are float values
        (so that every row's floats start 4-byte aligned and view as float32 in place)."""
        if not self.images:
            return self.float_dim
        if not self.float_dim:
            return self.pixel_dim
        return -(-(4 * self.float_dim + self.pixel_dim) // 4) * 4

    @cached_property
    def columns(self) -> dict[int, tuple[int, int]]:
        """Each leaf's ``(start, stop)`` by its position in ``leaves``: among the float values
        (``floats_of``), or for an image among the pixels (``pixels_of``)."""
        out, floats, pixels = {}, 0, 0
        for i, leaf in enumerate(self.leaves):
            if leaf.kind == "image":
                out[i] = (pixels, pixels + leaf.size)
                pixels += leaf.size
            else:
                out[i] = (floats, floats + leaf.size)
                floats += leaf.size
        return out

    def floats_of(self, rows: np.ndarray) -> np.ndarray:
        """The float values of stored rows (of any leading shape), as a float32 view."""
        if not self.images:
            return rows
        return rows[..., : 4 * self.float_dim].view(np.float32)

    def pixels_of(self, rows: np.ndarray) -> np.ndarray:
        """The pixels of stored rows (of any leading shape), as a view."""
        start = 4 * self.float_dim
        return rows[..., start : start + self.pixel_dim]

    @cached_property
    def is_single(self) -> bool:
        """One Box (vector or image) at the root: rows are its observations flattened."""
        return (
            len(self.leaves) == 1
            and self.leaves[0].path == ()
            and self.leaves[0].kind in ("box", "image")
        )

    @cached_property
    def is_image(self) -> bool:
        """One image at the root (what CnnPolicy takes)."""
        return self.is_single and self.leaves[0].kind == "image"

    @cached_property
    def features_dim(self) -> int:
        """The size of the parameter-free features: dense columns, then one one-hot per index
        (a CNN adds its own features per image)."""
        return self.dense_dim + sum(self.nvec)

    @cached_property
    def is_box(self) -> bool:
        """A plain Box space: rows are its observations flattened."""
        return len(self.leaves) == 1 and self.leaves[0].path == () and self.leaves[0].kind == "box"

    def write(self, observations: Any, out: np.ndarray) -> None:
        """Store a batch of observations (a VectorEnv's: arrays with a leading batch axis,
        nested as the space is) into the rows ``out``, of shape (batch, raw_dim).
        An index outside its space, or a part of the wrong size, is a one-line ValueError."""
        if self.is_single:  # the hot path of every Box env: one copy, as before layouts
            values = np.asarray(observations)
            if self.dtype is np.uint8 and values.dtype not in (np.uint8, np.bool_):
                check_pixels(values, self.leaves[0])
            out[...] = values.reshape(out.shape[0], -1)
            return
        self._store([leaf.value(observations) for leaf in self.leaves], out)

    def flatten(self, observations: Any, batch: int) -> np.ndarray:
        """A batch of ``batch`` observations as new rows (see ``write``)."""
        out = np.zeros((batch, self.raw_dim), self.dtype)  # zeros: the padding too
        self.write(observations, out)
        return out

    def to_batch(self, observation: Any) -> tuple[np.ndarray, bool]:
        """One observation or a batch of them (what ``predict`` takes) as rows, and
        whether it was one; a shape that is neither is a one-line ValueError. A batch of a
        Dict or Tuple space is a dict or tuple of arrays (as a VectorEnv returns), not a list
        of observations."""
        if self.is_single:  # predict's hot path: as before layouts
            (leaf,) = self.leaves
            rows = np.asarray(observation)
            if self.dtype is np.uint8 and rows.dtype not in (np.uint8, np.bool_):
                check_pixels(rows, leaf)
            rows = rows.astype(self.dtype, copy=False)
            if rows.shape == leaf.shape:
                return rows.reshape(1, -1), True
            if rows.ndim == 0 or rows.shape[1:] != leaf.shape:
                raise ValueError(
                    f"observation shape {rows.shape} does not match {leaf.shape} or "
                    f"(batch, *{leaf.shape})"
                )
            return rows.reshape(rows.shape[0], -1), False
        if isinstance(self.space, spaces.Tuple) and isinstance(observation, list):
            raise ValueError(
                "a batch of Tuple observations is a tuple of arrays, one per part (as a "
                "VectorEnv returns), not a list of observations"
            )
        values = [leaf.value(observation) for leaf in self.leaves]
        if all(v.shape == leaf.shape for v, leaf in zip(values, self.leaves, strict=True)):
            out = np.zeros((1, self.raw_dim), self.dtype)
            self._store([v[None] for v in values], out)
            return out, True
        for v, leaf in zip(values, self.leaves, strict=True):
            if v.ndim == 0 or v.shape[1:] != leaf.shape:
                name = "observation" if self.is_box else leaf.name
                raise ValueError(
                    f"{name} shape {v.shape} does not match {leaf.shape} or (batch, *{leaf.shape})"
                )
        batches = {v.shape[0] for v in values}
        if len(batches) > 1:
            raise ValueError(
                f"the observation's parts have different batch sizes {sorted(batches)}"
            )
        out = np.zeros((batches.pop(), self.raw_dim), self.dtype)
        self._store(values, out)
        return out, False

    def _store(self, values: list[np.ndarray], out: np.ndarray) -> None:
        floats, pixels = self.floats_of(out), self.pixels_of(out)
        for i, (value, leaf) in enumerate(zip(values, self.leaves, strict=True)):
            if value.size != out.shape[0] * leaf.size:
                raise ValueError(
                    f"{leaf.name} has {value.size} values for {out.shape[0]} observations of "
                    f"{leaf.space}"
                )
            rows = value.reshape(out.shape[0], leaf.size)
            if leaf.kind == "image" and rows.dtype not in (np.uint8, np.bool_):
                check_pixels(rows, leaf)
            if leaf.kind == "index":
                if rows.dtype.kind == "f" and not np.array_equal(rows, np.floor(rows)):
                    bad = rows[rows != np.floor(rows)].flat[0]
                    raise ValueError(f"{leaf.name} holds {bad}, not an integer of {leaf.space}")
                rows = rows - leaf.start
                inside = (rows >= 0) & (rows < leaf.nvec)  # False for NaN too
                if not inside.all():
                    i, j = np.argwhere(~inside)[0]
                    raise ValueError(
                        f"{leaf.name} holds {rows[i, j] + leaf.start[j]}, outside {leaf.space}"
                    )
            start, stop = self.columns[i]
            (pixels if leaf.kind == "image" else floats)[:, start:stop] = rows


def observation_layout(space: spaces.Space) -> ObservationLayout:
    """The layout of ``space``; a one-line ValueError for a space acrl cannot observe."""
    leaves = list(_leaves(space, space, ()))
    if not leaves:
        raise ValueError(f"observation space {space} has nothing to observe")
    leaves.sort(key=lambda leaf: KINDS.index(leaf.kind))  # stable: the space's order per run
    return ObservationLayout(space, tuple(leaves))


def _leaves(space: spaces.Space, root: spaces.Space, path: tuple[str | int, ...]) -> Iterator[Leaf]:
    if isinstance(space, spaces.Dict):
        # sorted keys: the layout must not depend on the order a Dict was built in (a space
        # read back from a model file is sorted, one built from an OrderedDict may not be)
        for key in sorted(space.spaces):
            if not isinstance(key, str):
                raise ValueError(f"observation space {root} has a Dict key {key!r}: keys are str")
            yield from _leaves(space.spaces[key], root, (*path, key))
    elif isinstance(space, spaces.Tuple):
        for i, part in enumerate(space.spaces):
            yield from _leaves(part, root, (*path, i))
    elif is_image_space(space):
        assert space.shape is not None
        yield Leaf(path, space, "image", space.shape, math.prod(space.shape))
    elif isinstance(space, spaces.Box):
        yield Leaf(path, space, "box", space.shape, math.prod(space.shape))
    elif isinstance(space, spaces.MultiBinary):
        yield Leaf(path, space, "bits", space.shape, math.prod(space.shape))
    elif isinstance(space, spaces.Discrete | spaces.MultiDiscrete):
        n = space.nvec if isinstance(space, spaces.MultiDiscrete) else space.n
        nvec = np.asarray(n, np.int64).reshape(-1)
        if nvec.max() > MAX_INDEX:
            raise ValueError(
                f"observation space {root} has a part of over {MAX_INDEX:,} values to one-hot"
            )
        start = np.asarray(space.start, np.int64).reshape(-1)
        yield Leaf(path, space, "index", tuple(space.shape or ()), len(nvec), start, nvec)
    else:
        where = "" if space is root else f" (its part {one_line(space)})"
        raise ValueError(f"unsupported observation space {one_line(root)}{where}: {SUPPORTED}")


def check_pixels(values: np.ndarray, leaf: Leaf) -> None:
    """Pixels given as another dtype (a float array to ``predict``) must be whole numbers
    from 0 to 255 (0 or 1 for a bool image): they are stored as uint8."""
    high = 1 if leaf.space.dtype == np.bool_ else 255
    bad = ~((values >= 0) & (values <= high) & (values == np.floor(values)))
    if bad.any():
        raise ValueError(
            f"{leaf.name} holds {values[bad].flat[0]}: its pixels are whole numbers from 0 to "
            f"{high} ({leaf.space}), not scaled values"
        )
