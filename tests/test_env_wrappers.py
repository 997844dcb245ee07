"""Env wrappers: the ``env_wrapper`` and ``frame_stack`` settings (applied to each env, saved
with the model, rebuilt by eval, video and --resume); the wrappers of an env wrapped in Python
(recorded from what Gymnasium reports of them, and rebuilt); and the rule for a wrapper's
module: Gymnasium's are rebuilt from a file, a user's only once the user imported it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.wrappers import TimeAwareObservation, TransformObservation

from acrl import A2C
from acrl.algorithms.registry import load_model
from acrl.config.wrappers import EnvWrapper, parse_env_wrapper, wrapper_stack
from acrl.envs.frame_skip import FrameSkip
from acrl.envs.wrappers import wrappers_of
from acrl.errors import UserError
from acrl.run.model_file import read_model
from tests.pngs import mp4_frames
from tests.test_cli import acrl, assert_user_error
from tests.user_pkg.wrappers import Unrecorded

ROOT = Path(__file__).parent.parent
TIME_AWARE = "gymnasium.wrappers:TimeAwareObservation"
USER_WRAPPER = "tests.user_pkg.wrappers:AppendConstant"


def small(env, **kwargs) -> A2C:
    """A tiny untrained model: what is tested here is its env, not its learning."""
    return A2C("MlpPolicy", env, n_steps=5, seed=0, policy_kwargs={"net_arch": [8]}, **kwargs)


def test_settings_parse_zoo_style():
    stack = wrapper_stack(
        [TIME_AWARE, {USER_WRAPPER: {"value": 2}}, {"mod:Cls": None}], frame_stack=4
    )
    assert [w.entry_point for w in stack] == [
        TIME_AWARE,
        USER_WRAPPER,
        "mod:Cls",
        "gymnasium.wrappers:FrameStackObservation",
    ]
    assert [w.kwargs for w in stack] == [{}, {"value": 2}, {}, {"stack_size": 4}]
    assert parse_env_wrapper(TIME_AWARE) == (EnvWrapper(TIME_AWARE, {}),)
    assert [w.to_setting() for w in stack[:2]] == [TIME_AWARE, {USER_WRAPPER: {"value": 2}}]
    assert EnvWrapper("m:C", {"shape": [2, [3]]}).arguments() == {"shape": (2, (3,))}


@pytest.mark.parametrize(
    "value, fragment",
    [
        (5, "env_wrapper entries are"),
        ([{"a:B": {}, "c:D": {}}], "env_wrapper entries are"),
        (["no_class"], 'is not "module:Class"'),
        (["a.b:C.D"], 'is not "module:Class"'),
        ([{"a:B": [1]}], "kwargs must be a mapping"),
        ([{"a:B": {"env": 1}}], "kwargs.env is the env it wraps"),
    ],
)
def test_bad_env_wrapper_entries_are_refused(value, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_env_wrapper(value)


def test_an_env_wrapped_in_python_is_rebuilt_by_eval_and_video(tmp_path):
    """The bug: a model of TimeAwareObservation(CartPole) recorded only CartPole-v1, and
    ``acrl eval`` of it stopped with a traceback (observation shape (2, 4) vs (5,))."""
    model = small(TimeAwareObservation(gym.make("CartPole-v1")))
    assert model.observation_space.shape == (5,)
    assert [w.name for w in model.env_wrappers] == ["TimeAwareObservation"]
    path = model.save(tmp_path / "time-aware.acrl")
    _, meta = read_model(path)
    assert meta["env_wrappers"][0]["kwargs"]["normalize_time"] is False
    loaded = A2C.load(path)
    env = loaded.make_env(2, seed=0)
    assert env.single_observation_space == model.observation_space
    env.close()
    result = acrl("eval", path, "--episodes", 2, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["episodes"] == 2
    result = acrl("video", path, "--out", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "v" / "episode.mp4").is_file()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_wrappers_of_make_vec_are_recorded(tmp_path, mode):
    env = gym.make_vec("CartPole-v1", 2, vectorization_mode=mode, wrappers=[TimeAwareObservation])
    model = small(env)
    assert [w.name for w in model.env_wrappers] == ["TimeAwareObservation"]
    assert model.env_kwargs == {}
    rebuilt = A2C.load(model.save(tmp_path / "vec.acrl")).make_env(1)
    assert rebuilt.single_observation_space.shape == (5,)
    rebuilt.close()
    env.close()


@pytest.mark.parametrize(
    "wrap, reason",
    [
        (lambda e: Unrecorded(e), "it does not record its arguments"),
        (
            lambda e: TransformObservation(e, lambda o: o, e.observation_space),
            "its arguments are not plain data",
        ),
    ],
    ids=["unrecorded", "function-argument"],
)
def test_a_wrapper_that_cannot_be_rebuilt_is_one_line(tmp_path, wrap, reason):
    model = small(wrap(gym.make("CartPole-v1")))
    path = model.save(tmp_path / "model.acrl")
    loaded = A2C.load(path)  # predicting needs no env
    assert loaded.predict(np.zeros(4, np.float32))[0].shape == ()
    with pytest.raises(UserError, match=f"cannot be rebuilt from its spec: {reason}"):
        loaded.make_env()
    if reason.startswith("it does not"):
        result = acrl("eval", path, "--episodes", 1)
        assert_user_error(result, "cannot be rebuilt from its spec", "--env-module")


def test_a_users_wrapper_is_rebuilt_only_with_env_module(tmp_path):
    model = small("CartPole-v1", n_envs=1, env_wrapper=[{USER_WRAPPER: {"value": 3.0}}])
    assert model.observation_space.shape == (5,)
    path = model.save(tmp_path / "user.acrl")
    result = acrl("eval", path, "--episodes", 1, cwd=ROOT)
    assert_user_error(
        result, USER_WRAPPER, "never imports", "pass --env-module tests.user_pkg.wrappers"
    )
    flag = ["--env-module", "tests.user_pkg.wrappers"]
    result = acrl("eval", path, "--episodes", 1, "--json", *flag, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_wrappers_from_the_cli_are_saved_and_rebuilt(tmp_path):
    """env_wrapper (from --config, with kwargs) and frame_stack (from --set): config.yaml and
    the model file record them; eval, video and --resume rebuild the same observations."""
    config = tmp_path / "wrapped.yml"
    config.write_text(
        yaml.safe_dump(
            {"env_id": "CartPole-v1", "env_wrapper": [{TIME_AWARE: {"normalize_time": True}}]}
        )
    )
    run = tmp_path / "run"
    train = ["--config", config, "--set", "frame_stack=3", "--timesteps", 200, "--n-envs", 2]
    result = acrl("train", *train, "--run-dir", run, "--no-progress", "--checkpoint-every", 100)
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["env_wrapper"] == [{TIME_AWARE: {"normalize_time": True}}]
    assert saved["frame_stack"] == 3
    model = load_model(run)
    assert model.observation_space.shape == (3, 5)
    assert [w.name for w in model.env_wrappers] == [
        "TimeAwareObservation",
        "FrameStackObservation",
    ]
    env = model.make_env(1, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 3, 5)
    obs, *_ = env.step(np.zeros(1, np.int64))
    assert obs[0, -1, -1] == pytest.approx(1 / 500)  # normalize_time reached the wrapper
    env.close()
    result = acrl("video", run, "--out", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    result = acrl("train", "--resume", run, "--timesteps", 300, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert load_model(run).num_timesteps >= 300


def test_resume_refuses_a_checkpoint_with_other_wrappers(tmp_path, monkeypatch, capsys):
    from acrl.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["train", "CartPole-v1", "--timesteps", "64", "--n-envs", "2", "--no-progress"]
    assert main([*argv, "--set", "frame_stack=2", "--run-dir", "run"]) == 0
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({**config, "frame_stack": 4}))
    capsys.readouterr()
    assert main(["train", "--resume", "run", "--timesteps", "128", "--no-progress"]) == 2
    assert "its env wrappers are" in capsys.readouterr().err


def test_wrappers_that_change_nothing_seen_are_left_out_and_vector_wrappers_named():
    """RecordEpisodeStatistics or RecordVideo around a Python env change nothing the policy
    sees: not recorded (a file naming RecordVideo would not be rebuilt). A vector wrapper
    (not in the env specs) is recorded as one that cannot be rebuilt, so eval says so."""
    inner = gym.wrappers.TimeAwareObservation(gym.make("CartPole-v1"))
    recorded = wrappers_of(gym.wrappers.RecordEpisodeStatistics(inner))
    assert [w.name for w in recorded] == ["TimeAwareObservation"]
    vector = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    (normalize,) = wrappers_of(gym.wrappers.vector.NormalizeObservation(vector))
    assert normalize.name == "NormalizeObservation" and "vector wrapper" in normalize.problem
    assert wrappers_of(gym.wrappers.vector.RecordEpisodeStatistics(vector)) == ()


class Counter(gym.Env):
    """Observation and reward t at step t; terminated at step 5."""

    observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), float(self.t), self.t == 5, False, {"t": self.t}


def test_frame_skip_repeats_the_action_sums_rewards_and_stops_where_the_episode_ends():
    env = FrameSkip(Counter(), skip=2)
    env.reset(seed=0)
    steps = [env.step(0) for _ in range(3)]
    assert [(s[0][0], s[1], s[2], s[3], s[4]["t"]) for s in steps] == [
        (2.0, 3.0, False, False, 2),
        (4.0, 7.0, False, False, 4),
        (5.0, 5.0, True, False, 5),  # terminated on the way: one frame, not two
    ]
    env = FrameSkip(gym.wrappers.TimeLimit(Counter(), max_episode_steps=3), skip=2)
    env.reset(seed=0)
    env.step(0)
    obs, reward, terminated, truncated, _ = env.step(0)
    assert (obs[0], reward, terminated, truncated) == (3.0, 3.0, False, True)
    with pytest.raises(ValueError, match="skip must be an integer >= 1"):
        FrameSkip(Counter(), skip=0)


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_the_car_racing_preset_trains_from_pixels_and_its_video_shows_the_game(tmp_path, algo):
    """CarRacing-v3's presets: 2 frames a step, 64x64 grey, 2 stacked; the video is the game's
    own 600x400 RGB screen, one frame a step, played at 50 / 2 frames a second."""
    run = tmp_path / "run"
    args = ["CarRacing-v3", "--timesteps", 32, "--n-envs", 2, "--run-dir", run, "--no-progress"]
    if algo == "a3c":
        args += ["--algo", "a3c", "--workers", 2]
    result = acrl("train", *args)
    assert result.returncode == 0, result.stderr
    assert f"{algo.upper()} on CarRacing-v3" in result.stdout
    assert "preset: CarRacing-v3" in result.stdout
    model = load_model(run)
    assert model.observation_space.shape == (2, 64, 64)
    assert model.observation_space.dtype == np.uint8
    assert [w.name for w in model.env_wrappers] == [
        "FrameSkip",
        "ResizeObservation",
        "GrayscaleObservation",
        "FrameStackObservation",
    ]
    if algo == "a3c":
        return  # the same wrappers: one video is enough
    result = acrl("video", run, "--out", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    steps = int(re.search(r", (\d+) steps", result.stdout).group(1))
    assert 0 < steps <= 500  # the 1,000-frame limit, two frames a step
    frames, size, fps = mp4_frames(tmp_path / "v" / "episode.mp4")
    assert frames == steps + 1 and size == (600, 400) and fps == 25
