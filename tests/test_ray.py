"""A3C on Ray: a local Ray instance, worker actors, the driver as parameter server."""

import functools
import importlib.util
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from acrl import A3C
from acrl.algorithms.registry import load_model
from acrl.errors import UserError, WorkerError
from acrl.plotting.runs import read_columns
from acrl.run.eval_callback import read_evaluations
from tests.test_cli import acrl

pytest.importorskip("ray")

_BODIES = {}


def in_child_process(test):
    """Run the test's body in a fresh interpreter, so that the Ray driver it starts (and
    whatever Ray leaves behind after ``ray.shutdown``) never lives in pytest's process."""
    _BODIES[test.__name__] = test

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(_run_body, (test.__name__, args, kwargs))

    return wrapper


def _run_body(name, args, kwargs):
    return _BODIES[name](*args, **kwargs)


def _parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def ray_processes(prefix=b"ray::", anywhere=False, mine=True):
    """PIDs of live processes whose title starts with ``prefix`` (Ray names its workers
    ray::ClassName), or holds it anywhere; with ``mine``, only this test process's
    descendants (the local Ray instance it started), not another Ray on the machine."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read()
            with open(f"/proc/{entry}/status") as f:
                zombie = "zombie" in f.read()
            if not (prefix in title if anywhere else title.startswith(prefix)) or zombie:
                continue
            pid = int(entry)
            while mine and pid > 1 and pid != os.getpid():
                pid = _parent(pid)
        except OSError:
            continue
        if not mine or pid == os.getpid():
            pids.append(int(entry))
    return pids


def kill_workers_at(update):
    """A callback that kills every worker's process with SIGKILL at ``update``: one is busy
    with a rollout, the other waits for its next one."""
    killed = []

    def callback(model):
        if model.num_updates >= update and not killed:
            for pid in ray_processes(b"ray::GradientWorker"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    callback.killed = killed
    return callback


def no_ray_left(timeout=15.0):
    deadline = time.monotonic() + timeout
    while ray_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    return ray_processes() == []


@pytest.mark.slow
@in_child_process
def test_ray_a3c_lstm_solves_cue_recall_with_two_workers():
    """A3C on Ray learns (a feed-forward policy scores 0.5 here; the process runtime's
    CartPole test covers the preset): each Ray worker carries its envs' hidden states, the
    driver's model has none. A fixed budget, not an early stop: stopped the moment the
    training mean (or an evaluation) first said solved, the workers' in-flight gradient
    still lands, and one run in many then evaluated below 0.95 (solves take 2k-5k steps);
    a miss trains a second seed."""
    from tests.helpers import misses_until_a_seed_passes
    from tests.memory_envs import a3c_cue_recall_miss

    misses = misses_until_a_seed_passes(
        lambda seed: a3c_cue_recall_miss(seed, 12_000, runtime="ray")
    )
    assert not misses, "; ".join(misses)  # a feed-forward policy: 0.5 (test_recurrent.py)
    assert no_ray_left()


@in_child_process
def _kill_both_workers_mid_run():
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, n_envs=4, seed=0, runtime="ray")
    kill = kill_workers_at(update=20)
    start = time.monotonic()
    model.learn(12_000, callback=kill)
    assert len(kill.killed) == 2 and not set(kill.killed) & set(ray_processes())
    assert model.num_timesteps >= 12_000 and model.num_updates == model.num_timesteps // 20
    assert time.monotonic() - start < 120
    assert no_ray_left()


def test_killed_ray_workers_are_restarted_and_the_run_finishes(capfd):
    _kill_both_workers_mid_run()  # one busy with a rollout, the other waiting for its next
    err = capfd.readouterr().err
    assert "Ray restarted worker 0 after its process died" in err
    assert "Ray restarted worker 1 after its process died" in err


@in_child_process
def test_a_ray_worker_without_restarts_left_fails_the_run_cleanly():
    model = A3C(
        "MlpPolicy", "CartPole-v1", n_workers=2, n_envs=4, seed=0, runtime="ray", worker_restarts=0
    )
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"worker [01]'s process died and it has no restart"):
        model.learn(1_000_000, callback=kill_workers_at(update=10))
    assert time.monotonic() - start < 120
    assert no_ray_left()


def test_restarted_workers_draw_fresh_seeds():
    from acrl.engines.ray_worker import fresh_seeds

    seeds = (11, 22)
    assert fresh_seeds(seeds, 1234) == fresh_seeds(seeds, 1234)
    assert len({fresh_seeds(seeds, pid) for pid in range(100, 110)} | {seeds}) == 11


@in_child_process
def test_an_exception_in_a_ray_worker_ends_the_run_with_its_error():
    model = A3C("MlpPolicy", "tests.envs:acrl-tests/Broken-v0", n_workers=2, seed=0, runtime="ray")
    with pytest.raises(
        WorkerError, match="worker [01] failed: RuntimeError: the simulator exploded"
    ):
        model.learn(1_000_000)
    assert no_ray_left()


@in_child_process
def test_ray_workers_share_the_normalization_statistics(tmp_path):
    model = A3C(
        "MlpPolicy",
        "Pendulum-v1",
        n_workers=2,
        n_envs=2,
        n_steps=5,
        seed=0,
        runtime="ray",
        normalize_obs=True,
        normalize_reward=True,
        normalize_value_targets=True,
    )
    model.learn(4_000)
    stats = model.policy.normalization
    # Every observation of every applied rollout was merged into the model's statistics
    # once (a rollout that was not applied is not counted in either).
    assert float(stats.obs_rms.count) == pytest.approx(model.num_timesteps + 1e-4, abs=1e-9)
    assert 0 < float(stats.ret_rms.count) <= model.num_timesteps + 1e-4
    assert float(stats.value_rms.count) == pytest.approx(float(stats.ret_rms.count))
    # cos² + sin² = 1 bounds the first two variances' sum by 1 in any real data (the prior
    # would give 2); the angular velocity's spread depends on which rollouts were applied.
    assert float(stats.obs_rms.var[0] + stats.obs_rms.var[1]) <= 1.0 + 1e-6
    assert bool(stats.obs_rms.var.isfinite().all()) and float(stats.obs_rms.var[2]) > 0.0
    loaded = A3C.load(model.save(tmp_path / "pendulum"))
    assert loaded.runtime == "ray"
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    assert np.array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )


def test_cli_ray_run_writes_the_same_run_directory_and_resumes(tmp_path):
    run_dir = tmp_path / "ray"
    args = ["train", "CartPole-v1", "--algo", "a3c", "--runtime", "ray", "--workers", "2"]
    args += ["--n-envs", "4", "--timesteps", 4000, "--checkpoint-every", 1000]
    args += ["--log-interval", 5, "--run-dir", run_dir, "--no-progress"]
    args += ["--eval-every", 1500, "--eval-episodes", 2]  # the driver evaluates
    result = acrl(*args)
    assert result.returncode == 0, result.stderr
    evaluated = [r["timesteps"] for r in read_evaluations(run_dir / "evaluations.csv")]
    assert len(evaluated) == 2 and 1500 <= evaluated[0] < 3000 <= evaluated[1]
    assert (run_dir / "best_model.acrl").is_file()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["algo"] == "a3c" and config["runtime"] == "ray" and config["n_workers"] == 2
    model = load_model(run_dir)
    assert model.runtime == "ray" and model.num_timesteps >= 4000
    assert len(list((run_dir / "checkpoints").iterdir())) == 2
    steps = read_columns(run_dir / "metrics.csv")["timesteps"]
    assert len(steps) >= 5 and np.all(np.diff(steps) > 0)
    assert model.total_episodes == len(read_columns(run_dir / "episodes.csv")["timesteps"])
    assert np.load(run_dir / "advantages.npy").size > 0
    resumed = acrl("train", "--resume", run_dir, "--timesteps", 6000, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    model = load_model(run_dir)
    assert model.runtime == "ray" and model.num_timesteps >= 6000
    evaluated = [r["timesteps"] for r in read_evaluations(run_dir / "evaluations.csv")]
    assert len(evaluated) == 4 and evaluated[-1] >= 6000 - 1500
    assert no_ray_left()


def test_the_ray_backend_without_ray_installed_says_how_to_get_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(UserError, match=r"pip install 'acrl\[ray\]'"):
        A3C("MlpPolicy", "CartPole-v1", n_workers=2, runtime="ray")


@in_child_process
def test_a_ray_worker_computes_the_same_gradient_from_the_same_seeds():
    """A worker's report is the clipped A2C gradient of its rollout, reproducible from its
    seeds (what a restarted worker relies on: its new seed stream is as well defined)."""
    from acrl.engines.ray_worker import GradientWorker
    from acrl.learner.worker import WorkerSpec

    model = A3C("MlpPolicy", "CartPole-v1", n_workers=1, n_envs=3, seed=0, runtime="ray")
    spec = WorkerSpec(
        env_id="CartPole-v1",
        env_kwargs={},
        vectorization="auto",
        n_envs=3,
        config=model.config,
        observation_space=model.observation_space,
        action_space=model.action_space,
        backend=model.compute.backend,
        start_timesteps=0,
        total_timesteps=100,
        seeds=[(1, 2)],
    )
    weights = model.params.vector.detach().numpy().copy()
    reports = []
    for _ in range(2):
        worker = GradientWorker(0, spec)
        reports.append(worker.compute(weights, [], 7e-4, 1))
        assert torch.equal(worker.worker.params.vector.detach(), torch.from_numpy(weights))
    first, second = reports
    assert first.steps == 15 and first.grad.shape == weights.shape
    assert 0 < float(np.linalg.norm(first.grad)) <= model.config.max_grad_norm + 1e-5
    assert np.array_equal(first.grad, second.grad) and first.stats == second.stats


def test_cli_joins_a_running_ray_cluster_and_leaves_it_running(tmp_path):
    """`--address auto` joins the cluster that `ray start --head` started on this machine;
    the run's end disconnects from it without stopping it."""
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head = [*ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "2"]
    head += ["--include-dashboard", "false"]
    started = subprocess.run(head, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        run_dir = tmp_path / "cluster"
        args = ["train", "CartPole-v1", "--algo", "a3c", "--runtime", "ray", "--workers", "2"]
        args += ["--address", "auto", "--timesteps", 3000, "--run-dir", run_dir, "--no-progress"]
        result = acrl(*args)
        assert result.returncode == 0, result.stderr
        assert load_model(run_dir).num_timesteps >= 3000
        deadline = time.monotonic() + 15  # the run's actors are gone, the cluster is not
        while ray_processes(b"ray::GradientWorker", mine=False) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray_processes(b"ray::GradientWorker", mine=False) == []
        assert ray_processes(b"/raylet", anywhere=True, mine=False)
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, timeout=120)
