"""Observation encoders: the first part of a policy, chosen by the observation space.

An encoder maps a batch of stored observation rows (acrl.model.observations: Box values, MultiBinary
bits, pixels, indices) to feature vectors of size ``features_dim``:

- ``FlattenEncoder``: a Box vector observation of any shape is its row (no parameters).
- ``CombinedEncoder``: anything else, as Stable-Baselines3's ``CombinedExtractor``: Box values
  and bits as they are, each image through a CNN of its own (acrl.model.extractors; pixels
  scaled to [0, 1] here, in the model, so rollouts keep them as uint8), each index as a
  one-hot vector; the features concatenated in that order.
- ``UserEncoder``: the user's ``features_extractor_class``, given the observation as SB3
  gives it (``preprocess``: a tensor per leaf, nested as the space; images channels-first
  and scaled, indices one-hot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from acrl.config.policy import PolicyConfig
from acrl.errors import UserError, first_line, one_line
from acrl.model.extractors import build_user_extractor, make_cnn
from acrl.model.observations import Leaf, ObservationLayout, observation_layout

Normalize = Callable[[Tensor], Tensor]  # the float values' normalization, if the policy has one


def leading_floats(rows: Tensor, count: int) -> Tensor:
    """The first ``count`` float32 values of uint8 rows (B, raw_dim): their first bytes."""
    if not count:
        return rows.new_zeros((rows.shape[0], 0), dtype=torch.float32)
    head = rows[:, : 4 * count]
    try:  # in place where the rows are 4-byte aligned (acrl's buffers, padded rows)
        return head.view(torch.float32)
    except RuntimeError:  # rows cut from elsewhere: a copy at offset 0
        copy = torch.empty(head.shape, dtype=torch.uint8, device=rows.device).copy_(head)
        return copy.view(torch.float32)


def split_rows(layout: ObservationLayout, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Stored rows (B, raw_dim) as their float values (B, float_dim) and their pixels
    (B, pixel_dim), as ``ObservationLayout.floats_of`` and ``pixels_of`` do in NumPy."""
    if rows.dtype != torch.uint8:
        return rows, rows[:, :0]
    cut = 4 * layout.float_dim
    return leading_floats(rows, layout.float_dim), rows[:, cut : cut + layout.pixel_dim]


class FlattenEncoder(nn.Module):
    """A Box observation of any shape as one flat vector (no parameters)."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__()
        self.layout = observation_layout(observation_space)
        self.features_dim = self.layout.features_dim

    def forward(self, obs: Tensor, normalize: Normalize | None = None) -> Tensor:
        rows = obs.reshape(obs.shape[0], -1)
        return rows if normalize is None else normalize(rows)


def image_chw(leaf: Leaf, channels: str) -> tuple[tuple[int, int, int], bool]:
    """An image leaf's (C, H, W) and whether its stored pixels are channels-last; ``channels``
    is "first", "last" or "auto" (the channels are the one axis smaller than the other two;
    anything else is a one-line ValueError asking for the setting). A 4-D image is K frames
    of a 3-D one stacked first: its channels are the K frames' channels."""
    shape = leaf.shape
    if len(shape) == 2:
        return (1, shape[0], shape[1]), False
    frames, (a, b, c) = (shape[0], shape[1:]) if len(shape) == 4 else (1, shape)
    if channels == "auto":
        if c < a and c < b:
            channels = "last"
        elif a < b and a < c:
            channels = "first"
        else:
            raise ValueError(
                f"{leaf.name} of shape {shape} could be channels-first (C, H, W) or "
                "channels-last (H, W, C): set policy_kwargs.image_channels to 'first' or 'last'"
            )
    if channels == "first":
        return (frames * a, b, c), False
    return (frames * c, a, b), True


class ImagePixels(nn.Module):
    """A batch of one image leaf's stored pixels as float (B, C, H, W), scaled to [0, 1]
    unless ``normalize_images`` is off (bool images are 0 or 1 already).

    With ``channels_last_memory`` (acrl's own CNNs, whose convolution weights are channels-last
    in memory on the CPU: acrl.model.flat_params) CPU images are in torch's channels_last
    memory format, which oneDNN convolves faster; otherwise (a user's extractor, a GPU) in the
    stored pixels' order. ``channels_last`` says how the env stores its pixels."""

    def __init__(
        self, leaf: Leaf, channels: str, normalize: bool, channels_last_memory: bool = False
    ) -> None:
        super().__init__()
        self.shape = leaf.shape
        self.chw, self.channels_last = image_chw(leaf, channels)
        self.scale = 1.0 / 255.0 if normalize and leaf.space.dtype != bool else 1.0
        self.memory_format = torch.channels_last if channels_last_memory else torch.preserve_format

    def forward(self, pixels: Tensor) -> Tensor:
        images = pixels.reshape(pixels.shape[0], *self.shape)
        if self.channels_last:  # (B, [K,] H, W, C) -> (B, [K,] C, H, W)
            last = images.dim() - 1  # non-negative axes: ONNX's Transpose takes no -1
            images = images.movedim(last, last - 2)
        images = images.reshape(pixels.shape[0], *self.chw)
        cpu = images.device.type == "cpu"
        images = images.to(
            torch.float32, memory_format=self.memory_format if cpu else torch.preserve_format
        )
        return images * self.scale if self.scale != 1.0 else images


class CombinedEncoder(nn.Module):
    """Box values and bits as they are, a CNN per image, then one one-hot vector per index
    (the row holds index minus its space's start)."""

    def __init__(self, layout: ObservationLayout, config: PolicyConfig) -> None:
        super().__init__()
        self.layout = layout
        self.dense_dim = layout.dense_dim
        pixels = [
            ImagePixels(leaf, config.image_channels, config.normalize_images, True)
            for leaf in layout.images
        ]
        kwargs = dict(config.features_extractor_kwargs)
        name = config.features_extractor_class
        cnns = [make_cnn(name, p.chw, kwargs) for p in pixels]
        self.pixels, self.cnns = nn.ModuleList(pixels), nn.ModuleList(cnns)
        self.image_columns = [layout.columns[layout.leaves.index(leaf)] for leaf in layout.images]
        nvec = layout.nvec
        self.offsets = [sum(nvec[:i]) for i in range(len(nvec))]  # of each one-hot block
        self.one_hot_dim = sum(nvec)
        self.features_dim = layout.features_dim + sum(c.features_dim for c in cnns)
        # a tensor per device, made once (not a buffer: buffers are state that engines copy)
        self._offsets: dict[torch.device, Tensor] = {}

    def forward(self, obs: Tensor, normalize: Normalize | None = None) -> Tensor:
        floats, pixels = split_rows(self.layout, obs.reshape(obs.shape[0], -1))
        if normalize is not None:
            floats = normalize(floats)
        parts = [floats[:, : self.dense_dim]] if self.dense_dim else []
        for (start, stop), image, cnn in zip(
            self.image_columns, self.pixels, self.cnns, strict=True
        ):
            parts.append(cnn(image(pixels[:, start:stop])))
        if self.offsets:
            offsets = self._offsets.get(obs.device)
            if offsets is None:
                offsets = self._offsets[obs.device] = torch.tensor(self.offsets, device=obs.device)
            columns = floats[:, self.dense_dim :].long() + offsets
            hot = torch.zeros((obs.shape[0], self.one_hot_dim), device=obs.device)
            parts.append(hot.scatter_(1, columns, 1.0))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class UserEncoder(nn.Module):
    """The user's features extractor over the observation as Stable-Baselines3 preprocesses
    it (``preprocess``)."""

    def __init__(self, layout: ObservationLayout, config: PolicyConfig, may_import: bool) -> None:
        super().__init__()
        self.layout = layout
        self.pixels = nn.ModuleDict(
            {
                str(i): ImagePixels(leaf, config.image_channels, config.normalize_images)
                for i, leaf in enumerate(layout.leaves)
                if leaf.kind == "image"
            }
        )
        space = _channels_first_space(layout.space, layout, self.pixels)
        self.extractor = build_user_extractor(
            config.features_extractor_class,
            space,
            dict(config.features_extractor_kwargs),
            may_import,
        )
        dim: Any = self.extractor.features_dim  # checked an int by build_user_extractor
        self.features_dim = int(dim)
        self._check_output(config.features_extractor_class)

    def _check_output(self, name: str) -> None:
        """One forward pass of a blank observation (which also sizes lazy layers): the
        extractor must return (batch, features_dim) features."""
        dtype = torch.uint8 if self.layout.dtype is np.uint8 else torch.float32
        row = torch.zeros((1, self.layout.raw_dim), dtype=dtype)
        try:
            with torch.no_grad():
                out = self(row)
        except Exception as exc:  # the user's code: one line naming it
            raise UserError(
                f"features_extractor_class {name} raised {type(exc).__name__} on an "
                f"observation: {first_line(exc)}"
            ) from None
        if not isinstance(out, Tensor) or tuple(out.shape) != (1, self.features_dim):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise UserError(
                f"features_extractor_class {name} returned {got} for one observation, not "
                f"(1, {self.features_dim}) (its features_dim)"
            )

    def preprocess(self, obs: Tensor, normalize: Normalize | None = None) -> Tensor | dict | tuple:
        """Rows as SB3 gives observations to an extractor: float tensors, images (B, C, H, W)
        and scaled, indices one-hot, nested as the space (Dict: a dict, Tuple: a tuple)."""
        floats, pixels = split_rows(self.layout, obs.reshape(obs.shape[0], -1))
        if normalize is not None:
            floats = normalize(floats)
        values: dict[tuple, Tensor] = {}
        for i, leaf in enumerate(self.layout.leaves):
            start, stop = self.layout.columns[i]
            if leaf.kind == "image":
                values[leaf.path] = self.pixels[str(i)](pixels[:, start:stop])
                continue
            columns = floats[:, start:stop]
            if leaf.kind == "index":
                hots = [
                    F.one_hot(columns[:, j].long(), int(n)).float() for j, n in enumerate(leaf.nvec)
                ]
                values[leaf.path] = torch.cat(hots, dim=1)
            else:
                values[leaf.path] = columns.reshape(obs.shape[0], *leaf.shape)
        return _nest(self.layout.space, (), values)

    def forward(self, obs: Tensor, normalize: Normalize | None = None) -> Tensor:
        return self.extractor(self.preprocess(obs, normalize))


def _nest(space: spaces.Space, path: tuple, values: dict[tuple, Tensor]) -> Tensor | dict | tuple:
    if isinstance(space, spaces.Dict):
        return {key: _nest(space.spaces[key], (*path, key), values) for key in sorted(space.spaces)}
    if isinstance(space, spaces.Tuple):
        return tuple(_nest(part, (*path, i), values) for i, part in enumerate(space.spaces))
    return values[path]


def _channels_first_space(
    space: spaces.Space, layout: ObservationLayout, pixels: nn.ModuleDict
) -> spaces.Space:
    """``space`` with its images channels-first, as SB3's VecTransposeImage shows them."""
    by_id = {
        id(leaf.space): pixels[str(i)] for i, leaf in enumerate(layout.leaves) if str(i) in pixels
    }

    def convert(part: spaces.Space) -> spaces.Space:
        if isinstance(part, spaces.Dict):
            return spaces.Dict({key: convert(part.spaces[key]) for key in sorted(part.spaces)})
        if isinstance(part, spaces.Tuple):
            return spaces.Tuple([convert(p) for p in part.spaces])
        image = by_id.get(id(part))
        if not isinstance(image, ImagePixels) or not isinstance(part, spaces.Box):
            return part
        high = 1 if part.dtype == bool else 255
        return spaces.Box(0, high, image.chw, dtype=part.dtype)  # type: ignore[call-overload]

    return convert(space)


Encoder = FlattenEncoder | CombinedEncoder | UserEncoder


def make_encoder(
    observation_space: spaces.Space, config: PolicyConfig | None = None, may_import: bool = False
) -> Encoder:
    """The encoder for an observation space; a one-line ValueError for one acrl cannot
    observe (Text, Graph, Sequence, ...). ``may_import``: the user named the extractor on
    this command, so its module may be imported (acrl.model.extractors)."""
    config = config or PolicyConfig()
    layout = observation_layout(observation_space)
    if config.user_extractor:
        return UserEncoder(layout, config, may_import)
    if layout.is_box:
        assert isinstance(observation_space, spaces.Box)
        return FlattenEncoder(observation_space)
    return CombinedEncoder(layout, config)


def check_policy_name(policy: str, observation_space: spaces.Space) -> None:
    """Refuse a policy name that does not fit the space (SB3's names), in one line that
    names the one that fits."""
    layout = observation_layout(observation_space)
    image = layout.is_image
    is_dict = isinstance(observation_space, spaces.Dict)
    if image:
        fits = "CnnPolicy"
    elif is_dict:
        fits = "MultiInputPolicy"
    else:  # vectors, or a Tuple (no SB3 name takes a Tuple with images: "auto" does)
        fits = "auto" if layout.images else "MlpPolicy"
    space = one_line(observation_space)
    use = f"use {fits!r}" + ("" if fits == "auto" else " (or 'auto')")
    if policy == "MlpPolicy" and layout.images:
        raise ValueError(f"observation space {space} holds images: {use}")
    if policy == "CnnPolicy" and not image:
        raise ValueError(
            "CnnPolicy is for image observations (a Box (H, W, C) or (C, H, W) of uint8 0-255 "
            f"or of bools), not {space}: {use}"
        )
    if policy == "MultiInputPolicy" and not is_dict:
        raise ValueError(f"MultiInputPolicy is for Dict observation spaces, not {space}: {use}")


def orthogonal_encoder_(encoder: nn.Module, gain: float) -> None:
    """Orthogonal weights and zero biases for a built-in CNN's layers, as SB3 initializes
    its features extractor (a user's extractor keeps its own initialization)."""
    if isinstance(encoder, UserEncoder):
        return
    for module in encoder.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
