"""Recurrent policies (LSTM, GRU): the state at every episode boundary, the recomputed
sequence, the truncation bootstrap, predict, save/load, resume and learning a memory task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from acrl import A2C, make_vec_env
from acrl.config.hyperparams import A2CConfig
from acrl.config.policy import PolicyConfig
from acrl.envs.partial import NO_VELOCITY
from acrl.learner.backends.torch_backend import TorchBackend
from acrl.learner.losses import evaluate_rollout
from acrl.learner.rollout import RolloutCollector
from acrl.model.memory import RecurrentCore, recurrent_parameters
from acrl.model.policy import ActorCritic
from acrl.run.evaluation import evaluate_policy
from tests.helpers import misses_until_a_seed_passes
from tests.memory_envs import CueRecall, StepCount, a3c_cue_recall_miss

N_ENVS = 3
CUE = "acrl-tests/CueRecall-v0"
SOLVES = {"learning_rate": 3e-3, "ent_coef": 0.01, "n_steps": 8, "n_envs": 16}
ARRANGEMENTS = [
    {"recurrent": "lstm"},
    {"recurrent": "gru", "n_recurrent_layers": 2},
    {"recurrent": "lstm", "shared_recurrent": True},
    {"recurrent": "gru", "critic_recurrent": False},
    {"recurrent": "lstm", "share_features_extractor": False, "net_arch": [16]},
]


def step_envs(mode: AutoresetMode) -> SyncVectorEnv:
    return SyncVectorEnv([lambda i=i: StepCount(i) for i in range(N_ENVS)], autoreset_mode=mode)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_core_over_a_sequence_equals_a_step_at_a_time_from_zero_at_each_start(kind):
    torch.manual_seed(0)
    core = RecurrentCore(kind, in_dim=3, hidden=4, layers=2)
    t, n = 7, 3
    x = torch.randn(t, n, 3)
    state = torch.randn(n, core.state_size)
    starts = torch.zeros(t, n)
    starts[0, 1] = starts[3, 0] = starts[3, 2] = starts[5, 1] = 1.0
    out, final = core(x, state, starts)
    # brute force: each env alone, one step at a time, its state zeroed where it starts
    for i in range(n):
        s = state[i : i + 1]
        for step in range(t):
            if starts[step, i]:
                s = torch.zeros_like(s)
            o, s = core(x[step : step + 1, i : i + 1], s, torch.zeros(1, 1))
            torch.testing.assert_close(out[step, i], o[0, 0], rtol=0, atol=1e-6)
        torch.testing.assert_close(final[i], s[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs", ARRANGEMENTS)
def test_parameter_count_matches_the_built_memory(kwargs):
    config = PolicyConfig.from_kwargs(kwargs)
    policy = ActorCritic(StepCount().observation_space, gym.spaces.Discrete(2), config)
    assert policy.memory is not None
    built = sum(p.numel() for p in policy.memory.parameters())
    assert recurrent_parameters(config, policy.encoder.features_dim) == built


class RecordingBackend(TorchBackend):
    """The torch backend, recording each acting step's log-probabilities and values."""

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__(policy)
        self.log_probs: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def step(self, obs, state, exploration=None):
        actions, next_state = super().step(obs, state, exploration)
        params, values = self.policy(self._tensor(obs), state)
        log_prob, _ = self.policy.distribution.log_prob_and_entropy(
            params, torch.as_tensor(actions)
        )
        self.log_probs.append(log_prob)
        self.values.append(values)
        return actions, next_state


def reference_pass(policy, obs, state):
    """Brute force over one rollout: each env alone, one observation at a time, its state
    zeroed where the env says an episode starts (its step count is 0). Values, and the states
    after each observation, (T + 1, N) and (T + 1, N, S)."""
    values, states = [], []
    for i in range(obs.shape[1]):
        s = state[i : i + 1]
        env_values, env_states = [], []
        for row in obs[:, i]:
            if row[0] == 0:
                s = torch.zeros_like(s)
            env_values.append(policy.value(row[None], s)[0])
            s = policy.step(row[None], s)[1]
            env_states.append(s[0])
        values.append(torch.stack(env_values))
        states.append(torch.stack(env_states))
    return torch.stack(values, 1), torch.stack(states, 1)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("kwargs", ARRANGEMENTS[:3])
def test_rollouts_zero_the_state_where_episodes_start_and_the_update_recomputes_them(mode, kwargs):
    torch.manual_seed(1)
    env = step_envs(mode)
    policy = ActorCritic(
        env.single_observation_space, env.single_action_space, PolicyConfig.from_kwargs(kwargs)
    )
    backend = RecordingBackend(policy)
    collector = RolloutCollector(env, policy, 7, torch.device("cpu"), seed=0, backend=backend)
    for rollout_index in range(3):  # episodes of 3, 4, 5 steps cross rollouts of 7
        backend.log_probs.clear()
        backend.values.clear()
        rollout = collector.collect()
        obs = torch.cat([rollout.obs, rollout.next_obs[None]])
        # an episode starts exactly where the env's step count is 0, in both modes
        assert torch.equal(rollout.starts, (obs[..., 0] == 0).float())
        if rollout_index == 0:
            assert torch.equal(rollout.initial_state, torch.zeros_like(rollout.initial_state))
        with torch.no_grad():
            log_prob, _, values, last = evaluate_rollout(policy, rollout)
        # the update's recomputed sequence equals what acting computed, step by step
        torch.testing.assert_close(log_prob, torch.cat(backend.log_probs), rtol=0, atol=1e-5)
        torch.testing.assert_close(values, torch.cat(backend.values), rtol=0, atol=1e-5)
        # and the brute-force reference, each env alone
        with torch.no_grad():
            ref_values, ref_states = reference_pass(policy, obs, rollout.initial_state)
        torch.testing.assert_close(values, ref_values[:-1].reshape(-1), rtol=0, atol=1e-5)
        torch.testing.assert_close(last, ref_values[-1], rtol=0, atol=1e-5)
        # the state carried on is the one after the last step's observation
        torch.testing.assert_close(collector._state, ref_states[-2], rtol=0, atol=1e-5)
    env.close()


def test_a_truncated_episode_bootstraps_with_the_state_its_final_observation_was_seen_with():
    """SAME_STEP: the final observation comes in info; its value uses the state after the
    step (not a zero state, not the next episode's)."""
    torch.manual_seed(2)
    env = step_envs(AutoresetMode.SAME_STEP)
    policy = ActorCritic(
        env.single_observation_space,
        env.single_action_space,
        PolicyConfig.from_kwargs({"recurrent": "lstm"}),
    )
    collector = RolloutCollector(env, policy, 6, torch.device("cpu"), seed=0)
    rollout = collector.collect()
    obs = torch.cat([rollout.obs, rollout.next_obs[None]])
    truncated = torch.nonzero(rollout.final_mask)
    # episodes of 3 + i steps: env 0 truncated at steps 2 and 5, env 1 at 3, env 2 at 4
    assert truncated.tolist() == [[2, 0], [3, 1], [4, 2], [5, 0]]
    with torch.no_grad():
        _, states = reference_pass(policy, obs, rollout.initial_state)
        for t, i in truncated.tolist():
            final = torch.tensor([[3.0 + i, i]])  # the step count at the time limit
            seen_with = states[t, i][None]  # after the step's observation
            expected = policy.value(final, seen_with)[0]
            assert rollout.final_values[t, i] == pytest.approx(float(expected), abs=1e-6)
            assert float(expected) != pytest.approx(float(policy.value(final)[0]), abs=1e-4)
    env.close()


def test_predict_carries_the_state_and_save_load_acts_identically(tmp_path):
    model = A2C("MlpLstmPolicy", CUE, seed=0, **SOLVES)
    model.learn(2000)
    path = model.save(tmp_path / "m.acrl")
    loaded = A2C.load(path)
    assert loaded.policy.config.recurrent == "lstm"
    env = CueRecall()
    obs, _ = env.reset(seed=5)
    state = loaded_state = None
    for _ in range(5):
        action, state = model.predict(obs, state=state, deterministic=True)
        loaded_action, loaded_state = loaded.predict(obs, state=loaded_state, deterministic=True)
        assert action == loaded_action
        np.testing.assert_array_equal(state, loaded_state)
        obs, *_ = env.step(action)
    # episode_start zeroes a row; None is an episode's first step
    batch = np.stack([obs, obs])
    states = np.stack([state, state])
    _, from_start = model.predict(batch, state=states, episode_start=[True, False])
    _, fresh = model.predict(batch[:1])
    np.testing.assert_array_equal(from_start[0], fresh[0])
    assert not np.array_equal(from_start[0], from_start[1])
    with pytest.raises(ValueError, match="state must be what predict returned"):
        model.predict(batch, state=np.zeros((2, 3)))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_a2c_solves_cue_recall_where_a_feed_forward_policy_stays_at_chance(kind):
    results = {}
    for name, kwargs in (("memory", {"recurrent": kind}), ("mlp", {})):
        model = A2C("MlpPolicy", CUE, seed=0, policy_kwargs=kwargs, **SOLVES)
        model.learn(12_000)
        mean, _ = evaluate_policy(model, model.make_env(8, seed=100), 200, seed=100)
        results[name] = mean
    assert results["memory"] >= 0.95, results
    assert results["mlp"] <= 0.6, results  # exactly 0.5 in expectation: 200 episodes


def test_recurrent_a3c_solves_cue_recall_with_two_workers():
    """Asynchronous updates make the curve a matter of timing. Entropy 0.05 keeps the policy
    from settling on ignoring the cue before the LSTM keeps it: stopped once the last 100
    training episodes averaged 0.99, seeds 0-7 (twice each, two runs at once on our 2 cores)
    stopped after 3.4k-9.5k steps; at 0.01 one of 8 runs was still at chance after 100k. A
    fixed budget, not that stop: the workers' in-flight updates land after it, and the Ray
    runtime's twin of this test once evaluated below 0.95 just after its first solve. Seed 0
    passed 20 of 20 runs two at a time; a miss trains seed 1 once more."""
    misses = misses_until_a_seed_passes(lambda seed: a3c_cue_recall_miss(seed, 20_000))
    assert not misses, "; ".join(misses)  # feed-forward: 0.5


def test_a2c_resume_from_a_saved_model_equals_the_run_never_stopped(tmp_path):
    """The rule of --resume: the envs reset at the checkpoint (so the states start at zero),
    the RNGs restored from the file."""
    kwargs = {"seed": 3, "n_envs": 4, "n_steps": 8, "policy_kwargs": {"recurrent": "gru"}}
    reference = A2C("MlpPolicy", CUE, **kwargs)
    reference.learn(2000, callback=lambda m: m.num_timesteps < 640)
    reference.save(tmp_path / "at-640.acrl")
    reference.set_env(CUE)
    reference.learn(2000 - 640, reset_num_timesteps=False)

    resumed = A2C.load(tmp_path / "at-640.acrl")
    assert resumed.restore_rng_state()
    resumed.set_env(CUE)
    resumed.learn(2000 - 640, reset_num_timesteps=False)
    assert torch.equal(resumed.params.vector, reference.params.vector)


def test_lstm_policy_names_and_settings_are_checked():
    with pytest.raises(ValueError, match="MlpLstmPolicy is an LSTM policy"):
        A2C("MlpLstmPolicy", CUE, policy_kwargs={"recurrent": "gru"})
    with pytest.raises(ValueError, match="hidden_size must be an integer from 1"):
        A2C("MlpPolicy", CUE, policy_kwargs={"recurrent": "lstm", "lstm_hidden_size": 0})
    with pytest.raises(ValueError, match="give hidden_size or lstm_hidden_size"):
        A2C("MlpPolicy", CUE, policy_kwargs={"hidden_size": 8, "lstm_hidden_size": 8})
    with pytest.raises(ValueError, match="numpy' does not cover this model: a recurrent"):
        A2C("MlpLstmPolicy", CUE, backend="numpy")


@pytest.mark.parametrize(
    ("policy", "env_id"),
    [
        ("CnnLstmPolicy", "acrl-tests/PixelSide-v0"),
        ("MultiInputLstmPolicy", "acrl-tests/PixelDict-v0"),
    ],
)
def test_lstm_over_images_and_dicts_trains_predicts_and_records(policy, env_id, tmp_path):
    import tests.image_envs  # noqa: F401  (registers the pixel envs)
    from acrl.run.video import record_episodes

    model = A2C(policy, env_id, seed=0, n_envs=4, n_steps=5)
    model.learn(200)
    assert model.policy.recurrent and model.compute.backend == "torch"
    env = model.make_env(2, seed=1)
    obs, _ = env.reset(seed=1)
    actions, state = model.predict(obs)
    assert state.shape == (2, model.policy.state_size)
    env.close()
    loaded = A2C.load(model.save(tmp_path / "m.acrl"))
    _, lengths = evaluate_policy(
        loaded, loaded.make_env(2, seed=3), 4, seed=3, return_episode_rewards=True
    )
    assert lengths == [10] * 4  # whole episodes, the state carried through each
    (episode,) = record_episodes(loaded, env_id, tmp_path)
    assert episode.path.stat().st_size > 0 and episode.length == 10


def test_lstm_with_gsde_and_normalization_trains():
    model = A2C(
        "MlpLstmPolicy",
        "Pendulum-v1",
        seed=0,
        n_envs=4,
        use_sde=True,
        sde_sample_freq=4,
        normalize_obs=True,
        normalize_reward=True,
    )
    model.learn(400)
    assert model.policy.normalization.obs_rms.count > 400
    action, state = model.predict(np.zeros(3, np.float32), deterministic=True)
    assert action.shape == (1,) and state.shape == (model.policy.state_size,)


class RecordingModel:
    """Stands for a recurrent model in evaluate_policy: the state is the step count seen since
    the last episode start; records the observations and the states they were seen with."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        state = np.zeros(len(obs)) if state is None else np.where(episode_start, 0.0, state)
        self.seen += zip(obs[:, 0].tolist(), state.tolist(), strict=True)
        return np.zeros(len(obs), dtype=np.int64), state + 1


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_evaluation_starts_each_episode_from_a_zero_state(mode):
    model = RecordingModel()
    evaluate_policy(model, step_envs(mode), n_eval_episodes=9)
    # each observation is seen with as many steps of its episode as it counts, the final
    # observation of NEXT_STEP's reset step included
    assert model.seen and all(t == state for t, state in model.seen)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_a_lost_life_that_ends_the_learners_episode_zeroes_the_state(mode):
    from tests.envs import LivesEnv  # a life lost at steps 3 and 6, the game over at 9

    env = SyncVectorEnv([LivesEnv, LivesEnv], autoreset_mode=mode)
    policy = ActorCritic(
        env.single_observation_space,
        env.single_action_space,
        PolicyConfig.from_kwargs({"recurrent": "gru"}),
    )
    collector = RolloutCollector(
        env, policy, 12, torch.device("cpu"), seed=0, terminal_on_life_loss=True
    )
    rollout = collector.collect()
    obs = torch.cat([rollout.obs, rollout.next_obs[None]])[..., 0]
    assert torch.equal(rollout.starts, torch.isin(obs, torch.tensor([0.0, 3.0, 6.0])).float())


def test_a_shared_core_is_trained_by_the_actor_alone():
    """sb3-contrib's shared_lstm: the critic reads the core's output detached."""
    policy = ActorCritic(
        StepCount().observation_space,
        gym.spaces.Discrete(2),
        PolicyConfig.from_kwargs({"recurrent": "lstm", "shared_lstm": True}),
    )
    _, values = policy(torch.ones(4, 2))
    values.sum().backward()
    assert policy.memory is not None
    assert all(p.grad is None for p in policy.memory.parameters())
    assert policy.critic_head.weight.grad is not None
    with pytest.raises(ValueError, match="choose one"):  # as sb3-contrib refuses the pair
        PolicyConfig.from_kwargs({"shared_lstm": True, "enable_critic_lstm": True})


@pytest.mark.parametrize("env_id", sorted(NO_VELOCITY))
def test_no_velocity_tasks_zero_the_velocities_and_register_when_named(env_id):
    base, base_kwargs, hidden = NO_VELOCITY[env_id]
    env = make_vec_env(env_id, 2, seed=0)
    reference = make_vec_env(base, 2, seed=0, env_kwargs=base_kwargs, vectorization="sync")
    obs, _ = env.reset(seed=0)
    full, _ = reference.reset(seed=0)
    for _ in range(3):
        actions = env.action_space.sample()
        obs, *_ = env.step(actions)
        full, *_ = reference.step(actions)
    shown = [i for i in range(full.shape[1]) if i not in hidden]
    assert np.all(obs[:, list(hidden)] == 0) and np.any(full[:, list(hidden)] != 0)
    np.testing.assert_array_equal(obs[:, shown], full[:, shown])
    env.close()
    reference.close()


def test_memory_settings_need_a_recurrent_policy_and_feed_forward_files_record_none(tmp_path):
    with pytest.raises(ValueError, match="set a recurrent core, which this policy has not"):
        A2C("MlpPolicy", CUE, policy_kwargs={"lstm_hidden_size": 32})
    model = A2C("MlpLstmPolicy", CUE, policy_kwargs={"lstm_hidden_size": 32, "n_lstm_layers": 2})
    assert model.policy.state_size == 2 * 2 * 2 * 32  # actor and critic cores, h and c
    feed_forward = A2C("MlpPolicy", CUE)
    assert "hidden_size" not in feed_forward.config.to_dict()["policy_kwargs"]
    loaded = A2C.load(feed_forward.save(tmp_path / "ff.acrl"))
    assert not loaded.policy.recurrent
    action, state = loaded.predict(np.zeros(2, np.float32), state="passed through")
    assert state == "passed through"  # as SB3's predict


@pytest.mark.parametrize("kwargs", ARRANGEMENTS)
def test_every_arrangement_saves_and_loads(kwargs, tmp_path):
    model = A2C("MlpPolicy", CUE, n_envs=2, seed=0, policy_kwargs=kwargs)
    loaded = A2C.load(model.save(tmp_path / "m.acrl"))
    assert loaded.policy.config == model.policy.config
    assert torch.equal(loaded.params.vector, model.params.vector)


def test_settings_of_a_feed_forward_file_at_their_defaults_load():
    """Files and config.yaml written while feed-forward policies recorded the memory's
    defaults beside recurrent: none."""
    recorded = {"recurrent": "none", "hidden_size": 64, "n_recurrent_layers": 1}
    recorded |= {"shared_recurrent": False, "critic_recurrent": True}
    assert not A2C("MlpPolicy", CUE, policy_kwargs=recorded).policy.recurrent


def test_a_no_velocity_env_passed_as_an_object_is_rebuilt_from_its_id():
    model = A2C("MlpLstmPolicy", make_vec_env("CartPoleNoVel-v1", 2, seed=0))
    assert (model.env_id, model.env_kwargs, model.env_wrappers) == ("CartPoleNoVel-v1", {}, ())
    obs, _ = model.make_env(2, seed=1).reset(seed=1)
    assert np.all(obs[:, [1, 3]] == 0)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_evaluation_zeroes_the_state_at_a_lost_life_where_training_did(mode):
    from tests.envs import LivesEnv  # lives lost at steps 3 and 6, the game over at 9

    model = RecordingModel()
    model.config = A2CConfig(terminal_on_life_loss=True)
    env = SyncVectorEnv([LivesEnv, LivesEnv], autoreset_mode=mode)
    evaluate_policy(model, env, n_eval_episodes=4)
    # each observation (the step count) is seen with the steps since its life started
    assert model.seen and all(state == t - 3 * min(t // 3, 2) for t, state in model.seen)
