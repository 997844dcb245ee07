"""Synchronous A2C over several processes with ``torch.distributed`` (launched by torchrun).

Every rank runs its own vectorized envs and computes the A2C gradient of its own rollout;
the gradients are averaged with one all-reduce of the flat gradient vector before clipping,
so every rank applies the same update to the same weights (and the same optimizer state):
the ranks stay identical without ever exchanging weights after the first broadcast. The
running normalization statistics are merged from all ranks' batches in the same way.
Finished episodes are gathered so that every rank (and rank 0's logs) sees all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from acrl.errors import DistributedError, UserError

TIMEOUT_S = float(os.environ.get("ACRL_DIST_TIMEOUT", "300"))


class DistributedSync:
    """This process's place among the ranks, and the collectives A2C needs."""

    def __init__(self, rank: int, world_size: int, device: torch.device) -> None:
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.episode_slots = 1  # the most episodes one rollout can finish: n_envs * n_steps
        self._outbox: tuple[list[tuple[float, int]], bool] = ([], False)
        self._inbox: tuple[list[tuple[float, int]], bool] = ([], False)

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
                timeout=timedelta(seconds=TIMEOUT_S),
            )
        return cls(rank, world, target)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Leave the group together: a rank that tears its connections down while another
        still uses them makes gloo abort that other rank."""
        if not dist.is_initialized():
            return
        with contextlib.suppress(RuntimeError):  # a peer already gone: nothing to wait for
            dist.barrier()
        dist.destroy_process_group()

    @contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """Turn a lost peer's error (a closed connection, a timeout) into one clear line."""
        try:
            yield
        except RuntimeError as exc:  # gloo and nccl raise RuntimeError subclasses
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = re.sub(r"^\[[^\]]*\]\s*", "", text).split(". ")[0][:160]
            raise DistributedError(
                f"rank {self.rank} of {self.world_size}: {what} failed, another rank has "
                f"stopped ({reason})"
            ) from None

    # ---- the collectives ----------------------------------------------------------------
    def broadcast_model(self, agent: Any) -> None:
        """Give every rank rank 0's weights and normalization statistics."""
        with self._collective("the initial broadcast"):
            dist.broadcast(agent.params.vector.data, src=0)
            for buffer in agent.policy.buffers():
                dist.broadcast(buffer, src=0)

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
        with self._collective("averaging gradients"):
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
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
        with self._collective("merging normalization statistics"):
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
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
        with self._collective("comparing weights"):
            dist.all_gather(parts, mine)
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
