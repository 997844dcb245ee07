"""A3C's Ray worker: an actor with its own envs, seed stream and local model that computes
the clipped A2C gradient of one rollout at the weights it is handed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from acrl.learner.storage import Rollout
from acrl.learner.update import compute_gradients, raw_advantages, update_statistics
from acrl.learner.worker import Worker, WorkerSpec, build_worker
from acrl.model.normalization import make_normalization


@dataclass
class GradientReport:
    """What a worker sends back for one rollout (picklable, NumPy only)."""

    grad: np.ndarray  # the clipped gradient, as the model's parameter vector
    stats: list[float]  # UpdateStats.as_floats()
    episodes: list[tuple[float, int]]  # (return, length) of episodes finished in the rollout
    steps: int
    pid: int  # of the worker's process: a new one means Ray restarted the worker
    moments: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (statistic, sums)


class GradientWorker:
    """One worker (a plain class: ``ray.remote`` makes it an actor).

    Setting up cannot fail: an error there (an env that cannot be made) is kept and raised
    by the first ``compute``, so that the driver reports it instead of Ray restarting an
    actor that will never start.

    Normalization: the worker's statistics record the moments of every batch they merge
    (``moments``, sent with the gradient for the driver to merge into the model's), and
    are replaced by the model's with every set of weights.
    """

    def __init__(self, rank: int, spec: WorkerSpec) -> None:
        self.spec = spec
        self.rank = rank
        self.error: Exception | None = None
        self.rollout: Rollout | None = None
        self.moments: list[tuple[str, np.ndarray]] = []
        seeds = spec.seeds[rank]
        if _reconstructed():  # not the episodes of the process it replaces
            seeds = fresh_seeds(seeds, os.getpid())
        try:
            self.worker = self._set_up(seeds)
        except Exception as exc:
            self.error = exc

    def _set_up(self, seeds: tuple[int, int]) -> Worker:
        config = self.spec.config
        normalization = make_normalization(self.spec.observation_space, config)
        if normalization is not None:
            for name, rms in normalization.statistics().items():
                rms.reduce = self._recorder(name)
        worker = build_worker(self.spec, seeds, normalization)
        self.buffers = list(worker.policy.buffers())
        return worker

    def _recorder(self, name: str) -> Any:
        def record(sums: torch.Tensor) -> torch.Tensor:
            self.moments.append((name, sums.numpy().copy()))
            return sums  # this worker's copy merges its own batch, as the driver will

        return record

    def ready(self) -> int:
        return os.getpid()

    def compute(
        self, weights: np.ndarray, buffers: list[np.ndarray], lr: float, update: int
    ) -> GradientReport:
        """The clipped gradient of one rollout collected with ``weights``."""
        if self.error is not None:
            raise self.error
        worker = self.worker
        # Ray hands over read-only arrays: copy them in with NumPy (torch would warn)
        worker.params.vector.detach().numpy()[:] = weights
        for mine, theirs in zip(self.buffers, buffers, strict=True):
            mine.numpy()[...] = theirs
        self.moments = []
        self.rollout = worker.collector.collect()
        config = self.spec.config
        stats = compute_gradients(worker.backend, worker.params, self.rollout, config, lr, update)
        update_statistics(worker.policy.normalization, self.rollout, config)
        return GradientReport(
            grad=worker.params.grad.numpy().copy(),
            stats=stats.as_floats(),
            episodes=worker.collector.episodes.drain(),
            steps=self.spec.steps_per_update,
            pid=os.getpid(),
            moments=self.moments,
        )

    def last_advantages(self) -> np.ndarray:
        if self.rollout is None:
            return np.zeros(0, np.float32)
        return raw_advantages(self.rollout, self.spec.config, self.worker.policy.normalization)


def _reconstructed() -> bool:
    """True in an actor that Ray restarted after its process died."""
    try:
        import ray

        context = ray.get_runtime_context()
        return context.get_actor_id() is not None and context.was_current_actor_reconstructed
    except Exception:  # not in a Ray actor (a worker built directly, as tests do)
        return False


def fresh_seeds(seeds: tuple[int, int], salt: int) -> tuple[int, int]:
    """New (torch, env) seeds from a worker's own and a salt (a restarted worker's pid)."""
    state = np.random.SeedSequence(entropy=list(seeds), spawn_key=(salt,)).generate_state(2)
    return int(state[0] % 2**31), int(state[1] % 2**31)
