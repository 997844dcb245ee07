"""A3C on Ray: worker actors compute gradients, the driver applies them as they arrive.

Each worker is a Ray actor with its own envs, seed stream and local model. Asked for a
gradient at given weights, it loads them (with the normalization statistics), collects n
steps and computes the clipped A2C gradient with ``compute_gradients``, exactly as the
process backend and A2C do. The driver is the parameter server: it applies each gradient
as soon as it arrives with the model's one optimizer (so the optimizer state is shared by
construction) and hands that worker the fresh weights. Each gradient is thus computed on
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from acrl.a2c import compute_gradients, raw_advantages
from acrl.a3c_worker import WorkerSpec, stop_handlers_restored
from acrl.envs import make_vec_env
from acrl.errors import UserError, WorkerError
from acrl.flat_params import FlatParameters
from acrl.metrics import UpdateStats
from acrl.normalization import make_normalization
from acrl.numpy_loss import NumpyLoss
from acrl.policy import ActorCritic, flat_obs_dim
from acrl.progress import ProgressBar
from acrl.rollout import Rollout, RolloutCollector
from acrl.seeding import set_random_seed

if TYPE_CHECKING:
    from acrl.a3c import A3C, Callback

START_TIMEOUT = 120.0  # seconds for all workers to be up (a cluster may need to find CPUs)
WAIT_SECONDS = 0.1  # the driver's poll interval while no gradient has arrived
STALL_SECONDS = 300.0  # default of ACRL_RAY_TIMEOUT: longest wait for any gradient
RAY_MISSING = "the Ray backend needs Ray: pip install 'acrl[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


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
    """One worker's envs and local model (a plain class: ``ray.remote`` makes it an actor).

    Setting up cannot fail: an error there (an env that cannot be made) is kept and raised
    by the first ``compute``, so that the driver reports it instead of Ray restarting an
    actor that will never start.
    """

    def __init__(self, rank: int, spec: WorkerSpec) -> None:
        torch.set_num_threads(1)
        self.spec = spec
        self.rank = rank
        self.error: Exception | None = None
        self.rollout: Rollout | None = None
        self.moments: list[tuple[str, np.ndarray]] = []
        seeds = spec.seeds[rank]
        if _reconstructed():  # not the episodes of the process it replaces
            seeds = fresh_seeds(seeds, os.getpid())
        try:
            self._set_up(*seeds)
        except Exception as exc:
            self.error = exc

    def _set_up(self, torch_seed: int, env_seed: int) -> None:
        spec, config = self.spec, self.spec.config
        set_random_seed(torch_seed)
        self.env = make_vec_env(
            spec.env_id,
            spec.n_envs,
            seed=env_seed,
            env_kwargs=spec.env_kwargs,
            vectorization=spec.vectorization,
        )
        obs_dim = flat_obs_dim(spec.observation_space)
        normalization = make_normalization(obs_dim, config.normalize_obs, config.normalize_reward)
        for name in ("obs_rms", "ret_rms"):
            rms = getattr(normalization, name, None)
            if rms is not None:
                rms.reduce = self._recorder(name)
        self.policy = ActorCritic(
            spec.observation_space, spec.action_space, config.policy_config, normalization
        )
        self.params = FlatParameters(self.policy)
        self.numpy_loss = NumpyLoss.for_policy(self.policy)
        self.buffers = list(self.policy.buffers())
        self.collector = RolloutCollector(
            self.env,
            self.policy,
            config.n_steps,
            torch.device("cpu"),
            env_seed,
            config.gamma,
            sde_sample_freq=config.sde_sample_freq,
        )

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
        # Ray hands over read-only arrays: copy them in with NumPy (torch would warn)
        self.params.vector.detach().numpy()[:] = weights
        for mine, theirs in zip(self.buffers, buffers, strict=True):
            mine.numpy()[...] = theirs
        self.moments = []
        self.rollout = self.collector.collect()
        config = self.spec.config
        stats = compute_gradients(
            self.policy, self.params, self.rollout, config, lr, update, numpy_loss=self.numpy_loss
        )
        if self.policy.normalization is not None:
            self.policy.normalization.update_obs(self.rollout.obs)
        return GradientReport(
            grad=self.params.grad.numpy().copy(),
            stats=stats.as_floats(),
            episodes=self.collector.episodes.drain(),
            steps=config.n_steps * self.spec.n_envs,
            pid=os.getpid(),
            moments=self.moments,
        )

    def last_advantages(self) -> np.ndarray:
        if self.rollout is None:
            return np.zeros(0, np.float32)
        return raw_advantages(self.rollout, self.spec.config)


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


class RayDriver:
    """The parameter server of one ``learn()``: dispatches rollouts, applies gradients."""

    def __init__(self, model: A3C, spec: WorkerSpec, ray: Any) -> None:
        self.model, self.spec, self.ray = model, spec, ray
        self.end = spec.end_timesteps
        self.pending: dict[Any, tuple[int, float]] = {}  # task -> (worker, learning rate)
        self.pids: list[int] = []  # of each worker's process
        self.restarts = 0  # restarts seen so far, all workers
        self.stopping = False  # no more rollouts once set
        self.stall_seconds = float(os.environ.get("ACRL_RAY_TIMEOUT", STALL_SECONDS))
        self.last_report = time.monotonic()
        # A task under way when its worker dies is run again by the restarted worker, and
        # tasks sent while it restarts wait for it (-1: as long as restarts are left).
        remote = ray.remote(GradientWorker).options(
            num_cpus=1, max_restarts=model.worker_restarts, max_task_retries=-1
        )
        self.actors = [remote.remote(rank, spec) for rank in range(model.n_workers)]

    def wait_until_started(self) -> None:
        exceptions = self.ray.exceptions
        try:
            self.pids = self.ray.get([a.ready.remote() for a in self.actors], timeout=START_TIMEOUT)
        except exceptions.GetTimeoutError:
            cpus = self.ray.cluster_resources().get("CPU", 0)
            raise WorkerError(
                f"{self.model.n_workers} Ray workers did not start within {START_TIMEOUT:.0f} s "
                f"(each needs one CPU; the cluster has {cpus:g})"
            ) from None
        except exceptions.RayError as exc:
            raise WorkerError(f"a Ray worker could not start: {_summary(exc)}") from None

    def dispatch(self, rank: int) -> None:
        """Ask worker ``rank`` for a gradient at the current weights, if steps are left."""
        model = self.model
        steps = self.spec.config.n_steps * self.spec.n_envs
        if self.stopping or model.num_timesteps + steps * len(self.pending) >= self.end:
            return
        lr = self.spec.config.lr_schedule(1.0 - model.num_timesteps / self.end)
        weights = model.params.vector.detach().numpy()  # serialized by .remote(): a copy
        buffers = [b.numpy() for b in model.policy.buffers()]
        task = self.actors[rank].compute.remote(weights, buffers, lr, model.num_updates + 1)
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
            restarts = self.model.worker_restarts
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
        model = self.model
        model.params.grad.numpy()[:] = report.grad
        for group in model.optimizer.param_groups:
            group["lr"] = lr
        model.optimizer.step()
        normalization = model.policy.normalization
        for name, sums in report.moments:
            assert normalization is not None
            getattr(normalization, name).merge_sums(torch.tensor(sums))

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


def learn_on_ray(
    model: A3C,
    spec: WorkerSpec,
    log_interval: int,
    bar: ProgressBar,
    checkpoints: Any,
    callback: Callback | None,
) -> np.ndarray:
    """Train ``model`` with Ray workers until ``spec.end_timesteps`` or a stop; the
    advantages of the workers' last rollouts."""
    ray = import_ray()
    started_ray = connect(ray, model.ray_address, model.n_workers)
    driver = None
    try:
        driver = RayDriver(model, spec, ray)
        driver.wait_until_started()
        for rank in range(model.n_workers):
            driver.dispatch(rank)
        next_row = model.num_updates + log_interval
        while driver.pending:  # after a stop, the gradients under way are still applied
            arrived = driver.next_report()
            if arrived is None:
                continue
            rank, lr, report = arrived
            driver.apply(lr, report)
            model.num_timesteps += report.steps
            model.num_updates += 1
            assert model.metrics is not None
            model.metrics.record(UpdateStats.from_floats(report.stats))
            model._add_episodes(report.episodes)
            bar.advance(report.steps, model.recent_mean_return)
            if model.num_updates >= next_row:
                model._write_metrics()
                next_row = model.num_updates + log_interval
            checkpoints.maybe_save(model.num_timesteps)
            if callback is not None and callback(model) is False:
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
