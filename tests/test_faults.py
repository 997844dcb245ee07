"""Numerical faults: a NaN or inf stops training before it reaches the model or a file."""

import subprocess
import sys

import pytest
import torch

from acrl import A2C, A3C
from acrl.algorithms.registry import load_model
from acrl.errors import NonFiniteError, WorkerError

FAULTY = "acrl-tests/Faulty-v0"


def faulty_a2c(fault, fault_at=30, **kwargs):
    env_kwargs = {"fault": fault, "fault_at": fault_at}
    return A2C("MlpPolicy", FAULTY, n_envs=1, seed=0, env_kwargs=env_kwargs, **kwargs)


@pytest.mark.parametrize("fault", ["reward", "observation"])
def test_a_nan_from_the_env_is_the_envs_fault_and_never_learned(fault):
    model = faulty_a2c(fault)
    with pytest.raises(NonFiniteError, match=rf"{FAULTY} returned a non-finite {fault} \(nan\)"):
        model.learn(1_000)
    # Env step 30 is rollout step 32 (two NEXT_STEP resets after the 10-step episodes), in
    # the seventh 5-step rollout: the six before it were learned from, that one was not.
    assert model.num_updates == 6


def test_an_overflowing_loss_stops_before_the_update_is_applied():
    model = faulty_a2c("huge", fault_at=3)
    before = model.params.vector.detach().clone()
    state = {k: v.clone() for k, v in model.optimizer.state.items()}
    with pytest.raises(NonFiniteError, match=r"update 1: the value loss is inf; .* not applied"):
        model.learn(1_000)
    assert torch.equal(model.params.vector.detach(), before)
    assert all(torch.equal(v, state[k]) for k, v in model.optimizer.state.items())
    assert model.num_updates == 0


def test_a_model_with_non_finite_parameters_is_never_saved(tmp_path):
    model = faulty_a2c("reward")
    with torch.no_grad():
        model.params.vector[3] = float("inf")
    with pytest.raises(NonFiniteError, match="NaN or inf: not saved"):
        model.save(tmp_path / "model.acrl")
    assert not (tmp_path / "model.acrl").exists()


def test_a3c_worker_reports_the_envs_fault():
    env_kwargs = {"fault": "observation", "fault_at": 40}
    model = A3C("MlpPolicy", f"tests.envs:{FAULTY}", n_workers=2, seed=0, env_kwargs=env_kwargs)
    with pytest.raises(WorkerError, match=rf"NonFiniteError: {FAULTY} returned a non-finite obs"):
        model.learn(100_000)


def test_cli_stops_with_one_line_and_keeps_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "acrl",
            "train",
            f"tests.envs:{FAULTY}",
            "--n-envs",
            "1",
            "--set",
            "env_kwargs.fault_at=1003",
            "--checkpoint-every",
            "500",
            "--timesteps",
            "100000",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"{FAULTY} returned a non-finite reward" in lines[0]
    assert f"the last checkpoint in {run_dir} is kept" in lines[0]
    model = load_model(run_dir)
    assert model.num_timesteps == 1000  # the checkpoint at 1000 steps, before the fault
    assert torch.isfinite(model.params.vector).all()
