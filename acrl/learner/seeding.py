"""Seeds: one seed controls Python, NumPy and torch, and every derived stream."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def continued_seed(seed: int | None, num_updates: int) -> int | None:
    """The seed for environments that start at update ``num_updates`` of a run.

    A fresh run uses its seed; a continued one (after ``load``) derives a new seed from
    it, so that it does not replay the episodes the run began with.
    """
    if seed is None or num_updates == 0:
        return seed
    state = np.random.SeedSequence(entropy=seed, spawn_key=(num_updates,)).generate_state(1)
    return int(state[0] % 2**31)


def worker_seeds(seed: int | None, salt: int, n_workers: int) -> list[tuple[int, int]]:
    """Independent (torch seed, env seed) pairs, one per worker, from one seed.

    The number of updates done so far salts the streams, so that a continued ``learn()``
    does not replay the same episodes.
    """
    if seed is None:
        root = np.random.SeedSequence()
    else:
        root = np.random.SeedSequence(entropy=seed, spawn_key=(salt,))
    seeds = []
    for child in root.spawn(n_workers):
        torch_seed, env_seed = (int(x) % 2**31 for x in child.generate_state(2))
        seeds.append((torch_seed, env_seed))
    return seeds
