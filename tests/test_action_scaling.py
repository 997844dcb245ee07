"""policy_kwargs.action_scaling: a Box policy acts in [-1, 1], mapped linearly onto the
space's bounds on the way to the env (Tianshou's action scaling), in training, predict, a
saved model, export and the command line; refused where there are no bounds to map onto."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from acrl import A2C
from acrl.config.policy import PolicyConfig
from acrl.model.distributions import make_distribution
from acrl.model.policy import ActorCritic
from tests.test_cli import acrl, assert_user_error

OBS = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
LOW = np.array([-0.4, 0.0], np.float32)
HIGH = np.array([0.4, 2.0], np.float32)
TARGET = np.array([0.3, 0.5], np.float32)  # [0.5, -0.5] in the policy's [-1, 1]


def test_the_policys_unit_box_maps_onto_the_bounds():
    dist = make_distribution(spaces.Box(LOW, HIGH), scaled=True)
    out = dist.to_env(np.array([[-3.0, 0.5], [0.25, -1.0], [1.0, 7.0]], np.float32))
    np.testing.assert_allclose(out, [[-0.4, 1.5], [0.1, 0.0], [0.4, 2.0]], rtol=0, atol=1e-7)
    assert out.dtype == np.float32
    plain = make_distribution(spaces.Box(LOW, HIGH))  # the default: clipped, not scaled
    assert plain.to_env(np.array([[0.25, 1.0]], np.float32)).tolist() == [[0.25, 1.0]]


@pytest.mark.parametrize(
    "space",
    [spaces.Discrete(3), spaces.Box(-np.inf, np.inf, shape=(2,)), spaces.MultiBinary(2)],
)
def test_action_scaling_needs_a_box_with_finite_bounds(space):
    config = PolicyConfig.from_kwargs({"action_scaling": True})
    with pytest.raises(ValueError, match="action_scaling maps .* has none to map onto"):
        ActorCritic(OBS, space, config)


def test_action_scaling_is_true_or_false():
    with pytest.raises(ValueError, match="action_scaling must be true or false"):
        PolicyConfig.from_kwargs({"action_scaling": "yes"})


class TargetBandit(gym.Env):
    """One-step episodes: reward -|a - TARGET|^2; ``step`` refuses an action out of bounds
    and keeps every action it was given."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Box(LOW, HIGH)

    def __init__(self):
        self.seen = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.seen.append(np.array(action))
        reward = -float(np.sum((action - TARGET) ** 2)) * 10
        return np.zeros(1, np.float32), reward, True, False, {}


def test_a_scaled_policy_learns_in_bounds_and_its_file_keeps_the_scaling(tmp_path):
    env = TargetBandit()
    model = A2C(
        "MlpPolicy",
        env,
        n_envs=1,
        n_steps=8,
        seed=0,
        learning_rate=3e-3,
        policy_kwargs={"action_scaling": True, "log_std_init": -1.0},
    )
    model.learn(4000)
    seen = np.stack(env.seen)
    # one-step episodes: every other vector step is Gymnasium's reset step (NEXT_STEP)
    assert len(seen) == 2000 and (seen >= LOW).all() and (seen <= HIGH).all()
    assert (seen[:, 0] == HIGH[0]).any() and (seen[:, 1] == LOW[1]).any()  # clipped at the ends
    obs = np.zeros((1, 1), np.float32)
    action = model.predict(obs, deterministic=True)[0][0]
    # learnt, and acted on as trained: within 0.1 of the target on both dimensions (rollouts
    # acting through another mapping than predict's miss it by ~1)
    assert np.abs(action - TARGET).max() < 0.1, action
    assert model.config.to_dict()["policy_kwargs"]["action_scaling"] is True
    loaded = A2C.load(model.save(tmp_path / "scaled.acrl"))
    assert loaded.policy.distribution.scaled
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0][0], action)


def test_the_command_line_trains_and_evaluates_a_scaled_policy(tmp_path):
    run = tmp_path / "run"
    setting = "policy_kwargs.action_scaling=true"
    done = acrl("train", "Pendulum-v1", "--timesteps", 400, "--run-dir", run, "--set", setting)
    assert done.returncode == 0, done.stderr
    assert "action_scaling: true" in (run / "config.yaml").read_text()
    evaluated = acrl("eval", str(run), "--episodes", "1")
    assert evaluated.returncode == 0, evaluated.stderr
    refused = acrl("train", "CartPole-v1", "--run-dir", str(tmp_path / "no"), "--set", setting)
    assert_user_error(refused, "action_scaling maps")
    assert not (tmp_path / "no").exists()
