"""Synchronous A2C over several processes with ``torch.distributed`` (launched by torchrun).

Every rank runs its own vectorized envs and computes the A2C gradient of its own rollout;
the gradients are averaged with one all-reduce of the flat gradient vector before clipping,
so every rank applies the same update to the same weights (and the same optimizer state):
the ranks stay identical without ever exchanging weights after the first broadcast. The
running normalization statistics are merged from all ranks' batches in the same way.
Finished episodes are gathered so that every rank (and rank 0's logs) sees all of them.

A collective on the CPU (gloo) is waited for in slices, so that this process's signal handlers
run meanwhile: once a stop is asked, another rank that has not joined within two update
periods (at least 5 s) is given up for lost, and the process ends at once (``leave``),
since the process group's teardown would wait for the collective until its timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from acrl.engines.signals import seconds_from_env
from acrl.errors import DistributedError, UserError

TIMEOUT_S = 300.0  # default of ACRL_DIST_TIMEOUT
WAIT_SLICE = timedelta(seconds=0.1)  # how long a signal can wait while a collective runs
FIRST_GRACE_S = 10.0  # before an update period is known: the first update warms up
MIN_GRACE_S = 5.0  # a rank evaluating or filming when the stop comes is busy for a while


class DistributedSync:
    """This process's place among the ranks, and the collectives A2C needs."""

    def __init__(self, rank: int, world_size: int, device: torch.device) -> None:
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.episode_slots = 1  # the most episodes one rollout can finish: n_envs * n_steps
        self._outbox: tuple[list[tuple[float, int]], bool] = ([], False)
        self._inbox: tuple[list[tuple[float, int]], bool] = ([], False)
        self._stop_requested: Callable[[], bool] = lambda: False
        self._last_update: float | None = None  # when the last gradient average finished
        self._longest_period = 0.0  # the longest time between two of them
        self.abandoned = False  # a collective another rank never joined is still pending

    @classmethod
    def from_torchrun(cls, device: str) -> DistributedSync:
        """Join the process group that torchrun's environment describes (gloo on CPU, nccl
        on CUDA)."""
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise UserError(
                "--distributed runs under torchrun, e.g. `torchrun --nproc-per-node 2 "
                "-m acrl train CartPole-v1 --distributed`"
            )
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        target = torch.device(device)
        if target.type == "cuda":
            target = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(target)
        if not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if target.type == "cuda" else "gloo",
                timeout=timedelta(seconds=seconds_from_env("ACRL_DIST_TIMEOUT", TIMEOUT_S)),
            )
        return cls(rank, world, target)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def listen(self, stop_requested: Callable[[], bool]) -> None:
        """Whether a stop has been asked (a signal): once it has, a collective that other
        ranks do not join within the grace fails instead of waiting for the timeout."""
        self._stop_requested = stop_requested

    def close(self) -> None:
        """Leave the group together: a rank that tears its connections down while another
        still uses them makes gloo abort that other rank."""
        if not dist.is_initialized() or self.abandoned:
            return
        with contextlib.suppress(RuntimeError):  # a peer already gone: nothing to wait for
            dist.barrier()
        dist.destroy_process_group()

    def leave(self, status: int) -> None:
        """End this process now with ``status`` (after a collective was abandoned: gloo's
        threads still wait for it, and the interpreter's exit would wait for them)."""
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    def grace(self) -> float:
        """How long after a stop another rank may take to join a collective: two of the
        longest update periods seen, at least MIN_GRACE_S (FIRST_GRACE_S before the first)."""
        if self._longest_period == 0.0:  # fewer than two updates so far
            return FIRST_GRACE_S
        return max(MIN_GRACE_S, 2.0 * self._longest_period)

    def _run(self, what: str, collective: Callable[..., Any], *args: Any) -> None:
        """Run ``collective(*args)``; a lost peer's error (a closed connection, a timeout)
        becomes one clear line. On the CPU it runs asynchronously and is waited for in
        slices between which signal handlers run; once a stop has been asked, one the others
        have not joined within the grace is given up. (An nccl collective does not hold the
        CPU, which its synchronous call only orders on the GPU's stream.)"""
        try:
            if self.device.type == "cuda":
                collective(*args)
            else:
                self._wait_in_slices(collective(*args, async_op=True), what)
        except DistributedError:
            raise
        except RuntimeError as exc:  # gloo and nccl raise RuntimeError subclasses
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = re.sub(r"^\[[^\]]*\]\s*", "", text).split(". ")[0][:160]
            raise self._lost(what, reason) from None

    def _wait_in_slices(self, work: Any, what: str) -> None:
        stopped_at: float | None = None
        try:
            while True:
                try:
                    work.wait(timeout=WAIT_SLICE)
                    return
                except RuntimeError:
                    if work.is_completed():  # it failed, rather than still running
                        raise
                now = time.monotonic()
                if stopped_at is None:
                    stopped_at = now if self._stop_requested() else None
                elif now - stopped_at > (grace := self.grace()):
                    self.abandoned = True
                    raise self._lost(what, f"none joined within {grace:.1f} s of the stop")
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, however far the others are
            self.abandoned = not work.is_completed()
            raise

    def _lost(self, what: str, reason: str) -> DistributedError:
        return DistributedError(
            f"rank {self.rank} of {self.world_size}: {what} failed, another rank has "
            f"stopped ({reason})"
        )

    # ---- the collectives ----------------------------------------------------------------
    def broadcast_model(self, agent: Any) -> None:
        """Give every rank rank 0's weights and normalization statistics."""
        for tensor in (agent.params.vector.data, *agent.policy.buffers()):
            self._run("the initial broadcast", dist.broadcast, tensor, 0)

    def post(self, episodes: list[tuple[float, int]], stop: bool) -> None:
        """What this rank sends with its next gradient: its finished episodes and whether it
        wants to stop."""
        self._outbox = (episodes, stop)

    def average_gradients(self, grad: Tensor) -> None:
        """In place: the mean of every rank's gradient vector. The same all-reduce carries
        the posted episodes (each rank writes its own slot of a zeroed block, so the sum is
        a gather) and the stop flags: one collective per update (a gloo round trip costs
        about a millisecond on a small VM; three cost three)."""
        episodes, stop = self._outbox
        width = self.episode_slots  # the same on every rank: the buffers must match
        assert len(episodes) <= width, "more episodes than steps in a rollout"
        block = torch.zeros(self.world_size, 1 + 2 * width, dtype=grad.dtype, device=grad.device)
        block[self.rank, 0] = len(episodes)
        if episodes:
            values = torch.tensor(episodes, dtype=grad.dtype).T.reshape(-1)
            block[self.rank, 1 : 1 + len(episodes)] = values[: len(episodes)]
            block[self.rank, 1 + width : 1 + width + len(episodes)] = values[len(episodes) :]
        flag = torch.tensor([float(stop)], dtype=grad.dtype, device=grad.device)
        buffer = torch.cat([grad, block.reshape(-1), flag])
        self._run("averaging gradients", dist.all_reduce, buffer)
        now = time.monotonic()
        if self._last_update is not None:
            self._longest_period = max(self._longest_period, now - self._last_update)
        self._last_update = now
        grad.copy_(buffer[: grad.numel()]).div_(self.world_size)
        block = buffer[grad.numel() : -1].reshape(self.world_size, 1 + 2 * width).cpu()
        received: list[tuple[float, int]] = []
        for row in block.tolist():
            count = int(row[0])
            received.extend(
                (float(r), int(n))
                for r, n in zip(row[1 : 1 + count], row[1 + width : 1 + width + count], strict=True)
            )
        self._inbox = (received, bool(buffer[-1].item() > 0))

    def take(self) -> tuple[list[tuple[float, int]], bool]:
        """Every rank's episodes of this update (rank by rank), and whether any rank asked
        to stop: the same on every rank."""
        return self._inbox

    def sum(self, values: Tensor) -> Tensor:
        """The element-wise sum over ranks (for the normalization statistics)."""
        out = values.to(self.device).clone()
        self._run("merging normalization statistics", dist.all_reduce, out)
        return out.to(values.device)

    def check_identical(self, agent: Any) -> str:
        """Print this rank's digest of its weights and normalization statistics, and check
        that every rank holds the same (they must: same start, same averaged gradient, same
        optimizer, same merged statistics); the digest."""
        state = [agent.params.vector, *agent.policy.buffers()]  # weights, normalization
        data = b"".join(t.detach().cpu().numpy().tobytes() for t in state)
        digest = hashlib.sha256(data).hexdigest()[:16]
        print(f"rank {self.rank} of {self.world_size}: weights sha256 {digest}", flush=True)
        mine = torch.tensor([int(digest, 16) - 2**63], dtype=torch.int64, device=self.device)
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        self._run("comparing weights", dist.all_gather, parts, mine)
        if any(int(p.item()) != int(mine.item()) for p in parts):
            raise DistributedError(f"rank {self.rank}: the ranks' weights differ after training")
        return digest

    def attach(self, agent: Any) -> None:
        """Make the agent's normalization statistics merge every rank's batches."""
        normalization = agent.policy.normalization
        if normalization is None:
            return
        for rms in normalization.statistics().values():
            rms.reduce = self.sum
