"""Compute backends: how a policy acts and how a rollout's gradient is computed.

- "torch": the policy module and autograd. Any policy, any device, any batch: the reference.
- "numpy": the same forward pass and the loss's gradient written out in NumPy
  (acrl.learner.backends.numpy_gradient), for MLP policies and small CNNs (MinAtar's) on
  the CPU, where torch's per-operator dispatch costs more than the arithmetic. A CNN's
  update reuses the passes acting made over the rollout (acrl.learner.backends.numpy_reuse).
  Tests check that it acts and differentiates as the torch backend does.

``choose_compute`` is the one place that decides which runs ("auto" included), with how
many torch threads and whether the process keeps freed memory (acrl.learner.backends.
allocator), and says why; models save the choice and the CLI prints it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from acrl.config.hyperparams import A2CConfig
from acrl.learner.backends import allocator
from acrl.learner.backends.numpy_cnn import cnn_macs
from acrl.learner.backends.numpy_forward import numpy_gaps
from acrl.learner.losses import GradientTerms
from acrl.learner.storage import Rollout
from acrl.model.flat_params import FlatParameters
from acrl.model.policy import ActorCritic

NUMPY_MAX_BATCH = 800
"""Above this many transitions per update, "auto" picks torch (with its own threads). Whole
training on CartPole, n_steps 5, on our 2-core machine (benchmarks/backends.py, steps/s,
NumPy on 1 thread against torch on 2): 17.1k vs 6.8k at 8 envs, 103k vs 81k at 128 envs,
about even at 160 (800 transitions), 113k vs 131k at 204 envs, 112k vs 211k at 1,024."""

HEAVY_ENCODER = 1_000_000
"""An encoder of more parameters than this (NatureCNN on 84x84: 1.7M) trains on torch's own
threads: its convolutions are compute-bound. SmallCNN on 12x12 images, 8 envs x 5 steps, 2,000
steps while another job held a core: 2.0 s on one thread, 6.5 s on two."""

NUMPY_MAX_CNN_MACS = 500_000
"""Above this many multiply-adds per observation in its CNNs, "auto" trains on torch, whose
oneDNN kernels are made for compute-bound convolutions. Below, numpy: MinAtar's SmallCNN is
168k (MinAtar Breakout's 300k steps in 39.5 s against SB3's 70.7 s, benchmarks/
minatar_breakout.py; 1.26x on torch); NatureCNN is 0.9M at its smallest (36x36) and 9.3M on
Atari's 84x84 frames. The two are about even from ~0.9M (16 envs x 5 steps of noise frames, one
thread each, steps/s numpy against torch: NatureCNN on 4x36x36 1,489 / 1,474, SmallCNN on
4x20x20 1,664 / 1,639, on 3x24x24 (1.2M) 1,438 / 1,295), so the line keeps a margin."""


class Backend(Protocol):
    """What the collector and the update ask of a backend."""

    name: str

    def acting(self) -> AbstractContextManager[Any]:
        """A context around a rollout's acting steps (NumPy: its BLAS on one thread, and a
        CNN's passes kept for the rollout's update)."""
        ...

    def act(self, obs: np.ndarray, exploration: Any = None) -> np.ndarray:
        """Sampled actions for a batch of observations (host arrays); the actor alone."""
        ...

    def value(self, obs: np.ndarray) -> np.ndarray:
        """Values of a batch of observations (host arrays); the critic alone."""
        ...

    def gradients(self, rollout: Rollout, config: A2CConfig) -> GradientTerms:
        """One forward pass over the rollout: its values (``Rollout.set_values``), GAE
        targets and A2C loss; the loss's gradient overwrites ``params.grad``."""
        ...


@dataclass(frozen=True)
class Compute:
    """The backend and torch threads a model trains with, and why."""

    backend: str  # "torch" or "numpy"
    threads: int | None  # torch's intra-op threads while training; None: torch's own setting
    reason: str
    keep_memory: bool = False  # glibc keeps freed memory while training (a large CPU CNN)

    def describe(self) -> str:
        threads = (
            "torch's default threads"
            if self.threads is None
            else (f"{self.threads} torch thread{'s' if self.threads > 1 else ''}")
        )
        kept = ", freed memory kept where gradients are computed" if self.keep_memory else ""
        return f"{self.backend} backend, {threads}{kept} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "threads": self.threads,
            "reason": self.reason,
            "keep_memory": self.keep_memory,
        }


def choose_compute(
    requested: str, policy: ActorCritic, batch: int, threads: int | str = "auto"
) -> Compute:
    """The backend and thread count for training ``policy`` on updates of ``batch`` transitions.

    "auto" picks numpy where it covers the policy, the batch is at most NUMPY_MAX_BATCH and
    its CNNs, if any, do at most NUMPY_MAX_CNN_MACS multiply-adds per observation, else
    torch. ``threads="auto"`` is one thread for CPU updates of at most NUMPY_MAX_BATCH
    transitions of a policy without a large CNN (dispatch-bound: more threads only add
    synchronization, and cost several times over when another process uses a core), else
    torch's own setting. A large encoder on the CPU (more than HEAVY_ENCODER parameters) has
    glibc, where it is the C library, keep freed memory (acrl.learner.backends.allocator:
    +14% on Pong).
    """
    gaps = numpy_gaps(policy)
    small = batch <= NUMPY_MAX_BATCH
    if requested == "numpy":
        if gaps:
            raise ValueError(
                f"backend 'numpy' does not cover this model: {'; '.join(gaps)}; "
                "use backend 'torch' or 'auto'"
            )
        backend, reason = "numpy", "asked for"
    elif requested == "torch":
        backend, reason = "torch", "asked for"
    elif requested != "auto":
        raise ValueError(f"backend must be one of auto, torch, numpy, got {requested!r}")
    elif gaps:
        backend, reason = "torch", f"auto: numpy does not cover {'; '.join(gaps)}"
    elif not small:
        backend = "torch"
        reason = f"auto: {batch:,} transitions per update > {NUMPY_MAX_BATCH:,}"
    elif (macs := cnn_macs(policy.encoder)) > NUMPY_MAX_CNN_MACS:  # NumPy covers its CNNs
        backend = "torch"
        reason = (
            f"auto: CNNs of {macs:,} multiply-adds per observation (compute-bound: torch's kernels)"
        )
    else:
        backend = "numpy"
        model = "a small CNN" if policy.encoder.layout.images else "an MLP"
        reason = f"auto: {model} on the CPU, {batch:,} transitions per update"
    on_cpu = policy.critic_head.weight.device.type == "cpu"
    # a large CNN (NatureCNN: 1.7M parameters) is compute-bound, not dispatch-bound
    heavy = sum(p.numel() for p in policy.encoder.parameters()) > HEAVY_ENCODER
    if threads == "auto":
        n_threads = 1 if on_cpu and small and not heavy else None
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
    else:
        n_threads = threads
    keep_memory = on_cpu and heavy and allocator.available()
    return Compute(backend, n_threads, reason, keep_memory=keep_memory)


def make_backend(name: str, policy: ActorCritic, params: FlatParameters) -> Backend:
    """The backend ``name`` (as ``Compute.backend``), over ``policy`` and its flat ``params``."""
    if name == "numpy":
        from acrl.learner.backends.numpy_gradient import NumpyBackend

        return NumpyBackend(policy, params)
    from acrl.learner.backends.torch_backend import TorchBackend

    return TorchBackend(policy, params)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` (None: left alone), restored on exit."""
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
