"""MinAtar (10x10 bool images, the CPU-scale pixel games) and ALE ids: registered by acrl
without an import of the user's, trained through the CNN path with a threshold that a policy
blind to the pixels cannot pass, evaluated, filmed, run by A3C's workers; and a missing
package named in one line."""

import json

import numpy as np
import pytest
import torch

import acrl.envs.families as families
from acrl import A2C, evaluate_policy, make_vec_env
from acrl.config.runs import resolve_run_config
from acrl.envs import check_env_id
from acrl.errors import UserError
from acrl.learner.rollout import RolloutCollector
from tests.test_cli import acrl

BREAKOUT = "MinAtar/Breakout-v1"
CHANNELS_LAST = {"image_channels": "last"}


def test_family_ids_need_no_import_and_get_the_family_preset():
    check_env_id("ALE/Pong-v5")  # ale-py registers its envs on demand
    check_env_id("MinAtar/Seaquest-v1")
    run = resolve_run_config("MinAtar/Seaquest-v1")
    assert run.preset == "minatar" and run.env_id == "MinAtar/Seaquest-v1"
    assert run.hyperparams.policy_config.image_channels == "last"  # 10x10x10 is ambiguous
    own = resolve_run_config("CartPole-v1")
    assert own.preset == "CartPole-v1"


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch):
    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(families.importlib, "import_module", missing)
    with pytest.raises(UserError, match=r"needs the minatar package: pip install 'acrl\[atari\]'"):
        families.ensure_registered("MinAtar/NoSuchGame-v1")


def test_bool_frames_are_stored_as_bytes_and_seen_channels_last():
    env = make_vec_env(BREAKOUT, 4, seed=0)
    model = A2C("CnnPolicy", env, n_steps=5, policy_kwargs=CHANNELS_LAST)
    assert model.policy.encoder.pixels[0].chw == (4, 10, 10)
    collector = RolloutCollector(env, model.policy, n_steps=5, gamma=0.99, device=model.device)
    rollout = collector.collect()
    assert rollout.obs.dtype == torch.uint8 and rollout.obs.shape == (5, 4, 400)
    assert set(np.unique(rollout.obs.numpy())) <= {0, 1}


def test_a2c_learns_breakout_from_the_pixels():
    """Random actions score 0.44 an episode and the best constant action 0.5 (50 episodes);
    seeds 0-2 score 4.5-4.8 after these 100k steps (about 10 s each here)."""
    model = A2C(
        "CnnPolicy",
        make_vec_env(BREAKOUT, 16, seed=0),
        n_steps=5,
        learning_rate=2e-3,
        ent_coef=0.01,
        seed=0,
        device="cpu",
        policy_kwargs=CHANNELS_LAST,
    )
    model.learn(100_000)
    mean, _ = evaluate_policy(model, make_vec_env(BREAKOUT, 8, seed=100), 16)
    assert mean >= 3.0


def test_cli_trains_evaluates_and_films_minatar(tmp_path):
    """(A3C's workers on images: tests/test_image_learning.py.)"""
    run = tmp_path / "run"
    result = acrl("train", BREAKOUT, "--timesteps", "500", "--run-dir", run, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (
        "(preset: MinAtar/Breakout-v1" in result.stdout
        and "numpy backend, 1 torch thread (auto: a small CNN on the CPU" in result.stdout
    )
    result = acrl("eval", run, "--episodes", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["episodes"] == 2
    result = acrl("video", run, "--out", tmp_path / "videos")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "videos" / "episode.mp4").stat().st_size > 0
    # MinAtar declares no render_fps and renders floats: handled, so nothing to warn of
    assert "Warning" not in result.stderr, result.stderr
