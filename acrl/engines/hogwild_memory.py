"""Hogwild sharing: a model and its optimizer state in shared memory, and gradient hand-over.

The optimizer's state (step count, square averages, moments; made when the optimizer is
built) moves to shared memory with the parameters. Each worker builds its own optimizer
object over the shared parameters and the same shared state tensors, so every worker's
``step()`` updates one set of statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from acrl.learner.optim import OptimizerState, VectorOptimizer


def share_model_and_optimizer(model: nn.Module, optimizer: VectorOptimizer) -> OptimizerState:
    """Move the parameters and the optimizer's state to shared memory; the state's tensors,
    which each worker's optimizer is built over."""
    model.share_memory()
    return optimizer.share_memory()


def push_gradients(local_grad: Tensor, shared_vector: Tensor) -> None:
    """Copy a worker's gradient vector into this process's gradient of the shared vector.

    The copy is explicit on every call: the shared gradient never aliases the local one, so
    nothing the local model later does to its gradients can change what the optimizer reads.
    """
    if shared_vector.grad is None:
        shared_vector.grad = torch.empty_like(shared_vector)
    shared_vector.grad.copy_(local_grad)
