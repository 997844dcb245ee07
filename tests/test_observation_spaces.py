"""Discrete, MultiDiscrete, MultiBinary, Dict and Tuple observations: their stored rows and
features exactly, normalization of their Box parts only, collection in both autoreset modes,
predict, the compute backend, save/load, the CLI, and learning runs that need every part."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from acrl import A2C, A3C, evaluate_policy, make_vec_env
from acrl.errors import EnvError
from acrl.learner.backends import choose_compute
from acrl.learner.rollout import RolloutCollector
from acrl.model.encoders import CombinedEncoder, FlattenEncoder, make_encoder
from acrl.model.normalization import Normalization
from acrl.model.observations import observation_layout
from acrl.model.policy import ActorCritic
from tests.observation_envs import DictCounterEnv, NestedTupleEnv
from tests.test_cli import acrl

CUE = "tests.observation_envs:acrl-tests/Cue-v0"
TUPLE = "tests.observation_envs:acrl-tests/NestedTuple-v0"
LAKE = {"map_name": "8x8", "is_slippery": False}


def features(space, observation):
    """The encoder's features of ``observation`` (one, or a batch) of ``space``."""
    rows, _ = observation_layout(space).to_batch(observation)
    return make_encoder(space)(torch.from_numpy(rows)).tolist()


# ---- rows and features, exactly ---------------------------------------------------------
def test_discrete_is_one_index_stored_and_one_hot_encoded():
    space = spaces.Discrete(4, start=2)
    layout = observation_layout(space)
    assert (layout.raw_dim, layout.features_dim, layout.box_dim) == (1, 4, 0)
    rows, single = layout.to_batch(np.array([2, 5, 3]))
    assert not single and rows.tolist() == [[0.0], [3.0], [1.0]]  # the index minus start
    assert features(space, np.array([2, 5, 3])) == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    assert features(space, 4) == [[0, 0, 1, 0]]  # one observation


def test_multi_discrete_is_one_one_hot_per_entry():
    space = spaces.MultiDiscrete([2, 3], start=[1, 0])
    layout = observation_layout(space)
    assert (layout.raw_dim, layout.features_dim) == (2, 5)
    assert layout.to_batch(np.array([[2, 0], [1, 2]]))[0].tolist() == [[1, 0], [0, 2]]
    assert features(space, np.array([[2, 0], [1, 2]])) == [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]]


def test_multi_binary_bits_pass_through():
    space = spaces.MultiBinary(3)
    assert observation_layout(space).features_dim == 3
    assert features(space, np.array([1, 0, 1], dtype=np.int8)) == [[1, 0, 1]]


def test_dict_stores_box_then_bits_then_indices_in_key_order():
    space = spaces.Dict(
        {
            "pos": spaces.Box(-5.0, 5.0, shape=(2,)),
            "cue": spaces.Discrete(3),
            "bits": spaces.MultiBinary(2),
        }
    )
    layout = observation_layout(space)
    assert [leaf.path for leaf in layout.leaves] == [("pos",), ("bits",), ("cue",)]
    assert (layout.box_dim, layout.raw_dim, layout.features_dim) == (2, 5, 7)
    one = {"pos": np.array([0.5, -2.0]), "cue": 2, "bits": np.array([1, 0])}
    assert layout.to_batch(one)[0].tolist() == [[0.5, -2.0, 1, 0, 2]]
    assert features(space, one) == [[0.5, -2.0, 1, 0, 0, 0, 1]]
    batch = {
        "pos": np.array([[1.0, 2.0], [3.0, 4.0]]),
        "cue": np.array([0, 1]),
        "bits": [[0, 1], [1, 1]],
    }
    assert features(space, batch) == [[1, 2, 0, 1, 1, 0, 0], [3, 4, 1, 1, 0, 1, 0]]


def test_nested_tuple_is_flattened_recursively():
    space = NestedTupleEnv().observation_space  # (Discrete(3, start=-1), {bits, dice}, Box(2))
    layout = observation_layout(space)
    assert [leaf.path for leaf in layout.leaves] == [(2,), (1, "bits"), (0,), (1, "dice")]
    assert (layout.raw_dim, layout.features_dim) == (7, 12)
    one = (1, {"bits": np.array([0, 1]), "dice": np.array([1, 2])}, np.array([0.25, -0.5]))
    assert layout.to_batch(one)[0].tolist() == [[0.25, -0.5, 0, 1, 2, 1, 2]]
    assert features(space, one) == [[0.25, -0.5, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1]]
    env = SyncVectorEnv([NestedTupleEnv, NestedTupleEnv])  # the vector env's batch form
    obs, _ = env.reset(seed=0)
    rows = layout.flatten(obs, 2)
    for i in range(2):
        single = (obs[0][i], {k: v[i] for k, v in obs[1].items()}, obs[2][i])
        assert rows[i].tolist() == layout.to_batch(single)[0][0].tolist()


def test_box_spaces_keep_the_flatten_encoder():
    encoder = make_encoder(spaces.Box(-1, 1, shape=(2, 3)))
    assert isinstance(encoder, FlattenEncoder) and encoder.layout.raw_dim == 6
    assert isinstance(make_encoder(spaces.Dict({"a": spaces.Box(-1, 1)})), CombinedEncoder)


@pytest.mark.parametrize(
    "space",
    [
        spaces.Text(8),
        spaces.Sequence(spaces.Discrete(2)),
        spaces.Graph(spaces.Box(-1, 1, shape=(2,)), None),
        spaces.Dict({"ok": spaces.Discrete(2), "words": spaces.Text(4)}),
    ],
    ids=["text", "sequence", "graph", "text-in-dict"],
)
def test_unsupported_observation_spaces_are_refused_in_one_line(space):
    with pytest.raises(ValueError, match="unsupported observation space") as info:
        ActorCritic(space, spaces.Discrete(2))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("observation", "match"),
    [
        ({"pos": np.zeros(2), "cue": 3}, r"observation\['cue'\] holds 3, outside Discrete\(3\)"),
        ({"pos": np.zeros(2), "cue": -1}, "holds -1"),
        ({"pos": np.zeros(2)}, r"observation\['cue'\] is missing"),
        ({"pos": np.zeros(3), "cue": 0}, r"observation\['pos'\] shape \(3,\) does not match"),
        ({"pos": np.zeros((2, 2)), "cue": np.zeros(3, int)}, "different batch sizes"),
        (np.zeros(3), "is missing"),
    ],
)
def test_bad_observations_are_named(observation, match):
    space = spaces.Dict({"pos": spaces.Box(-1, 1, shape=(2,)), "cue": spaces.Discrete(3)})
    with pytest.raises(ValueError, match=match):
        observation_layout(space).to_batch(observation)


# ---- normalization: the Box parts only ----------------------------------------------------
def test_normalization_covers_the_box_parts_only():
    model = A2C(
        "MultiInputPolicy",
        "tests.observation_envs:acrl-tests/DictCounter-v0",
        n_envs=2,
        n_steps=4,
        normalize_obs=True,
        seed=0,
        device="cpu",
    )
    policy = model.policy
    rms = policy.normalization.obs_rms
    assert rms.mean.shape == (1,)  # "episode" only: not the one-hot of "t"
    model.learn(40)
    assert rms.count > 10 and rms.mean.item() > 0  # the episodes seen
    rows = torch.tensor([[3.0, 0.0], [5.0, 7.0]])  # episode, t
    normalized = policy.normalization.normalize_obs(rows)
    std = torch.sqrt(rms.var + policy.normalization.eps).float()
    assert torch.allclose(normalized[:, 0], ((rows[:, 0] - rms.mean.float()) / std).clamp(-10, 10))
    assert normalized[:, 1].tolist() == [0.0, 7.0]  # indices as they were
    one_hot = policy.encode(rows)[:, 1:]
    assert one_hot.tolist() == [[1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1]]


def test_normalization_without_box_parts_changes_nothing():
    norm = Normalization(0, normalize_obs=True, normalize_reward=False)
    rows = torch.tensor([[1.0, 2.0]])
    count = float(norm.obs_rms.count)
    norm.update_obs(rows)  # no Box columns: no statistics to move (and no empty reduction)
    assert float(norm.obs_rms.count) == count
    assert norm.normalize_obs(rows).tolist() == [[1.0, 2.0]]


# ---- collection ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_collector_stores_rows_and_bootstraps_from_dict_final_observations(mode):
    length = 3
    env = SyncVectorEnv(
        [lambda: gym.wrappers.TimeLimit(DictCounterEnv(), length)] * 2, autoreset_mode=mode
    )
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, policy, 5, torch.device("cpu"), seed=0)
    rollout = collector.collect()
    assert rollout.obs.shape == (5, 2, 2)  # episode, t: one float for the Discrete part
    assert rollout.obs[:, 0].tolist()[:3] == [[0, 0], [0, 1], [0, 2]]
    truncated = rollout.final_mask.nonzero().tolist()
    assert (len(truncated) > 0) == (mode is AutoresetMode.SAME_STEP)
    for t, i in truncated:  # the value of {"episode": e, "t": length}, the final observation
        episode = rollout.obs[t, i, 0].item()
        with torch.no_grad():
            value = policy.value(torch.tensor([[episode, float(length)]])).item()
        assert rollout.final_values[t, i].item() == pytest.approx(value, abs=1e-6)


def test_an_index_outside_the_space_is_the_envs_fault():
    env = SyncVectorEnv([DictCounterEnv])  # no time limit: "t" reaches 8, outside Discrete(8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, policy, 10, torch.device("cpu"), seed=0)
    with pytest.raises(EnvError, match=r"from step\(\): observation\['t'\] holds 8, outside"):
        collector.collect()


# ---- predict, backend, policy names -------------------------------------------------------
def test_predict_takes_one_dict_observation_or_a_batch():
    model = A2C("MultiInputPolicy", CUE, n_envs=2, seed=0, device="cpu")
    batch = {"cue": np.array([0, 1, 1]), "pos": np.array([[0.5], [-0.5], [0.25]], np.float32)}
    actions, _ = model.predict(batch, deterministic=True)
    assert actions.shape == (3,)
    for i in range(3):
        one = {"cue": int(batch["cue"][i]), "pos": batch["pos"][i]}
        assert model.predict(one, deterministic=True)[0] == actions[i]
    with pytest.raises(ValueError, match=r"observation\['pos'\] shape"):
        model.predict({"cue": 0, "pos": np.zeros(2)})


def test_numpy_backend_covers_every_vector_observation():
    """The one-hot encoder has no parameters: NumPy builds the same features (acting and
    gradients are checked against torch in test_numpy_forward.py and test_backends.py)."""
    for space in (spaces.Discrete(16), DictCounterEnv().observation_space):
        policy = ActorCritic(space, spaces.Discrete(4))
        assert choose_compute("auto", policy, 64).backend == "numpy"
    box = ActorCritic(spaces.Box(-1, 1, shape=(3,)), spaces.Discrete(2))
    assert choose_compute("auto", box, 64).backend == "numpy"


def test_multi_input_policy_is_for_dict_spaces():
    assert A2C("MlpPolicy", CUE, n_envs=1, device="cpu").policy.obs_dim == 2  # any space
    with pytest.raises(ValueError, match="MultiInputPolicy is for Dict observation spaces"):
        A2C("MultiInputPolicy", "CartPole-v1", n_envs=1, device="cpu")


# ---- save and load, A3C -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env_id", "env_kwargs", "observations"),
    [
        ("FrozenLake-v1", LAKE, np.arange(64)),
        (CUE, {}, {"cue": np.arange(8) % 2, "pos": np.linspace(-1, 1, 8)[:, None]}),
        (TUPLE, {}, None),
    ],
    ids=["discrete", "dict", "nested-tuple"],
)
def test_save_load_predicts_identically(tmp_path, env_id, env_kwargs, observations):
    model = A2C(
        "MlpPolicy",
        env_id,
        n_envs=2,
        env_kwargs=env_kwargs,
        normalize_obs=True,
        seed=0,
        device="cpu",
    )
    model.learn(200)
    if observations is None:
        observations = make_vec_env(env_id, 16, seed=1).reset(seed=1)[0]
    loaded = A2C.load(model.save(tmp_path / "model"))
    assert loaded.observation_space == model.observation_space
    for a, b in zip(loaded.policy.buffers(), model.policy.buffers(), strict=True):
        assert torch.equal(a, b)  # the Box statistics, if any
    expected = model.predict(observations, deterministic=True)[0]
    assert np.array_equal(loaded.predict(observations, deterministic=True)[0], expected)
    rows = torch.from_numpy(model.policy.encoder.layout.to_batch(observations)[0])
    with torch.no_grad():  # the logits and values too, not only their argmax
        (logits,), values = model.policy(rows)
        (loaded_logits,), loaded_values = loaded.policy(rows)
    assert torch.equal(logits, loaded_logits) and torch.equal(values, loaded_values)


def test_a3c_workers_train_on_dict_observations():
    model = A3C(
        "MultiInputPolicy", CUE, n_workers=1, n_envs=2, n_steps=5, normalize_obs=True, seed=0
    )
    before = model.policy.normalization.obs_rms.count.item()
    model.learn(300)
    assert model.num_timesteps >= 300
    assert model.policy.normalization.obs_rms.mean.shape == (1,)
    assert model.policy.normalization.obs_rms.count.item() > before


# ---- learning -----------------------------------------------------------------------------
def cli_eval(path, *extra):
    result = acrl("eval", path, "--json", "--episodes", "4", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["mean"]


@pytest.mark.slow
def test_a2c_solves_frozen_lake_8x8(tmp_path):
    """FrozenLake 8x8 without slipping: the goal is 14 steps away past holes, and a random
    policy reaches it in well under 1% of episodes; the trained one always does (success
    rate 1.0 in deterministic evaluation, here and through ``acrl eval``)."""
    model = A2C(
        "MlpPolicy",
        make_vec_env("FrozenLake-v1", 16, seed=0, env_kwargs=LAKE),
        n_steps=8,
        learning_rate=2e-3,
        ent_coef=0.05,
        seed=0,
        device="cpu",
    )
    model.learn(80_000)
    env = make_vec_env("FrozenLake-v1", 1, env_kwargs=LAKE)
    mean, _ = evaluate_policy(model, env, 3)
    assert mean == 1.0, f"last-100 training mean {model.recent_mean_return()}"
    assert cli_eval(model.save(tmp_path / "lake")) == 1.0


@pytest.mark.slow
def test_a2c_learns_a_task_that_needs_both_dict_keys(tmp_path):
    """CueEnv rewards the action ``cue AND (pos > 0)``: over its 10 steps a random policy
    scores 5 and one that reads a single key (a lost key, a scrambled one-hot) at most 7.5;
    the trained one at least 9.5 on average, here and through ``acrl eval``."""
    model = A2C("MultiInputPolicy", make_vec_env(CUE, 8, seed=0), seed=0, device="cpu")
    model.learn(20_000)
    mean, _ = evaluate_policy(model, make_vec_env(CUE, 4), 20, seed=1)
    assert mean >= 9.5, f"mean return {mean}"
    score = cli_eval(model.save(tmp_path / "cue"), "--env-module", "tests.observation_envs")
    assert score >= 9.5


def test_the_layout_does_not_depend_on_the_order_a_dict_was_built_in():
    from collections import OrderedDict

    from acrl.run.space_json import space_from_json, space_to_json

    built = spaces.Dict(
        OrderedDict([("b", spaces.Box(-1, 1, (2,))), ("a", spaces.Box(-1, 1, (1,)))])
    )
    read_back = space_from_json(json.loads(json.dumps(space_to_json(built))))
    paths = [leaf.path for leaf in observation_layout(built).leaves]
    assert paths == [leaf.path for leaf in observation_layout(read_back).leaves] == [("a",), ("b",)]
    rows = observation_layout(built).flatten(
        {"b": np.array([[0.5, -0.5]]), "a": np.array([[0.25]])}, 1
    )
    assert rows.tolist() == [[0.25, 0.5, -0.5]]
