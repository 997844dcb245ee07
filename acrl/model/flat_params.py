"""A module's parameters and gradients as views of two contiguous vectors.

For the small networks of reinforcement learning, zeroing gradients, clipping their norm
and the optimizer's step cost far more in per-tensor overhead than in arithmetic. With
every parameter a view of one vector (and every gradient a view of another), each of these
is one operation on one tensor: on a 64x64 actor-critic, about 40 µs instead of 370 µs per
update. The module itself is unchanged for everything else (forward, state_dict,
load_state_dict, share_memory): its parameters are still its parameters, only where their
numbers live has moved.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class FlatParameters:
    """Re-home ``module``'s parameters into ``vector`` and their gradients into ``vector.grad``.

    Call after the module has reached its device (``.to()`` makes new tensors). Backward
    accumulates into the existing gradient views in place, so they stay views as long as
    nobody sets a gradient to None: use ``zero_grad`` here, not the module's.
    """

    def __init__(self, module: nn.Module) -> None:
        params = list(module.parameters())
        if not params:
            raise ValueError("module has no parameters")
        with torch.no_grad():
            self.vector = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
        self.grad = torch.zeros_like(self.vector)
        self.vector.grad = self.grad
        offset = 0
        for p in params:
            n = p.numel()
            p.data = self.vector.data[offset : offset + n].view_as(p)
            p.grad = self.grad[offset : offset + n].view_as(p)
            offset += n
        self._params = params

    def zero_grad(self) -> None:
        self.grad.zero_()

    def check_views(self) -> bool:
        """True while every parameter and gradient still lives in the two vectors."""
        base, grad_base = self.vector.data_ptr(), self.grad.data_ptr()
        size = self.vector.numel() * self.vector.element_size()
        return all(
            p.grad is not None
            and base <= p.data_ptr() < base + size
            and grad_base <= p.grad.data_ptr() < grad_base + size
            for p in self._params
        )


def clip_grad_norm(grad: Tensor, max_norm: float) -> Tensor:
    """Scale ``grad`` in place to a norm of at most ``max_norm``; the norm before clipping.

    The same rule as ``torch.nn.utils.clip_grad_norm_`` (coefficient max_norm / (norm + 1e-6),
    capped at 1), on one vector; in NumPy on the CPU (~5 µs instead of ~40 µs).
    """
    if grad.device.type == "cpu":
        values = grad.numpy()
        with np.errstate(all="ignore"):  # an overflow gives inf, for the caller to report
            norm = np.sqrt(np.dot(values, values))
        if np.isfinite(norm):
            values *= np.float32(min(max_norm / (float(norm) + 1e-6), 1.0))
        return torch.tensor(float(norm))
    norm = torch.linalg.vector_norm(grad)
    grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return norm
