"""Real learning runs with bounded budgets and thresholds that a broken A2C cannot reach."""

import numpy as np
import pytest

from acrl import A2C, StopOnReturn, evaluate_policy, make_vec_env
from acrl.algorithms.registry import make_model
from acrl.config.runs import resolve_run_config


class RandomPolicy:
    def __init__(self, action_space):
        self.action_space = action_space

    def predict(self, obs, deterministic=False, **_):
        return np.stack([self.action_space.sample() for _ in obs]), None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "backend"), [(0, "numpy"), (1, "numpy"), (2, "numpy"), (0, "torch"), (1, "torch")]
)
def test_a2c_solves_cartpole_within_its_budget(seed, backend):
    """The CartPole-v1 preset reaches a last-100-episode mean of 475 within its 400k-step
    budget, with either compute backend (random actions score about 22)."""
    run = resolve_run_config("CartPole-v1", overrides={"seed": seed, "backend": backend})
    model = make_model(run)
    assert model.compute.backend == backend and run.n_timesteps == 400_000
    stop = StopOnReturn(475)
    model.learn(run.n_timesteps, callback=stop)
    assert stop.solved_at, f"last-100 mean {model.recent_mean_return():.1f} after 400k steps"


@pytest.mark.slow
def test_cartpole_preset_ends_solved_as_make_train_does():
    """The full preset run (what `make train` does) ends at >= 475 in deterministic evaluation."""
    run = resolve_run_config("CartPole-v1")
    model = make_model(run).learn(run.n_timesteps)
    mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", 8, seed=0), 20)
    assert mean >= 475


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a2c_learns_continuous_control(backend):
    """A Gaussian policy learns to steer to a target: random actions score about -16."""
    env_id = "acrl-tests/Target-v0"
    random_score, _ = evaluate_policy(
        RandomPolicy(make_vec_env(env_id, 1).single_action_space), env_id, 40, seed=1
    )
    model = A2C(
        "MlpPolicy",
        make_vec_env(env_id, 8, seed=0),
        n_steps=8,
        gamma=0.9,
        gae_lambda=0.9,
        learning_rate=1e-3,
        seed=0,
        device="cpu",
        policy_kwargs={"log_std_init": -0.5},
        backend=backend,
    )
    model.learn(40_000)
    trained, _ = evaluate_policy(model, make_vec_env(env_id, 8), 40, seed=1)
    assert random_score < -10.0
    assert trained > -4.0, (random_score, trained)
