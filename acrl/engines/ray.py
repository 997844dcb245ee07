"""A3C on Ray: worker actors compute gradients, the driver applies them as they arrive.

Each worker (acrl.engines.ray_worker) is a Ray actor with its own envs, seed stream and
local model. Asked for a gradient at given weights, it loads them (with the normalization
statistics), collects n steps and computes the clipped A2C gradient with
``compute_gradients``, exactly as the process runtime and A2C do. The driver is the
parameter server: it applies each gradient as soon as it arrives with the model's one
optimizer (so the optimizer state is shared by construction) and hands that worker the
fresh weights. Each gradient is thus computed on
weights at most ``n_workers - 1`` updates old, as in A3C, and updates are applied one at
a time (no Hogwild races, so ``lock_updates`` does not apply).

Normalization: a worker reports the moments of the observations and returns it added to
its copy of the statistics; the driver merges them into the model's and sends them back
with the weights.

Failures: a worker whose process dies (killed, out of memory, its node lost) is restarted
by Ray (actor restarts, ``worker_restarts`` times per worker) with a fresh seed stream, and
the rollout it owed is asked of the new process (Ray's task retries). One more death, an
exception in a worker (a broken env, a non-finite loss), workers that do not start in time
or no gradient at all for ``ACRL_RAY_TIMEOUT`` seconds end the run with WorkerError: never
a hang.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Any

import numpy as np
import torch

from acrl.engines.ray_worker import GradientReport, GradientWorker
from acrl.engines.signals import STOP_GRACE_SECONDS, seconds_from_env, stop_handlers_restored
from acrl.errors import UserError, WorkerError
from acrl.learner.optim import VectorOptimizer, optimizer_step
from acrl.learner.reports import Bookkeeping, UpdateReport, UpdateStats
from acrl.learner.worker import WorkerSpec
from acrl.model.flat_params import FlatParameters
from acrl.model.policy import ActorCritic

START_TIMEOUT = 120.0  # seconds for all workers to be up (a cluster may need to find CPUs)
WAIT_SECONDS = 0.1  # the driver's poll interval while no gradient has arrived
STALL_SECONDS = 300.0  # default of ACRL_RAY_TIMEOUT: longest wait for any gradient
RAY_MISSING = "the Ray runtime needs Ray: pip install 'acrl[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (UserError) if ``address`` is HOST:PORT and nothing answers there: Ray itself
    retries for minutes. Other forms (``auto``, ``ray://...``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or "/" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def connect(ray: Any, address: str | None, n_workers: int) -> bool:
    """Join the Ray cluster at ``address``, or start a local instance on loopback; True if
    this call started Ray (the caller then shuts it down). A running Ray is used as it is."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = dict(
        include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
    )
    if address is None:
        cpus = max(os.cpu_count() or 1, n_workers)  # as many workers as the processes backend
        options.update(address="local", num_cpus=cpus, _node_ip_address="127.0.0.1")
    else:
        check_reachable(address)
        options.update(address=address)
    # ray.init replaces the SIGINT and SIGTERM handlers with its own (which end the process
    # at once): ours are put back, so that a stop signal still stops after a whole update
    with stop_handlers_restored():
        try:
            ray.init(**options)
        except ImportError as exc:  # ray://ADDR needs Ray's client: pip install 'ray[client]'
            raise UserError(f"cannot join {address}: {exc}") from None
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = "a local Ray instance" if address is None else f"the Ray cluster at {address}"
            raise UserError(f"cannot start or join {where}: {first}") from None
    return True


def _summary(exc: BaseException) -> str:
    """One line: the worker's own exception if Ray wraps one."""
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class RayEngine:
    """The parameter server: dispatches rollouts to Ray actors and applies their gradients to
    ``params`` with ``optimizer``, one at a time, as they arrive."""

    def __init__(
        self,
        policy: ActorCritic,
        params: FlatParameters,
        optimizer: VectorOptimizer,
        n_workers: int,
        worker_restarts: int,
        address: str | None,
    ) -> None:
        self.policy, self.params, self.optimizer = policy, params, optimizer
        self.n_workers, self.worker_restarts, self.address = n_workers, worker_restarts, address

    def run(self, spec: WorkerSpec, updates: int, bookkeeping: Bookkeeping) -> np.ndarray:
        """Train until ``spec.end_timesteps`` or a stop; the advantages of the workers' last
        rollouts."""
        ray = import_ray()
        started_ray = connect(ray, self.address, self.n_workers)
        driver = None
        try:
            driver = _Driver(self, spec, ray, updates)
            driver.wait_until_started()
            for rank in range(self.n_workers):
                driver.dispatch(rank)
            stop_deadline = None
            while driver.pending:  # after a stop, the gradients under way are still applied
                if stop_deadline is None and bookkeeping.stop_requested():
                    driver.stopping = True
                    stop_deadline = time.monotonic() + STOP_GRACE_SECONDS
                if stop_deadline is not None and time.monotonic() > stop_deadline:
                    break  # gradients of workers that do not answer in time are dropped
                arrived = driver.next_report()
                if arrived is None:
                    continue
                rank, lr, report = arrived
                driver.apply(lr, report)
                stats = [UpdateStats.from_floats(report.stats)]
                if not bookkeeping.after_update(
                    UpdateReport(driver.timesteps, stats, report.episodes)
                ):
                    driver.stopping = True
                driver.dispatch(rank)
            return driver.last_advantages()
        finally:
            try:
                if driver is not None:
                    driver.shut_down()
            finally:
                if started_ray:
                    ray.shutdown()


class _Driver:
    """The state of one run of the parameter server: tasks under way, worker processes."""

    def __init__(self, engine: RayEngine, spec: WorkerSpec, ray: Any, updates: int) -> None:
        self.engine, self.spec, self.ray = engine, spec, ray
        self.end = spec.end_timesteps
        self.timesteps = spec.start_timesteps
        self.updates = updates
        self.pending: dict[Any, tuple[int, float]] = {}  # task -> (worker, learning rate)
        self.pids: list[int] = []  # of each worker's process
        self.restarts = 0  # restarts seen so far, all workers
        self.stopping = False  # no more rollouts once set
        self.stall_seconds = seconds_from_env("ACRL_RAY_TIMEOUT", STALL_SECONDS)
        self.last_report = time.monotonic()
        # A task under way when its worker dies is run again by the restarted worker, and
        # tasks sent while it restarts wait for it (-1: as long as restarts are left).
        remote = ray.remote(GradientWorker).options(
            num_cpus=1, max_restarts=engine.worker_restarts, max_task_retries=-1
        )
        self.actors = [remote.remote(rank, spec) for rank in range(engine.n_workers)]

    def wait_until_started(self) -> None:
        exceptions = self.ray.exceptions
        try:
            self.pids = self.ray.get([a.ready.remote() for a in self.actors], timeout=START_TIMEOUT)
        except exceptions.GetTimeoutError:
            cpus = self.ray.cluster_resources().get("CPU", 0)
            raise WorkerError(
                f"{self.engine.n_workers} Ray workers did not start within {START_TIMEOUT:.0f} s "
                f"(each needs one CPU; the cluster has {cpus:g})"
            ) from None
        except exceptions.RayError as exc:
            raise WorkerError(f"a Ray worker could not start: {_summary(exc)}") from None

    def dispatch(self, rank: int) -> None:
        """Ask worker ``rank`` for a gradient at the current weights, if steps are left."""
        steps = self.spec.steps_per_update
        if self.stopping or self.timesteps + steps * len(self.pending) >= self.end:
            return
        lr = self.spec.config.lr_schedule(1.0 - self.timesteps / self.end)
        weights = self.engine.params.vector.detach().numpy()  # serialized by .remote(): a copy
        buffers = [b.numpy() for b in self.engine.policy.buffers()]
        task = self.actors[rank].compute.remote(weights, buffers, lr, self.updates + 1)
        self.pending[task] = (rank, lr)

    def next_report(self) -> tuple[int, float, GradientReport] | None:
        """The next gradient to arrive (None after WAIT_SECONDS without one)."""
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_SECONDS)
        if not ready:
            silent = time.monotonic() - self.last_report
            if silent > self.stall_seconds:
                raise WorkerError(
                    f"no gradient from any Ray worker for {silent:.0f} s "
                    "(ACRL_RAY_TIMEOUT); the run stops"
                )
            return None
        self.last_report = time.monotonic()
        rank, lr = self.pending.pop(ready[0])
        exceptions = self.ray.exceptions
        try:
            report: GradientReport = self.ray.get(ready[0])
        except exceptions.RayTaskError as exc:
            raise WorkerError(f"worker {rank} failed: {_summary(exc)}") from None
        except exceptions.RayActorError as exc:  # Ray restarts exhausted, or it cannot start
            restarts = self.engine.worker_restarts
            why = getattr(exc, "error_msg", "") or ""
            if "__init__" in why or "creation task" in why:
                raise WorkerError(f"worker {rank} could not start again: {_summary(exc)}") from None
            raise WorkerError(
                f"worker {rank}'s process died and it has no restart left "
                f"(worker_restarts={restarts})"
            ) from None
        except exceptions.RayError as exc:  # e.g. its result lost with a node
            raise WorkerError(f"worker {rank}: {_summary(exc)}") from None
        if report.pid != self.pids[rank]:
            self.pids[rank] = report.pid
            self.restarts += 1
            print(
                f"acrl: Ray restarted worker {rank} after its process died "
                f"({self.restarts} restart{'s' if self.restarts > 1 else ''} so far)",
                file=sys.stderr,
                flush=True,
            )
        return rank, lr, report

    def apply(self, lr: float, report: GradientReport) -> None:
        """One optimizer step of the model along a worker's gradient; merge its statistics."""
        engine = self.engine
        engine.params.grad.numpy()[:] = report.grad
        optimizer_step(engine.optimizer, lr)
        normalization = engine.policy.normalization
        for name, sums in report.moments:
            assert normalization is not None
            getattr(normalization, name).merge_sums(torch.tensor(sums))
        self.timesteps += report.steps
        self.updates += 1

    def last_advantages(self) -> np.ndarray:
        """The advantages of every worker's last rollout (of those that answer within 10 s)."""
        tasks = [a.last_advantages.remote() for a in self.actors]
        ready, _ = self.ray.wait(tasks, num_returns=len(tasks), timeout=10.0)
        parts = []
        for task in ready:
            try:
                parts.append(self.ray.get(task))
            except self.ray.exceptions.RayError:  # not essential: the run is done
                continue
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def shut_down(self) -> None:
        for actor in self.actors:  # drops the tasks still under way
            self.ray.kill(actor, no_restart=True)
