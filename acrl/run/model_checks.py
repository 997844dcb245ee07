"""A model file's tensors checked against the network its metadata describes, before that
network is built: names, shapes, dtypes and finite values.

The expected network is a skeleton on torch's meta device (shapes, no memory), so an edited
size (``net_arch`` of 100,000 units) is refused in one line instead of allocated; a weight of
another dtype is refused instead of converted, and a NaN instead of evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from acrl.errors import UserError

PREFIXES = ("policy.", "optimizer.", "rng.")


def check_tensors(tensors: Mapping[str, Tensor], skeleton: nn.Module) -> None:
    """``tensors`` (a file's, in today's layout) hold exactly the policy state of
    ``skeleton``, an optimizer state over its one parameter vector, RNG states and nothing
    else; a UserError names the first tensor that does not fit."""
    stray = sorted(k for k in tensors if not k.startswith(PREFIXES))
    if stray:
        raise UserError(mismatch(f"unexpected tensor {stray[0]}"))
    expected = {f"policy.{k}": v for k, v in skeleton.state_dict().items()}
    saved = {k for k in tensors if k.startswith("policy.")}
    missing, extra = sorted(set(expected) - saved), sorted(saved - set(expected))
    if missing or extra:
        raise UserError(mismatch(f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"))
    for name, want in expected.items():
        check_tensor(name, tensors[name], want.shape, want.dtype)
    parameters = list(skeleton.parameters())
    size = sum(p.numel() for p in parameters)
    dtype = parameters[0].dtype if parameters else torch.float32
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            check_optimizer_tensor(name, tensor, size, dtype)


def check_optimizer_tensor(name: str, tensor: Tensor, size: int, dtype: torch.dtype) -> None:
    """One entry of the optimizer's state: a step count or a vector the size of the
    parameters, in their dtype (the optimizer steps one parameter vector)."""
    if name.split(".")[1] != "0":
        raise UserError(mismatch(f"{name}: the optimizer steps one parameter vector"))
    shape = torch.Size([]) if tensor.dim() == 0 else torch.Size([size])
    check_tensor(name, tensor, shape, dtype)


def check_tensor(name: str, tensor: Tensor, shape: torch.Size, dtype: torch.dtype) -> None:
    """``tensor`` has ``shape`` and ``dtype`` and, if a float, only finite values."""
    if tensor.shape != shape:
        raise UserError(
            mismatch(f"{name} has shape {tuple(tensor.shape)}, its settings give {tuple(shape)}")
        )
    if tensor.dtype != dtype:
        raise UserError(
            f"tensor {name} is {dtype_name(tensor.dtype)}, but acrl writes it as "
            f"{dtype_name(dtype)}: refused rather than converted"
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise UserError(f"tensor {name} holds NaN or inf values")


def mismatch(detail: str) -> str:
    return f"weights do not match the saved architecture ({detail})"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
