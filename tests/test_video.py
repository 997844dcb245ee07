"""Videos of saved models (``acrl video``) and during training (``--video-every``)."""

import re

import numpy as np
import pytest
import torch

from acrl.algorithms.registry import load_model
from tests.pngs import mp4_frames
from tests.test_cli import acrl, assert_user_error
from tests.test_plots import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(tmp_path_factory.mktemp("video") / "run", "--seed", 0)


def test_video_records_episodes_frame_for_frame(run_dir, tmp_path):
    result = acrl("video", run_dir, "--episodes", 2, "--out", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for i, line in enumerate(lines):
        path, episode_return, steps = re.fullmatch(
            r"(\S+): return (\S+), (\d+) steps", line
        ).groups()
        assert path == str(tmp_path / "v" / f"episode-{i}.mp4")
        assert float(episode_return) == int(steps)  # CartPole: +1 per step
        frames, size, fps = mp4_frames(tmp_path / "v" / f"episode-{i}.mp4")
        assert frames == int(steps) + 1  # the initial state, then one frame per step
        assert size == (600, 400) and fps == 50


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["video", "{run}", "--episodes", "0"], "--episodes must be >= 1"),
        (["video", "{tmp}/missing.acrl"], "missing.acrl"),
        (["video", "{tmp}"], "{tmp}"),
    ],
)
def test_video_mistakes_are_one_line_with_status_2(run_dir, tmp_path, args, fragment):
    args = [a.format(tmp=tmp_path, run=run_dir) for a in args]
    assert_user_error(acrl(*args), fragment.format(tmp=tmp_path))


def test_video_every_records_during_training_without_changing_it(tmp_path):
    plain = train(tmp_path / "plain", "--seed", 3)
    filmed = train(tmp_path / "filmed", "--seed", 3, "--video-every", 1500)
    videos = sorted((filmed / "videos").glob("step-*.mp4"))
    assert [v.name for v in videos] == ["step-000001504.mp4", "step-000003008.mp4"]
    for video in videos:
        frames, _, _ = mp4_frames(video)
        assert 9 <= frames <= 501  # one whole CartPole episode
    a, b = load_model(plain).policy.state_dict(), load_model(filmed).policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    returns = [
        np.loadtxt(d / "episodes.csv", delimiter=",", skiprows=1)[:, 2] for d in (plain, filmed)
    ]
    assert np.array_equal(*returns)
