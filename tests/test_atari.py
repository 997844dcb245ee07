"""Atari: the zoo's preprocessing as a wrapper stack, run by ale-py's C++ AtariVectorEnv or by
Gymnasium's wrappers over Python envs; training signals (clipped rewards, a lost life as a
terminal) seen by the learner only, while logged and evaluated returns are full games' scores;
TensorFlow's RMSprop; the presets."""

import csv
import re

import gymnasium as gym
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from acrl import A2C, atari_kwargs, evaluate_policy, make_vec_env
from acrl.config.hyperparams import A2CConfig
from acrl.config.runs import resolve_run_config
from acrl.config.wrappers import EnvWrapper
from acrl.engines.hogwild_memory import share_model_and_optimizer
from acrl.envs import describe_envs
from acrl.envs.atari import atari_wrappers, is_native_atari, native_atari_kwargs
from acrl.errors import UserError
from acrl.learner.optim import RMSpropTFLike, make_optimizer
from acrl.learner.rollout import RolloutCollector
from acrl.run.video import record_episodes
from tests.envs import LivesEnv
from tests.test_cli import acrl

GAME = "ALE/SpaceInvaders-v5"  # every point scored is 5-30: a full game's score is no count
ATARI = atari_kwargs()


def test_rmsprop_tf_like_starts_at_one_with_epsilon_inside_the_root():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = RMSpropTFLike(p, lr=0.1, alpha=0.9, eps=0.01)
    expected, square = [1.0, -2.0], [1.0, 1.0]
    for grads in ([0.5, 1.0], [-1.0, 0.25]):
        p.grad = torch.tensor(grads, dtype=torch.float64)
        optimizer.step()
        for i, g in enumerate(grads):
            square[i] = 0.9 * square[i] + 0.1 * g * g
            expected[i] -= 0.1 * g / (square[i] + 0.01) ** 0.5
    assert p.detach().tolist() == pytest.approx(expected, abs=1e-15)
    # by hand for the first entry: v = 0.9 + 0.1 * 0.5^2 = 0.925, then 0.9 * 0.925 + 0.1 = 0.9325
    assert expected[0] == pytest.approx(1.0 - 0.05 / 0.935**0.5 + 0.1 / 0.9425**0.5, abs=1e-15)


def test_rms_prop_tf_like_is_a_setting_and_its_shared_state_starts_at_one():
    vector = torch.zeros(3, requires_grad=True)
    config = A2CConfig(rms_prop_tf_like=True, rms_prop_eps=1e-5)
    optimizer = make_optimizer(vector, config, torch.zeros(3, dtype=torch.bool))
    assert isinstance(optimizer, RMSpropTFLike)
    state = share_model_and_optimizer(torch.nn.Linear(1, 1), optimizer)
    assert state["square_avg"].tolist() == [1.0, 1.0, 1.0] and state["square_avg"].is_shared()
    with pytest.raises(ValueError, match="rms_prop_tf_like is a kind of RMSprop"):
        A2CConfig(rms_prop_tf_like=True, use_rms_prop=False)
    for setting in ("rms_prop_tf_like", "clip_reward", "terminal_on_life_loss"):
        with pytest.raises(ValueError, match=f"{setting} must be true or false"):
            A2CConfig(**{setting: 1})


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_the_learner_sees_clipped_rewards_and_lives_while_episodes_are_games(mode):
    env = SyncVectorEnv([LivesEnv], autoreset_mode=mode)
    model = A2C("MlpPolicy", env, n_steps=10)
    collector = RolloutCollector(
        env, model.policy, 10, model.device, seed=0, clip_reward=True, terminal_on_life_loss=True
    )
    rollout = collector.collect()
    # steps 1-9 of the game, then NEXT_STEP's reset step or SAME_STEP's next game's first
    first_of_next = [1.0] if mode is AutoresetMode.SAME_STEP else [0.0]
    assert rollout.rewards[:, 0].tolist() == [1, 0, -1, 1, 1, 0, 1, 0, 1, *first_of_next]
    lives_lost = [0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    assert rollout.terminated[:, 0].tolist() == lives_lost
    assert rollout.done[:, 0].tolist() == lives_lost
    valid = [1.0] * 9 + ([1.0] if mode is AutoresetMode.SAME_STEP else [0.0])
    assert rollout.valid[:, 0].tolist() == valid
    assert collector.episodes.drain() == [(31.0, 9)]  # the game: every life, every point


def test_terminal_on_life_loss_needs_lives_in_the_info():
    env = make_vec_env("CartPole-v1", 2, seed=0)
    model = A2C("MlpPolicy", env)
    collector = RolloutCollector(env, model.policy, 5, model.device, terminal_on_life_loss=True)
    with pytest.raises(UserError, match=r"terminal_on_life_loss needs lives .* reports none"):
        collector.collect()
    with pytest.raises(UserError, match=r"needs lives in the env's info, and CartPole-v1"):
        A2C("MlpPolicy", "CartPole-v1", terminal_on_life_loss=True)  # before any training


def test_the_preprocessing_translates_to_ale_pys_vector_env():
    kwargs, why = native_atari_kwargs("ALE/Pong-v5", {"frameskip": 1}, atari_wrappers())
    assert why == "" and kwargs == {
        "game": "pong",
        "repeat_action_probability": 0.25,  # v5's sticky actions
        "full_action_space": False,
        "max_num_frames_per_episode": 108_000,
        "img_height": 84,
        "img_width": 84,
        "grayscale": True,
        "stack_num": 4,
        "frameskip": 4,
        "maxpool": True,
        "noop_max": 30,
        "use_fire_reset": True,
        "episodic_life": False,
        "reward_clipping": False,
    }
    v4, _ = native_atari_kwargs("BreakoutNoFrameskip-v4", {}, atari_wrappers(fire_reset=False))
    assert v4 is not None and v4["repeat_action_probability"] == 0.0
    assert not v4["use_fire_reset"] and v4["game"] == "breakout"


@pytest.mark.parametrize(
    "env_kwargs, wrappers, reason",
    [
        ({}, atari_wrappers(), "needs env_kwargs.frameskip 1"),
        ({"frameskip": 1, "mode": 1}, atari_wrappers(), "takes no env_kwargs.mode"),
        ({"frameskip": 1}, atari_wrappers(frame_stack=1), "in this order"),
        ({"frameskip": 1}, atari_wrappers(terminal_on_life_loss=True), "no life-loss terminal"),
        (
            {"frameskip": 1},
            (
                *atari_wrappers(frame_stack=1),
                EnvWrapper("gymnasium.wrappers:FrameStackObservation", {"stack_size": 4}),
            ),
            "pads a new episode's stack with zeros",
        ),
    ],
)
def test_what_the_vector_env_cannot_run_is_said(env_kwargs, wrappers, reason):
    kwargs, why = native_atari_kwargs("ALE/Pong-v5", env_kwargs, wrappers)
    assert kwargs is None and reason in why
    if "frameskip" in env_kwargs:  # (AtariPreprocessing itself refuses frameskip 4)
        with pytest.raises(
            UserError,
            match=r"AtariVectorEnv \(vectorization native\) cannot run this: .*"
            + re.escape(reason),
        ):
            make_vec_env(
                "ALE/Pong-v5", 1, env_kwargs=env_kwargs, vectorization="native", wrappers=wrappers
            )


def test_both_vectorizations_give_the_same_spaces_zero_padding_and_lives():
    envs = [
        make_vec_env(
            GAME, 2, seed=0, env_kwargs={"frameskip": 1}, vectorization=v, wrappers=atari_wrappers()
        )
        for v in ("auto", "sync")
    ]
    native, python = envs
    assert is_native_atari(native.unwrapped) and isinstance(python, SyncVectorEnv)
    assert describe_envs(native) == "2 x AtariVectorEnv (ale-py, C++)"
    for env in envs:
        assert env.single_observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
        assert env.single_action_space == gym.spaces.Discrete(6)
        assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        obs, info = env.reset(seed=0)
        assert obs[:, :3].max() == 0 and obs[:, 3].max() > 0  # zeros before the first frame
        assert info["lives"].tolist() == [3, 3]
        env.close()


def test_the_cpp_env_takes_every_seed_acrl_takes():
    """Its C++ int holds seeds below 2^31: env i gets (seed + i) mod 2^31."""
    kwargs = {"env_kwargs": {"frameskip": 1}, "wrappers": atari_wrappers()}
    big = make_vec_env(GAME, 2, seed=2**32 - 1, **kwargs)
    small = make_vec_env(GAME, 2, seed=2**31 - 1, **kwargs)
    assert is_native_atari(big.unwrapped)
    actions = np.array([1, 1])
    for _ in range(30):
        a, b = big.step(actions)[0], small.step(actions)[0]
    assert np.array_equal(a, b)


def test_loading_with_another_optimizer_starts_it_fresh(tmp_path):
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0)
    model.learn(100)
    model.save(tmp_path / "m.acrl")
    tf_like = A2C.load(tmp_path / "m.acrl", rms_prop_tf_like=True)
    state = tf_like.optimizer.state
    assert isinstance(tf_like.optimizer, RMSpropTFLike) and state["square_avg"].eq(1).all()
    again = A2C.load(tmp_path / "m.acrl")
    saved = again.optimizer.state
    assert not saved["square_avg"].eq(1).all()  # the file's own statistics
    tf_like.set_env("CartPole-v1")
    tf_like.learn(100)


def test_atari_trains_on_clipped_rewards_and_logs_and_evaluates_the_games_scores(tmp_path):
    """Through Gymnasium's wrappers (the CLI test below takes the C++ env)."""
    model = A2C(
        "CnnPolicy", GAME, n_envs=2, vectorization="sync", seed=0, log_dir=tmp_path, **ATARI
    )
    assert isinstance(model.env.unwrapped, SyncVectorEnv)
    model.learn(1200)
    collector = model._engine.collector
    assert collector._obs.dtype == np.uint8 and collector._obs.shape == (6, 2, 4 * 84 * 84)
    learner_rewards = collector.rollout.rewards.numpy()
    assert set(np.unique(learner_rewards)) <= {-1.0, 0.0, 1.0}
    with open(tmp_path / "episodes.csv") as f:
        games = [(float(r["return"]), int(r["length"])) for r in csv.DictReader(f)]
    assert games, "no game ended in 1200 steps"
    assert all(score % 5 == 0 for score, _ in games) and max(s for s, _ in games) >= 30
    assert min(length for _, length in games) > 150  # three lives, not one
    scores, lengths = evaluate_policy(model, model.make_env(1), 1, return_episode_rewards=True)
    assert scores[0] % 5 == 0 and scores[0] >= 30 and lengths[0] > 150  # a full game


def test_cli_trains_an_atari_game_with_the_cpp_env_then_eval_and_video_rebuild_it(tmp_path):
    """The model file's wrappers run in the C++ env for evaluation; the video shows the
    game's own screen (210x160 RGB) in real time (60 Hz over 4 frames a step), not the 84x84
    grey frames the policy sees. (`acrl video` itself: tests/test_minatar.py.)"""
    run = tmp_path / "run"
    result = acrl(
        "train", GAME, "--n-envs", "2", "--timesteps", "600", "--run-dir", run, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert "(preset: atari" in result.stdout and "2 x AtariVectorEnv (ale-py, C++)" in result.stdout
    assert "A.L.E" not in result.stdout + result.stderr  # no banner per env
    model = A2C.load(run / "model.acrl")  # the file's wrappers, rebuilt in the C++ env
    env = model.make_env(1, seed=5)
    assert is_native_atari(env.unwrapped)
    scores, lengths = evaluate_policy(model, env, 1, return_episode_rewards=True)
    assert scores[0] % 5 == 0 and lengths[0] > 150
    (video,) = record_episodes(
        model, GAME, tmp_path, env_kwargs=model.env_kwargs, wrappers=model.env_wrappers
    )
    assert video.episode_return % 5 == 0
    frames = imageio_ffmpeg.read_frames(str(video.path))
    meta = next(frames)
    assert tuple(meta["size"]) == (160, 210) and meta["fps"] == 15
    frame = np.frombuffer(next(frames), np.uint8).reshape(210, 160, 3)
    assert len({tuple(px) for px in frame.reshape(-1, 3)}) > 2  # colours, not grey


def test_atari_presets_are_the_zoos_settings_and_run_in_the_cpp_env():
    pong = resolve_run_config("ALE/Pong-v5")
    hyper = pong.hyperparams
    assert pong.preset == "ALE/Pong-v5" and pong.n_envs == 16 and hyper.n_steps == 5
    assert hyper.rms_prop_tf_like and hyper.rms_prop_eps == 1e-5 and hyper.learning_rate == 7e-4
    assert (hyper.vf_coef, hyper.ent_coef) == (0.25, 0.01)
    assert hyper.clip_reward and hyper.terminal_on_life_loss
    ours = native_atari_kwargs(pong.env_id, pong.env_kwargs, pong.wrappers)
    api = atari_kwargs()
    assert ours == native_atari_kwargs(pong.env_id, api["env_kwargs"], atari_wrappers())
    assert ours[0] is not None  # the preset runs in the C++ env
    assert resolve_run_config("SeaquestNoFrameskip-v4").preset == "atari"
    a3c = resolve_run_config("ALE/Seaquest-v5", algo="a3c")
    assert a3c.preset == "atari" and a3c.hyperparams.clip_reward and a3c.n_envs == 8
