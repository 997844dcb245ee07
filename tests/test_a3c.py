"""A3C: shared optimizer state, explicit gradient hand-over, learning, failures, persistence."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml
from gymnasium import spaces

from acrl import A3C, StopOnReturn, evaluate_policy, make_vec_env
from acrl.algorithms.registry import load_model, make_model
from acrl.config.hyperparams import A2CConfig
from acrl.config.runs import resolve_run_config
from acrl.engines.hogwild_memory import push_gradients, share_model_and_optimizer
from acrl.errors import WorkerError
from acrl.learner.optim import make_optimizer
from acrl.model.flat_params import FlatParameters
from acrl.model.policy import ActorCritic
from tests.helpers import (
    assert_group_ends,
    children_of,
    ctrl_c_at_first_child,
    misses_until_a_seed_passes,
    wait_for_metrics_rows,
    wait_gone,
)
from tests.test_cli import acrl_argv

OBS = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
ACT = spaces.Discrete(2)


def backward(model, seed):
    torch.manual_seed(seed)
    params, values = model(torch.randn(8, 4))
    (params[0].logsumexp(-1).mean() + values.pow(2).mean()).backward()
    return [p.grad.clone() for p in model.parameters()]


def aliasing_hand_over(local, shared):
    """The hand-over of the best-known PyTorch A3C: alias once, rely on in-place zeroing."""
    for local_p, shared_p in zip(local.parameters(), shared.parameters(), strict=True):
        if shared_p.grad is not None:
            return
        shared_p._grad = local_p.grad


def test_each_update_hands_over_its_own_gradient():
    torch.manual_seed(0)
    local, shared = ActorCritic(OBS, ACT), ActorCritic(OBS, ACT)
    local_params, shared_params = FlatParameters(local), FlatParameters(shared)
    shared_params.vector.grad = None  # a worker's shared vector starts without a gradient
    backward(local, seed=1)
    push_gradients(local_params.grad, shared_params.vector)
    local_params.zero_grad()
    second = backward(local, seed=2)
    push_gradients(local_params.grad, shared_params.vector)
    assert torch.equal(shared_params.vector.grad, torch.cat([g.reshape(-1) for g in second]))
    assert shared_params.vector.grad.data_ptr() != local_params.grad.data_ptr()


def test_the_aliasing_hand_over_keeps_the_first_gradient():
    torch.manual_seed(0)
    local, shared = ActorCritic(OBS, ACT), ActorCritic(OBS, ACT)
    backward(local, seed=1)
    aliasing_hand_over(local, shared)
    local.zero_grad(set_to_none=True)  # PyTorch 2's default
    second = backward(local, seed=2)
    aliasing_hand_over(local, shared)
    # The aliasing hand-over still points at the first update's gradients: the bug acrl avoids.
    assert not all(torch.equal(p.grad, g) for p, g in zip(shared.parameters(), second, strict=True))


@pytest.mark.parametrize("use_rms_prop", [True, False], ids=["rmsprop", "adam"])
def test_shared_state_exists_up_front_and_lives_in_shared_memory(use_rms_prop):
    """Workers attach to the state before any step: it exists when the optimizer is built,
    under torch's names, and moves to shared memory with the model."""
    model = ActorCritic(OBS, ACT)
    params = FlatParameters(model)
    optimizer = make_optimizer(
        params.vector, A2CConfig(use_rms_prop=use_rms_prop), model.critic_only_mask()
    )
    reference_class = torch.optim.RMSprop if use_rms_prop else torch.optim.Adam
    reference = reference_class([params.vector.detach().clone().requires_grad_()])
    reference.param_groups[0]["params"][0].grad = torch.ones_like(params.vector)
    reference.step()
    (torch_state,) = reference.state.values()
    state = share_model_and_optimizer(model, optimizer)
    assert state is optimizer.state and state.keys() == torch_state.keys()
    assert all(float(v.abs().sum()) == 0.0 for v in state.values())
    assert all(p.is_shared() for p in model.parameters())
    assert all(v.is_shared() for v in state.values())
    worker = make_optimizer(
        params.vector, A2CConfig(use_rms_prop=use_rms_prop), model.critic_only_mask(), state=state
    )
    assert all(worker.state[k] is v for k, v in state.items())


def snapshot(model):
    params = [p.detach().clone() for p in model.policy.parameters()]
    state = {k: v.clone() for k, v in model.optimizer.state.items()}
    return params, state


@pytest.mark.parametrize("lock_updates", [True, False], ids=["locked", "hogwild"])
def test_workers_step_the_shared_model_and_optimizer_state(lock_updates):
    model = A3C(
        "MlpPolicy",
        "CartPole-v1",
        n_workers=2,
        n_envs=2,
        n_steps=5,
        seed=0,
        lock_updates=lock_updates,
    )
    params_before, _ = snapshot(model)
    model.learn(2_000)
    params_after, state_after = snapshot(model)
    assert model.num_timesteps >= 2_000 and model.num_updates >= 2_000 // 10
    assert all(not torch.equal(a, b) for a, b in zip(params_before, params_after, strict=True))
    steps = float(state_after["step"])
    assert float(state_after["square_avg"].abs().sum()) > 0
    if lock_updates:
        # Every step of every worker counted once in the shared state.
        assert steps == float(model.num_updates)
    else:
        assert 0 < steps <= model.num_updates


def _cartpole_preset_miss(seed: int) -> str | None:
    """Train the A3C CartPole preset on ``seed`` with two workers; what it missed, or None."""
    overrides = {"seed": seed, "n_workers": 2, "backend": "numpy"}
    run = resolve_run_config("CartPole-v1", algo="a3c", overrides=overrides)
    model = make_model(run)
    judge = StopOnReturn(475)  # judges every update; the run is never stopped
    model.learn(run.n_timesteps, callback=lambda m: judge(m) or True)
    recent = model.recent_mean_return()
    if not judge.solved_at or recent < 400:  # random play: ~22
        return f"seed {seed}: last-100 mean {recent:.1f} after {model.num_timesteps} steps"
    mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", 8, seed=0), 10)
    if mean < 400:
        return f"seed {seed}: evaluated {mean} after {model.num_timesteps} steps"
    return None


@pytest.mark.slow
def test_a3c_solves_cartpole_with_two_workers():
    """The preset as shipped: its whole budget, the learning rate decaying to 0, the last-100
    training mean reaching 475 on the way and the final policy evaluating >= 400.

    Hogwild runs are not reproducible: the order in which the workers' updates land decides the
    curve, so a seed does not fix the outcome. Here seed 0 solved in 24 of 24 runs (two at once)
    and seeds 0-29 in 30 of 30 (three at once beside a busy loop), yet one CI run of seed 0
    ended at a last-100 mean of 177.4. A miss is therefore trained once more on the next seed
    and the test fails only when both miss; a broken A3C misses both (random play: ~22). Here
    the preset's backend (NumPy); A3C workers on the torch backend learn in
    test_recurrent_a3c_solves_cue_recall_with_two_workers, and both backends compute the same
    update (tests/test_backends.py)."""
    misses = misses_until_a_seed_passes(_cartpole_preset_miss)
    assert not misses, "; ".join(misses)


def test_a3c_takes_acrl_0_2s_backend_argument_as_its_runtime():
    with pytest.warns(DeprecationWarning, match=r"A3C\(runtime='processes'\)"):
        model = A3C("MlpPolicy", "CartPole-v1", n_workers=1, backend="processes")
    assert model.runtime == "processes" and model.config.backend == "auto"


def test_worker_crash_ends_the_run_with_its_error():
    model = A3C("MlpPolicy", "tests.envs:acrl-tests/Broken-v0", n_workers=2, seed=0)
    start = time.monotonic()
    with pytest.raises(
        WorkerError, match="worker [01] failed: RuntimeError: the simulator exploded"
    ):
        model.learn(1_000_000)
    assert time.monotonic() - start < 30
    assert not any(p.is_alive() for p in model.workers)
    assert mp.active_children() == []


def test_save_load_a3c_model(tmp_path):
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, n_envs=2, seed=0, log_dir=tmp_path)
    model.learn(1_000)
    # the run directory has the episodes of both workers and their last rollouts' advantages
    episodes = (tmp_path / "episodes.csv").read_text().splitlines()
    assert len(episodes) - 1 == model.total_episodes > 0
    # The last rollout (2 envs x 5 steps, less the steps that only reset an env) of each
    # worker that made an update: a worker that starts late may find the budget spent.
    advantages = np.load(tmp_path / "advantages.npy")
    assert 2 * 4 <= advantages.size <= 2 * 2 * 5
    assert np.isfinite(advantages).all()
    path = model.save(tmp_path / "a3c")
    loaded = load_model(path)
    assert isinstance(loaded, A3C) and loaded.n_workers == 2 and loaded.num_timesteps >= 1_000
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    assert np.array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    loaded.learn(500, reset_num_timesteps=False)
    assert loaded.num_timesteps >= 1_500


UNGUARDED = """from acrl import A3C

model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, seed=0, log_dir="run")
model.learn(total_timesteps=2_000)
"""


def test_a_script_without_the_main_guard_is_told_what_to_add(tmp_path):
    """Spawned workers import the main script: one that trains at its top level would train
    again in every worker. The workers leave before building anything, and the run ends with
    the line that names the guard (not multiprocessing's bootstrapping error)."""
    (tmp_path / "train.py").write_text(UNGUARDED)
    result = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1  # the script's uncaught UserError
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("acrl.errors.UserError: A3C's workers are spawned processes")
    assert 'if __name__ == "__main__":' in last
    assert "bootstrapping" not in result.stderr and "exited with code" not in result.stderr
    guarded = UNGUARDED.replace("model =", 'if __name__ == "__main__":\n    model =')
    guarded = guarded.replace("\nmodel.learn", "\n    model.learn")
    (tmp_path / "train.py").write_text(guarded.replace('"run"', '"run-2"'))  # the first has logs
    result = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_a3c_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="env id"):
        A3C("MlpPolicy", make_vec_env("CartPole-v1", 2))
    with pytest.raises(ValueError, match="picklable"):
        A3C("MlpPolicy", "CartPole-v1", learning_rate=lambda p: 1e-3 * p)
    with pytest.raises(ValueError, match="n_workers"):
        A3C("MlpPolicy", "CartPole-v1", n_workers=0)


CLI_A3C = "train CartPole-v1 --algo a3c --workers 2 --timesteps 50000000 --no-progress"


def start_cli_a3c(run_dir, start_new_session=False):
    args = [*CLI_A3C.split(), "--run-dir", str(run_dir), "--log-interval", "20"]
    return subprocess.Popen(
        acrl_argv(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=start_new_session,
    )


def test_cli_a3c_ctrl_c_stops_workers_saves_and_exits_130(tmp_path):
    run_dir = tmp_path / "a3c"
    proc = start_cli_a3c(run_dir)
    wait_for_metrics_rows(run_dir)
    workers = children_of(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert wait_gone(workers, 5.0) == []
    result = subprocess.run(
        acrl_argv("eval", run_dir, "--episodes", 2, "--json"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_sigterm_to_the_process_group_stops_saves_and_exits_143(tmp_path):
    """A container stop sends SIGTERM to every process: workers leave it to the main one."""
    run_dir = tmp_path / "a3c-term"
    proc = start_cli_a3c(run_dir, start_new_session=True)
    wait_for_metrics_rows(run_dir)
    workers = children_of(proc.pid)
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert wait_gone(workers, 5.0) == []
    assert load_model(run_dir).num_timesteps > 0


def test_ctrl_c_in_a_terminal_during_worker_start_up(tmp_path):
    """Ctrl-C reaches the whole process group, here as soon as the first child process
    exists, while the other workers are still being started: it must not be lost (a main
    process that ignored it then trained on)."""
    run_dir = tmp_path / "a3c-early"
    proc = start_cli_a3c(run_dir, start_new_session=True)
    stderr = ctrl_c_at_first_child(proc, timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert_group_ends(proc.pid)


def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    run_dir = tmp_path / "a3c-killed"
    proc = start_cli_a3c(run_dir)
    wait_for_metrics_rows(run_dir)
    workers = children_of(proc.pid)
    proc.kill()
    proc.wait()
    assert wait_gone(workers, 30.0) == []


def test_cli_a3c_records_the_workers_it_ran_with(tmp_path):
    """Without a preset A3C takes one worker per core; config.yaml records the number, so
    that the run repeats (--config, --resume) as it ran on another machine too."""
    run_dir = tmp_path / "run"
    args = ["train", "FrozenLake-v1", "--algo", "a3c", "--timesteps", "64", "--run-dir", run_dir]
    result = subprocess.run(
        [*acrl_argv(*args), "--no-progress"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "no A3C preset for FrozenLake-v1" in result.stdout
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["n_workers"] == os.cpu_count()


def test_cli_a3c_worker_failure_is_one_line_and_non_zero(tmp_path):
    run_dir = tmp_path / "broken"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "acrl",
            "train",
            "tests.envs:acrl-tests/Broken-v0",
            "--algo",
            "a3c",
            "--workers",
            "2",
            "--timesteps",
            "100000",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("acrl: error: worker") and "simulator exploded" in lines[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("keep", [False, True])
def test_a_worker_keeps_freed_memory_as_the_run_s_compute_says(monkeypatch, keep):
    import acrl.learner.worker as worker_module

    calls: list[bool] = []
    monkeypatch.setattr(worker_module, "keep_freed_memory", lambda: calls.append(True) or True)
    model = A3C("MlpPolicy", "CartPole-v1", n_envs=2)
    spec = worker_module.WorkerSpec(
        env_id="CartPole-v1",
        env_kwargs={},
        vectorization=model.vectorization,
        n_envs=2,
        config=model.config,
        observation_space=model.observation_space,
        action_space=model.action_space,
        backend="torch",
        start_timesteps=0,
        total_timesteps=10,
        keep_memory=keep,
    )
    threads = torch.get_num_threads()
    try:
        worker_module.build_worker(spec, (0, 0), None).close()
    finally:
        torch.set_num_threads(threads)  # a worker computes on one thread
    assert calls == ([True] if keep else [])
