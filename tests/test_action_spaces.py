"""MultiDiscrete and MultiBinary actions: the maths of their heads against torch.distributions,
the actions they hand the env (a Discrete space's start too), the backends' choice, learning,
persistence, the CLI and A3C; every other action space refused in one line."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import tests.action_envs  # noqa: F401  (registers the envs)
from acrl import A2C, A3C, evaluate_policy, make_vec_env
from acrl.algorithms.registry import load_model
from acrl.config.policy import PolicyConfig
from acrl.errors import UserError
from acrl.learner.rollout import RolloutCollector
from acrl.model.distributions import Bernoulli, MultiCategorical, make_distribution
from acrl.model.policy import ActorCritic
from acrl.plotting.policy_slice import policy_slice
from acrl.run.model_file import read_model, write_model
from acrl.run.space_json import space_to_json
from tests.test_cli import acrl

MD_ENV = "acrl-tests/MultiDiscreteTarget-v0"
MB_ENV = "acrl-tests/MultiBinaryPattern-v0"
ROOT = Path(__file__).resolve().parents[1]  # where `tests.action_envs` imports from
OBS = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)


def _md_reference(logits, nvec):
    return [torch.distributions.Categorical(logits=c) for c in logits.split(list(nvec), dim=-1)]


# ---- the maths ---------------------------------------------------------------------------
def test_multi_categorical_matches_torch():
    torch.manual_seed(0)
    nvec = (3, 4, 2)
    dist = make_distribution(spaces.MultiDiscrete(nvec))
    assert isinstance(dist, MultiCategorical) and dist.param_dim == 9
    logits = 3.0 * torch.randn(6, 9)
    actions = torch.stack([torch.randint(n, (6,)) for n in nvec], dim=-1)
    refs = _md_reference(logits, nvec)
    want_log_prob = sum(r.log_prob(actions[:, i]) for i, r in enumerate(refs))
    want_entropy = sum(r.entropy() for r in refs)
    torch.testing.assert_close(dist.log_prob((logits,), actions), want_log_prob)
    torch.testing.assert_close(dist.entropy((logits,)), want_entropy)
    log_prob, entropy = dist.log_prob_and_entropy((logits,), actions)
    torch.testing.assert_close(log_prob, want_log_prob)
    torch.testing.assert_close(entropy, want_entropy)
    mode = dist.mode((logits,))
    assert torch.equal(mode, torch.stack([c.argmax(-1) for c in logits.split(nvec, -1)], -1))


def test_bernoulli_matches_torch():
    torch.manual_seed(0)
    dist = make_distribution(spaces.MultiBinary(4))
    assert isinstance(dist, Bernoulli) and dist.param_dim == 4
    logits = torch.tensor([[0.3, -2.0, 40.0, -40.0], [1.5, 0.0, -0.7, 8.0]])
    actions = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 0]])
    ref = torch.distributions.Bernoulli(logits=logits)
    torch.testing.assert_close(
        dist.log_prob((logits,), actions), ref.log_prob(actions.float()).sum(-1)
    )
    torch.testing.assert_close(dist.entropy((logits,)), ref.entropy().sum(-1))
    log_prob, entropy = dist.log_prob_and_entropy((logits,), actions)
    torch.testing.assert_close(log_prob, ref.log_prob(actions.float()).sum(-1))
    torch.testing.assert_close(entropy, ref.entropy().sum(-1))
    # the mode takes 1 where p > 1/2; p = 1/2 gives 0, as Stable-Baselines3's round()
    assert dist.mode((logits,)).tolist() == [[1, 0, 1, 0], [1, 0, 0, 1]]


def test_samples_have_the_action_shape_dtype_and_the_heads_probabilities():
    torch.manual_seed(0)
    n = 40_000
    md = make_distribution(spaces.MultiDiscrete([3, 2]))
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5, -0.5]]).expand(n, 5)
    samples = md.sample((logits,))
    assert samples.shape == (n, 2) and samples.dtype == md.action_dtype() == torch.int64
    for i, ref in enumerate(_md_reference(logits[:1], (3, 2))):
        freq = torch.bincount(samples[:, i], minlength=ref.probs.shape[-1]) / n
        torch.testing.assert_close(freq, ref.probs[0], atol=0.01, rtol=0)
    mb = make_distribution(spaces.MultiBinary(3))
    logits = torch.tensor([[2.0, 0.0, -1.0]]).expand(n, 3)
    samples = mb.sample((logits,))
    assert samples.shape == (n, 3) and samples.dtype == mb.action_dtype() == torch.int64
    torch.testing.assert_close(samples.float().mean(0), torch.sigmoid(logits[0]), atol=0.01, rtol=0)


def test_actions_go_to_the_env_in_its_shape_dtype_and_start():
    space = spaces.MultiDiscrete([[2, 3], [4, 5]], start=[[1, 1], [0, -2]], dtype=np.int32)
    dist = make_distribution(space)
    assert dist.action_shape() == (4,) and dist.param_dim == 14
    out = dist.to_env(np.array([[0, 2, 3, 4], [1, 0, 0, 0]]))
    assert out.dtype == np.int32 and out.shape == (2, 2, 2)
    assert out.tolist() == [[[1, 3], [3, 2]], [[2, 1], [0, -2]]]
    assert all(space.contains(a) for a in out)
    space = spaces.MultiBinary([2, 3])
    dist = make_distribution(space)
    assert dist.action_shape() == (6,) and dist.param_dim == 6
    out = dist.to_env(np.array([[1, 0, 1, 0, 0, 1]]))
    assert out.dtype == np.int8 and out.tolist() == [[[1, 0, 1], [0, 0, 1]]]
    assert space.contains(out[0])


class _ShiftedDiscreteEnv(gym.Env):
    """Actions Discrete(3, start=-1); ``step`` refuses any action outside the space."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = spaces.Discrete(3, start=-1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        return np.full(2, float(action) / 2, np.float32), float(action), False, False, {}


def test_discrete_actions_with_a_start_go_to_the_env_shifted(tmp_path):
    dist = make_distribution(spaces.Discrete(3, start=-1))
    assert dist.param_dim == 3 and dist.to_env(np.array([0, 1, 2])).tolist() == [-1, 0, 1]
    model = A2C("MlpPolicy", _ShiftedDiscreteEnv(), n_steps=4, seed=0)
    model.learn(40)  # every action reached the env's step, inside its space
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    actions, _ = model.predict(obs)
    assert set(actions.tolist()) <= {-1, 0, 1}
    loaded = A2C.load(model.save(tmp_path / "shifted.acrl"))
    assert loaded.action_space == spaces.Discrete(3, start=-1)
    mode = model.predict(obs, deterministic=True)[0]
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], mode)


@pytest.mark.parametrize(
    "space, params", [(spaces.MultiDiscrete([3, 4]), 7), (spaces.MultiBinary(4), 4)]
)
def test_the_actor_head_has_the_distributions_size_and_sb3s_init(space, params):
    policy = ActorCritic(OBS, space)
    assert policy.actor_head.weight.shape == (params, 64) and policy.log_std is None
    # orthogonal with gain 0.01, as Stable-Baselines3's action_net: rows of norm 0.01
    norms = policy.actor_head.weight.norm(dim=1)
    torch.testing.assert_close(norms, torch.full((params,), 0.01), atol=1e-6, rtol=0)
    assert torch.count_nonzero(policy.actor_head.bias) == 0
    obs = torch.randn(5, 3)
    actions = policy.act(obs)
    log_prob, entropy, values = policy.evaluate_actions(obs, actions)
    assert log_prob.shape == entropy.shape == values.shape == (5,)
    with pytest.raises(ValueError, match="use_sde needs a continuous"):
        ActorCritic(OBS, space, PolicyConfig(use_sde=True))


@pytest.mark.parametrize(
    "space",
    [
        spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))),
        spaces.Dict({"a": spaces.Discrete(2)}),
        spaces.Text(5),
        spaces.Graph(spaces.Box(0, 1, (2,)), None),
        spaces.Sequence(spaces.Discrete(2)),
    ],
)
def test_other_action_spaces_are_named_in_one_line(space):
    with pytest.raises(ValueError, match="unsupported action space") as info:
        ActorCritic(OBS, space)
    assert "\n" not in str(info.value) and type(space).__name__ in str(info.value)


def test_a2c_refuses_an_env_with_a_tuple_action_space():
    with pytest.raises(ValueError, match=r"unsupported action space Tuple\(Discrete\(2\)"):
        A2C("MlpPolicy", "acrl-tests/TupleAction-v0", n_envs=1)


@pytest.mark.parametrize("env_id, width", [(MD_ENV, 2), (MB_ENV, 4)])
def test_the_rollout_stores_the_heads_actions(env_id, width):
    env = make_vec_env(env_id, 3, seed=0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, policy, n_steps=5, device=torch.device("cpu"), seed=0)
    rollout = collector.collect()
    assert rollout.actions.shape == (5, 3, width) and rollout.actions.dtype == torch.int64
    space = env.single_action_space
    actions = policy.distribution.to_env(rollout.actions.reshape(15, width).numpy())
    assert all(space.contains(a) for a in actions)
    env.close()


# ---- backends ----------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", [MD_ENV, MB_ENV])
def test_numpy_covers_these_heads(env_id):
    """Acting and gradients are checked against torch in test_backends.py."""
    model = A2C("MlpPolicy", make_vec_env(env_id, 2, seed=0), seed=0, device="cpu")
    assert model.compute.backend == "numpy"
    assert model.compute.reason == "auto: an MLP on the CPU, 10 transitions per update"


# ---- learning ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "env_id, threshold",
    [
        # random actions score 0.67 an episode, a head that learns only one dimension ~2
        (MD_ENV, 7.5),
        # random actions score 16, a head that learns three of the four bits ~28
        (MB_ENV, 31.0),
    ],
)
def test_a2c_learns_every_action_dimension(env_id, threshold):
    """Both tasks' best score (8 and 32) needs every dimension right; a few seconds each here."""
    model = A2C(
        "MlpPolicy",
        make_vec_env(env_id, 8, seed=0),
        n_steps=8,
        gamma=0.5,
        learning_rate=3e-3,
        seed=0,
        device="cpu",
    )
    model.learn(16_000)
    mean, _ = evaluate_policy(model, make_vec_env(env_id, 8, seed=1), 40)
    assert mean >= threshold


# ---- persistence, the CLI and A3C ----------------------------------------------------------
@pytest.fixture(scope="module", params=[MD_ENV, MB_ENV])
def saved(request, tmp_path_factory):
    """A briefly trained A2C model of each action space and its file."""
    model = A2C("MlpPolicy", make_vec_env(request.param, 4, seed=0), n_steps=8, seed=0)
    model.learn(1_000)
    return model, model.save(tmp_path_factory.mktemp("models") / "model")


def test_save_load_predicts_identically_in_the_envs_format(saved):
    model, path = saved
    loaded = load_model(path)
    assert loaded.action_space == model.action_space
    obs = np.random.default_rng(0).uniform(-1, 1, size=(32, *model.observation_space.shape))
    actions, _ = loaded.predict(obs.astype(np.float32), deterministic=True)
    assert np.array_equal(actions, model.predict(obs.astype(np.float32), deterministic=True)[0])
    space = model.action_space
    expected = np.int64 if isinstance(space, spaces.MultiDiscrete) else np.int8
    assert actions.dtype == expected and actions.shape == (32, *space.shape)
    assert all(space.contains(a) for a in actions)
    single, _ = loaded.predict(obs[0].astype(np.float32), deterministic=True)
    assert single.shape == space.shape and np.array_equal(single, actions[0])


def test_a_file_whose_action_space_does_not_fit_its_weights_is_refused(saved, tmp_path):
    model, path = saved
    tensors, meta = read_model(path)
    other = (
        spaces.MultiDiscrete([3, 5])
        if isinstance(model.action_space, spaces.MultiDiscrete)
        else spaces.MultiBinary(5)
    )
    write_model(tmp_path / "edited", tensors, {**meta, "action_space": space_to_json(other)})
    with pytest.raises(UserError, match="weights do not match the saved architecture"):
        A2C.load(tmp_path / "edited.acrl")


def test_policy_slice_shows_each_dimensions_mode(saved):
    model, _ = saved
    fig = policy_slice(model, (0, 1), ranges=[(0.0, 1.0), (0.0, 1.0)], resolution=5)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    width = model.action_space.shape[0]
    assert titles == [f"action[{a}] (mode)" for a in range(width)] + ["value V(s)"]


def test_cli_eval_of_a_saved_model(saved):
    _, path = saved
    result = acrl(
        "eval", path, "--episodes", "2", "--json", "--env-module", "tests.action_envs", cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["episodes"] == 2 and np.isfinite(report["mean"])


@pytest.mark.parametrize("saved", [MD_ENV], indirect=True)  # one is enough: a subprocess each
def test_cli_video_of_a_saved_model(saved, tmp_path):
    _, path = saved
    out = tmp_path / "videos"
    result = acrl("video", path, "--out", out, "--env-module", "tests.action_envs", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    videos = list(out.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_a3c_workers_build_and_train_these_heads():
    """The workers rebuild the policy from the spaces (one head: a process start each)."""
    model = A3C("MlpPolicy", f"tests.action_envs:{MD_ENV}", n_workers=2, n_envs=2, seed=0)
    model.learn(800)
    assert model.num_timesteps >= 800 and model.compute.backend == "numpy"
    obs = np.zeros((3, *model.observation_space.shape), np.float32)
    actions, _ = model.predict(obs)
    assert actions.shape == (3, 2) and all(model.action_space.contains(a) for a in actions)
