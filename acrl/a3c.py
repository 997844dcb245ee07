"""Asynchronous advantage actor-critic (A3C): Hogwild workers around a shared model.

Worker processes collect rollouts and step a shared optimizer (acrl.a3c_worker); the main
process does not train: it shows progress, logs what workers report and writes
checkpoints from the shared model. A failing worker stops the whole run. With
``backend="ray"`` the workers are Ray actors and this process applies their gradients
(acrl.a3c_ray); everything else (metrics, checkpoints, callbacks) is the same.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import queue as queue_lib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from acrl.a3c_ray import RAY_MISSING, learn_on_ray
from acrl.a3c_worker import Shared, WorkerSpec, run_worker, stop_handlers_restored
from acrl.agent import Agent
from acrl.config import ADAM_BETAS, A2CConfig
from acrl.envs import make_vec_env
from acrl.errors import UserError, WorkerError
from acrl.metrics import UpdateStats
from acrl.progress import ProgressBar
from acrl.seeding import worker_seeds
from acrl.shared import share_model_and_optimizer

Callback = Callable[["A3C"], "bool | None"]
SHUTDOWN_SECONDS = 5.0
BACKENDS = ("processes", "ray")


class A3C(Agent):
    """Asynchronous advantage actor-critic with the hyperparameter names of A2C.

    ``env`` is an env id (each worker makes its own ``n_envs`` copies). ``n_workers``
    defaults to the number of cores; ``lock_updates`` serializes optimizer steps
    (default: lock-free Hogwild). ``backend="ray"`` runs the workers as Ray actors, on a
    local Ray instance or the cluster at ``ray_address``; Ray restarts a worker whose
    process dies up to ``worker_restarts`` times.
    """

    algo = "a3c"
    default_device = "cpu"

    def __init__(
        self,
        policy: str,
        env: str,
        learning_rate: Any = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = True,
        adam_betas: tuple[float, float] = ADAM_BETAS,
        normalize_advantage: bool = False,
        policy_kwargs: Mapping[str, Any] | None = None,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        n_workers: int | None = None,
        n_envs: int = 1,
        lock_updates: bool = False,
        backend: str = "processes",
        ray_address: str | None = None,
        worker_restarts: int = 3,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        verbose: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        vectorization: str = "auto",
        log_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(env, str):
            raise ValueError("A3C needs an env id: each worker process makes its own envs")
        config = A2CConfig(
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            rms_prop_eps=rms_prop_eps,
            use_rms_prop=use_rms_prop,
            adam_betas=adam_betas,
            normalize_advantage=normalize_advantage,
            policy_kwargs=dict(policy_kwargs or {}),
            normalize_obs=normalize_obs,
            normalize_reward=normalize_reward,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
        )
        probe = make_vec_env(env, 1, env_kwargs=env_kwargs, vectorization=vectorization)
        spaces = probe.single_observation_space, probe.single_action_space
        probe.close()
        super().__init__(
            policy,
            None,
            config,
            n_envs,
            seed,
            device,
            verbose,
            env_kwargs,
            vectorization,
            observation_space=spaces[0],
            action_space=spaces[1],
        )
        self.env_id = env
        self._init_engine(
            log_dir=log_dir,
            n_workers=n_workers,
            lock_updates=lock_updates,
            backend=backend,
            ray_address=ray_address,
            worker_restarts=worker_restarts,
        )
        if backend == "ray" and importlib.util.find_spec("ray") is None:
            raise UserError(RAY_MISSING)

    def _init_engine(
        self,
        log_dir: str | Path | None = None,
        n_workers: int | None = None,
        lock_updates: bool = False,
        backend: str = "processes",
        ray_address: str | None = None,
        worker_restarts: int = 3,
    ) -> None:
        super()._init_engine(log_dir)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "ray" and lock_updates:
            raise ValueError(
                "lock_updates is a setting of the processes backend: on Ray the driver "
                "applies the gradients one at a time"
            )
        if ray_address is not None and backend != "ray":
            raise ValueError("ray_address joins a Ray cluster: it needs backend='ray'")
        if (
            isinstance(worker_restarts, bool)
            or not isinstance(worker_restarts, int)
            or worker_restarts < 0
        ):
            raise ValueError(f"worker_restarts must be an integer >= 0, got {worker_restarts!r}")
        if n_workers is None:
            n_workers = os.cpu_count() or 1
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if self.device.type != "cpu":
            raise ValueError("A3C runs on the CPU: Hogwild shares CPU memory between processes")
        try:
            pickle.dumps(self.config.learning_rate)
        except Exception:
            raise ValueError(
                "A3C needs a picklable learning_rate (a number, 'lin_X' or a module-level "
                "function): workers are separate processes"
            ) from None
        self.n_workers = n_workers
        self.lock_updates = bool(lock_updates)
        self.backend = backend
        self.ray_address = ray_address  # not saved: where the cluster is is not the model's
        self.worker_restarts = worker_restarts  # Ray backend only
        self.workers: list[Any] = []
        self._last_advantages: list[np.ndarray] = []  # of each worker's last rollout

    @classmethod
    def _engine_kwargs(cls, meta: dict[str, Any]) -> dict[str, Any]:
        return dict(meta.get("a3c", {}))

    def _meta(self) -> dict[str, Any]:
        meta = super()._meta()
        meta["a3c"] = {
            "n_workers": self.n_workers,
            "lock_updates": self.lock_updates,
            "backend": self.backend,
            "worker_restarts": self.worker_restarts,
        }
        return meta

    def _hparams(self) -> dict[str, Any]:
        return {**super()._hparams(), "n_workers": self.n_workers, "backend": self.backend}

    def learn(
        self,
        total_timesteps: int,
        callback: Callback | None = None,
        log_interval: int = 100,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        checkpoint_every: int | None = None,
    ) -> A3C:
        """Train with ``n_workers`` workers until ``total_timesteps`` global steps.

        ``callback(model)`` runs in the main process whenever reports arrive; returning
        False stops all workers. Raises WorkerError if a worker fails.
        """
        start, _ = self._begin_learn(total_timesteps, reset_num_timesteps)
        spec = WorkerSpec(
            env_id=str(self.env_id),
            env_kwargs=dict(self.env_kwargs),
            vectorization=self.vectorization,
            n_envs=self.n_envs,
            config=self.config,
            observation_space=self.observation_space,
            action_space=self.action_space,
            start_timesteps=start,
            total_timesteps=total_timesteps,
            lock_updates=self.lock_updates,
            seeds=worker_seeds(self.seed, self.num_updates, self.n_workers),
        )
        bar = ProgressBar(total_timesteps, enabled=progress_bar)
        checkpoints = self._checkpointer(checkpoint_every)
        self._last_advantages = []
        try:
            if self.backend == "ray":
                advantages = learn_on_ray(self, spec, log_interval, bar, checkpoints, callback)
                self._last_advantages = [advantages]
            else:
                self._learn_in_processes(spec, bar, log_interval, checkpoints, callback)
        finally:
            bar.close()
        if self.metrics is not None and self.metrics.has_pending:
            self._write_metrics()
        if self._last_advantages:
            self._save_advantages(np.concatenate(self._last_advantages))
        return self

    def _learn_in_processes(
        self,
        spec: WorkerSpec,
        bar: ProgressBar,
        log_interval: int,
        checkpoints: Any,
        callback: Callback | None,
    ) -> None:
        """The processes backend: Hogwild workers around the model in shared memory."""
        ctx = mp.get_context("spawn")
        optimizer_state = share_model_and_optimizer(self.policy, self.optimizer)
        shared = Shared(
            policy=self.policy,
            params=self.params.vector,
            optimizer_state=optimizer_state,
            timesteps=ctx.Value("q", spec.start_timesteps, lock=False),
            counter_lock=ctx.Lock(),
            stop=ctx.Event(),
            lock=ctx.Lock(),
            queue=ctx.Queue(),
        )
        self.workers = [
            ctx.Process(
                target=run_worker, args=(rank, spec, shared, os.getpid()), name=f"acrl-a3c-{rank}"
            )
            for rank in range(self.n_workers)
        ]
        try:
            # SIGINT and SIGTERM ignored by the workers from their start, so that a signal
            # sent to the whole process group (Ctrl-C in a terminal, a container stop)
            # reaches only this process, which stops them, even while a worker is still
            # importing its modules
            with stop_handlers_restored(ignore=True):
                for process in self.workers:
                    process.start()
            self._monitor(shared, bar, log_interval, checkpoints, callback)
        finally:
            shared.stop.set()
            self._shut_down_workers(shared)
            self.num_timesteps = min(shared.timesteps.value, spec.end_timesteps)

    def _monitor(
        self,
        shared: Shared,
        bar: ProgressBar,
        log_interval: int,
        checkpoints: Any,
        callback: Callback | None,
    ) -> None:
        """Aggregate reports until every worker is done; raise on a worker failure."""
        assert self.metrics is not None
        finished: set[int] = set()
        self._last_advantages = []
        shown = self.num_timesteps
        next_row = self.num_updates + log_interval
        while len(finished) < len(self.workers):
            try:
                message = shared.queue.get(timeout=0.1)
            except queue_lib.Empty:
                message = None
            self.num_timesteps = shared.timesteps.value  # episodes below end by this count
            if message is not None:
                kind, rank, *payload = message
                if kind == "error":
                    raise WorkerError(f"worker {rank} failed: {payload[0]}")
                if kind == "done":
                    finished.add(rank)
                    self._last_advantages.append(payload[0])
                    continue
                stats, episodes = payload
                for values in stats:
                    self.metrics.record(UpdateStats.from_floats(values))
                self.num_updates += len(stats)
                self._add_episodes(episodes)
            self._check_alive(shared, finished)
            bar.advance(self.num_timesteps - shown, self.recent_mean_return)
            shown = self.num_timesteps
            # a row per log interval, never two at one step count (reports can arrive after
            # the counter they were counted in)
            if self.num_updates >= next_row and self.num_timesteps > self.metrics.last_timesteps:
                self._write_metrics()
                next_row = self.num_updates + log_interval
            checkpoints.maybe_save(self.num_timesteps)
            if message is not None and callback is not None and callback(self) is False:
                shared.stop.set()

    def _check_alive(self, shared: Shared, finished: set[int]) -> None:
        """Raise if a worker ended without saying it was done, with its error if it sent one."""
        # A worker that exits 0 has queued its "done" message; only a failure is checked here.
        dead = [r for r, p in enumerate(self.workers) if r not in finished and p.exitcode]
        if not dead:
            return
        deadline = time.monotonic() + 1.0  # its last message may still be in the queue
        while time.monotonic() < deadline:
            try:
                kind, rank, *payload = shared.queue.get(timeout=0.1)
            except queue_lib.Empty:
                continue
            if kind == "error":
                raise WorkerError(f"worker {rank} failed: {payload[0]}")
        code = self.workers[dead[0]].exitcode
        raise WorkerError(f"worker {dead[0]} exited with code {code} without reporting an error")

    def _shut_down_workers(self, shared: Shared) -> None:
        """Stop every worker, kill any that does not stop, and leave no process behind."""
        started = [p for p in self.workers if p.pid is not None]
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while any(p.is_alive() for p in started) and time.monotonic() < deadline:
            _drain(shared.queue)  # a worker blocked on a full queue could not exit
            time.sleep(0.02)
        killed = False
        for process in started:
            if process.is_alive():
                process.kill()
                killed = True
            process.join(timeout=SHUTDOWN_SECONDS)
        if not killed:  # a killed worker may have left half a message: do not read it
            _drain(shared.queue)
        shared.queue.cancel_join_thread()
        shared.queue.close()


def _drain(queue: Any) -> None:
    try:
        while True:
            queue.get_nowait()
    except (queue_lib.Empty, OSError, ValueError):
        pass
