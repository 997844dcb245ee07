"""acrl's built-in CNN encoders (NatureCNN, SmallCNN) in NumPy: forward, and backward to
their weights, for the NumPy backend.

On MinAtar's 10x10 frames a SmallCNN pass over the 16 frames of one acting step is a few
thousand multiply-adds per filter: torch's conv2d, ReLU, flatten and linear dispatch cost
more than that arithmetic, as for the small MLPs the backend was made for. Here a convolution
is one matrix product over the image's patches (im2col: a strided view, one copy), the
activations stay channels-last (B, H, W, C) between convolutions, and the flatten reorders
to torch's (C, H, W) so the first linear layer reads the parameters as they are. The weights
are NumPy views of the policy's parameters, read afresh at every pass (optimizer steps change
them in place). Tests check outputs and gradients against torch's autograd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from acrl.model.encoders import CombinedEncoder, ImagePixels

Array = np.ndarray


@dataclass(frozen=True)
class _Conv:
    weight: Any  # the parameter (out, in, kh, kw)
    bias: Any
    stride: int


@dataclass(frozen=True)
class _Linear:
    weight: Any  # the parameter (out, in)
    bias: Any


_Op = _Conv | _Linear | str  # "relu" and "flatten" as names


def cnn_gap(cnn: nn.Module) -> str | None:
    """Why NumPy cannot compute ``cnn`` (None: it can): the built-in CNNs' layers only."""
    seq = getattr(cnn, "cnn", None)
    if not isinstance(seq, nn.Sequential):
        return f"the features extractor {type(cnn).__name__}"
    for layer in seq:
        if isinstance(layer, nn.Conv2d):
            plain = (
                layer.padding in ((0, 0), "valid")
                and layer.dilation == (1, 1)
                and layer.groups == 1
                and layer.bias is not None
                and layer.stride[0] == layer.stride[1]
            )
            if not plain:
                return f"the convolution {layer} (NumPy has unpadded, undilated ones)"
        elif not isinstance(layer, nn.ReLU | nn.Flatten | nn.Linear):
            return f"the layer {type(layer).__name__} in {type(cnn).__name__}"
    return None


def numpy_cnns(encoder: nn.Module) -> list[NumpyCNN]:
    """A NumpyCNN for each image of a CombinedEncoder, in its order (none for another
    encoder)."""
    if not isinstance(encoder, CombinedEncoder):
        return []
    return [NumpyCNN(p, c) for p, c in zip(encoder.pixels, encoder.cnns, strict=True)]


def cnn_macs(encoder: nn.Module) -> int:
    """Multiply-adds per observation of the encoder's CNNs (0: none), where NumPy covers
    them."""
    return sum(cnn.macs for cnn in numpy_cnns(encoder))


class NumpyCNN:
    """One image leaf's pixels and CNN: stored pixel rows to features, and the gradient of
    the features' weights."""

    def __init__(self, pixels: nn.Module, cnn: nn.Module) -> None:
        gap = cnn_gap(cnn)
        if gap:
            raise ValueError(f"NumPy cannot compute {gap}")
        assert isinstance(pixels, ImagePixels)
        self.shape, self.channels_last = pixels.shape, pixels.channels_last
        self.chw = pixels.chw
        self.scale = np.float32(pixels.scale)
        self.ops: list[_Op] = []
        self.inputs: list[tuple[int, ...]] = []  # each op's input shape, batch left out
        c, h, w = self.chw
        shape: tuple[int, ...] = (h, w, c)
        layers = cnn.cnn
        assert isinstance(layers, nn.Sequential)  # cnn_gap checked it
        for layer in layers:
            self.inputs.append(shape)
            if isinstance(layer, nn.Conv2d):
                stride = int(layer.stride[0])
                self.ops.append(_Conv(layer.weight, layer.bias, stride))
                kh, kw = layer.kernel_size
                shape = (
                    (shape[0] - kh) // stride + 1,
                    (shape[1] - kw) // stride + 1,
                    layer.out_channels,
                )
            elif isinstance(layer, nn.Linear):
                self.ops.append(_Linear(layer.weight, layer.bias))
                shape = (layer.out_features,)
            elif isinstance(layer, nn.ReLU):
                self.ops.append("relu")
            else:
                self.ops.append("flatten")
                shape = (int(np.prod(shape)),)
        self.features_dim = shape[0]
        self.first = next(i for i, op in enumerate(self.ops) if not isinstance(op, str))
        outputs = [*self.inputs[1:], shape]
        self.macs = sum(
            op.weight.numel() * (int(np.prod(out[:2])) if isinstance(op, _Conv) else 1)
            for op, out in zip(self.ops, outputs, strict=True)
            if not isinstance(op, str)
        )
        self.parameters = [
            p for op in self.ops if not isinstance(op, str) for p in (op.weight, op.bias)
        ]

    def images(self, pixels: Array) -> Array:
        """Stored pixels (B, size) as float32 images (B, H, W, C), C ordered as torch's
        channels (a stacked frame's channels after the previous frame's)."""
        b = pixels.shape[0]
        images = pixels.reshape(b, *self.shape)
        if len(self.shape) == 2:  # (B, H, W): one channel
            images = images[..., None]
        elif self.channels_last and len(self.shape) == 4:  # (B, K, H, W, C)
            images = images.transpose(0, 2, 3, 1, 4)
        elif not self.channels_last:  # (B, [K,] C, H, W)
            images = images.reshape(b, *self.chw).transpose(0, 2, 3, 1)
        c, h, w = self.chw
        out = images.reshape(b, h, w, c).astype(np.float32, order="C")
        if self.scale != 1.0:
            out *= self.scale
        return out

    def forward(self, pixels: Array, keep: bool = False) -> tuple[Array, list[Array]]:
        """Features (B, features_dim) of stored pixels; with ``keep``, what ``backward``
        reads, one per op: a convolution's patches, a linear layer's input, a ReLU's
        output (a flatten keeps nothing)."""
        x = self.images(pixels)
        kept: list[Array] = []
        for op in self.ops:
            saved = x
            if isinstance(op, _Conv):
                weight = _array(op.weight)
                out_c, _, kh, kw = weight.shape
                patches = _patches(x, kh, kw, op.stride)
                b, ho, wo = patches.shape[:3]
                saved = patches.reshape(b * ho * wo, -1)
                x = saved @ _matrix(weight).T + _array(op.bias)
                x = x.reshape(b, ho, wo, out_c)
            elif isinstance(op, _Linear):  # W @ x.T: ~1.6x faster than x @ W.T here
                x = (_array(op.weight) @ x.T).T + _array(op.bias)
            elif op == "relu":
                saved = x = np.maximum(x, 0.0, out=x)
            else:  # torch flattens (C, H, W)
                x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
            if keep:
                kept.append(saved)
        return x, kept

    def join(self, passes: list[tuple[Array, list[Any]]]) -> tuple[Array, list[Any]]:
        """``forward(keep=True)``'s results over consecutive batches as one over their rows
        (a flatten's entry, which ``backward`` does not read, left out as None)."""
        features = np.concatenate([f for f, _ in passes])
        kept = [
            None if op == "flatten" else np.concatenate([k[i] for _, k in passes])
            for i, op in enumerate(self.ops)
        ]
        return features, kept

    def backward(self, kept: list[Any], d_features: Array) -> list[Array]:
        """Gradients of the CNN's weights and biases (torch's layouts, in ``parameters``
        order) from d loss / d features and a ``forward(keep=True)``'s ``kept`` (or
        ``join``'s)."""
        grads: list[Array] = []
        d = d_features
        for i in range(len(self.ops) - 1, self.first - 1, -1):
            op, saved = self.ops[i], kept[i]
            if op == "relu":
                d = d * (saved > 0.0)
            elif op == "flatten":
                h, w, c = self.inputs[i]
                d = d.reshape(d.shape[0], c, h, w).transpose(0, 2, 3, 1)
            elif isinstance(op, _Linear):
                grads[:0] = [d.T @ saved, d.sum(axis=0)]
                if i > self.first:
                    d = d @ _array(op.weight)
            else:
                assert isinstance(op, _Conv)
                weight = _array(op.weight)
                out_c, in_c, kh, kw = weight.shape
                b, ho, wo = d.shape[:3]
                d_out = d.reshape(b * ho * wo, out_c)
                d_weight = (d_out.T @ saved).reshape(out_c, kh, kw, in_c).transpose(0, 3, 1, 2)
                grads[:0] = [d_weight, d_out.sum(axis=0)]
                if i > self.first:
                    d_patches = d_out @ _matrix(weight)
                    d = _fold(d_patches.reshape(b, ho, wo, kh, kw, in_c), op.stride, self.inputs[i])
        return grads


def _array(param: Any) -> Array:
    """A parameter's values as a NumPy view (strides as they are)."""
    return param.detach().numpy()  # type: ignore[no-any-return]


def _matrix(weight: Array) -> Array:
    """A convolution's weight (out, C, kh, kw) as the (out, kh * kw * C) matrix that
    multiplies ``_patches``' rows."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _patches(x: Array, kh: int, kw: int, stride: int) -> Array:
    """The (B, Ho, Wo, kh, kw * C) patches of channels-last images x (B, H, W, C): a view.
    A patch row's kw * C values lie side by side in x, so copying it out (the reshape of
    the caller) moves runs of kw * C floats, not of one: ~4x faster than a sliding window's
    (C, kh, kw) order on MinAtar's frames."""
    x = np.ascontiguousarray(x)  # the strides below assume it (a no-op for acrl's)
    b, h, w, c = x.shape
    sb, sh, sw, sc = x.strides
    shape = (b, (h - kh) // stride + 1, (w - kw) // stride + 1, kh, kw * c)
    return np.lib.stride_tricks.as_strided(x, shape, (sb, sh * stride, sw * stride, sh, sc))


def _fold(d_patches: Array, stride: int, hwc: tuple[int, ...]) -> Array:
    """The gradient of channels-last images (B, *hwc) from the gradient of their patches
    (B, Ho, Wo, kh, kw, C): each patch's entries added back where they were read."""
    b, ho, wo, kh, kw, _ = d_patches.shape
    d_x = np.zeros((b, *hwc), dtype=d_patches.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (ho - 1) + 1, stride)
            columns = slice(j, j + stride * (wo - 1) + 1, stride)
            d_x[:, rows, columns] += d_patches[:, :, :, i, j]
    return d_x
