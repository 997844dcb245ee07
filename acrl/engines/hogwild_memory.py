"""Hogwild sharing: a model and its optimizer state in shared memory, and gradient hand-over.

The optimizer state (step counts, square averages, moments) is allocated before any
worker starts, by torch's own lazy initialization run once with zero gradients and a zero
learning rate, and moved to shared memory. Each worker builds its own optimizer object over
the shared parameters and points its state at the same shared tensors, so every worker's
``step()`` updates one set of statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SharedState = list[dict[str, Tensor]]


def allocate_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's per-parameter state now (zeros), without changing any parameter."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if all(len(optimizer.state.get(p, {})) > 0 for p in params):
        return
    grads = [p.grad for p in params]
    rates = [group["lr"] for group in optimizer.param_groups]
    for p in params:
        p.grad = torch.zeros_like(p)
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    optimizer.step()
    for p, grad in zip(params, grads, strict=True):
        p.grad = grad
    for group, lr in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = lr
    with torch.no_grad():
        for p in params:
            for value in optimizer.state[p].values():
                if isinstance(value, Tensor):
                    value.zero_()


def share_model_and_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> SharedState:
    """Move parameters and optimizer state to shared memory; the state, in parameter order."""
    allocate_optimizer_state(optimizer)
    model.share_memory()
    state: SharedState = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            entry = optimizer.state[p]
            for value in entry.values():
                if isinstance(value, Tensor):
                    value.share_memory_()
            state.append(entry)
    return state


def attach_shared_state(optimizer: torch.optim.Optimizer, state: SharedState) -> None:
    """Make a worker's optimizer use the shared state tensors (by parameter order)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != len(state):
        raise ValueError(f"optimizer has {len(params)} parameters, shared state {len(state)}")
    for p, entry in zip(params, state, strict=True):
        optimizer.state[p] = entry


def push_gradients(local_grad: Tensor, shared_vector: Tensor) -> None:
    """Copy a worker's gradient vector into this process's gradient of the shared vector.

    The copy is explicit on every call: the shared gradient never aliases the local one, so
    nothing the local model later does to its gradients can change what the optimizer reads.
    """
    if shared_vector.grad is None:
        shared_vector.grad = torch.empty_like(shared_vector)
    shared_vector.grad.copy_(local_grad)
