"""Links in a run directory: acrl never writes through a symlink or a hard link that sits
where its own files go. A run that would write through one refuses in one line before it
changes anything; a command that writes an output file (plot, video) replaces a symlink
there with its file and leaves the link's target alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import test_run_dirs
from tests.test_cli import acrl
from tests.test_run_dirs import one_line, tree

# the finished CartPole run of tests/test_run_dirs.py, and a copy of it for each test
finished = test_run_dirs.finished
run = test_run_dirs.run


@pytest.mark.parametrize("name", ["advantages.png", "metrics.csv", "episodes.csv"])
@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_at_a_run_files_name_stops_train_before_it_changes_anything(
    run, tmp_path, name, dangling
):
    target = tmp_path / "elsewhere.txt"
    if not dangling:
        target.write_text("keep")
    (run / name).unlink()
    (run / name).symlink_to(target)
    before = tree(run)
    for args in (
        ["train", "CartPole-v1", "--run-dir", run, "--overwrite", "--timesteps", 256],
        ["train", "--resume", run, "--timesteps", 3000],
    ):
        message = one_line(acrl(*args, "--no-progress"))
        assert f"{name} is a symlink" in message, message
        assert tree(run) == before  # the old run is all there: --overwrite removed nothing
        assert target.read_text() == "keep" if not dangling else not target.exists()


def test_a_folder_at_a_run_files_name_stops_overwrite_before_it_removes_anything(run):
    (run / "summary.json").mkdir()
    before = tree(run)
    args = ["train", "CartPole-v1", "--run-dir", run, "--overwrite", "--timesteps", 256]
    message = one_line(acrl(*args, "--no-progress"))
    assert "summary.json is not a regular file" in message
    assert tree(run) == before


def test_a_hard_linked_lock_file_is_refused_and_its_other_name_kept(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    os.link(notes, run / ".acrl.lock")
    before = tree(run)
    message = one_line(acrl("train", "--resume", run, "--timesteps", 3000, "--no-progress"))
    assert ".acrl.lock is not a file of acrl's own" in message
    assert tree(run) == before and notes.read_text() == "mine"


def test_plot_and_video_replace_a_symlink_at_their_output_and_leave_its_target(run, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    (run / "learning_curve.png").symlink_to(target)
    (run / "videos").mkdir()
    (run / "videos" / "episode.mp4").symlink_to(target)
    for args in (["plot", run], ["video", run]):
        result = acrl(*args)
        assert result.returncode == 0, result.stderr
    assert target.read_text() == "keep"
    for path in (run / "learning_curve.png", run / "videos" / "episode.mp4"):
        assert not path.is_symlink() and path.stat().st_size > 1000
    assert [p.name for p in (run / "videos").iterdir()] == ["episode.mp4"]  # no temp left


def test_a_script_that_trains_into_a_dir_with_a_symlinked_png_leaves_the_target(tmp_path):
    """learn() with a log_dir writes advantages.npy; acrl train's histogram replaces a link."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    code = (
        "import sys, pathlib\n"
        "from acrl.plotting.advantages import save_advantage_histogram\n"
        "import numpy as np\n"
        "run = pathlib.Path(sys.argv[1])\n"
        "np.save(run / 'advantages.npy', np.arange(10.0))\n"
        "save_advantage_histogram(run, 'x')\n"
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "advantages.png").symlink_to(target)
    subprocess.run([sys.executable, "-c", code, run_dir], check=True)
    assert target.read_text() == "keep" and not (run_dir / "advantages.png").is_symlink()


def test_learn_with_a_log_dir_never_writes_through_a_dangling_symlink(tmp_path):
    """The API's learn() checks a log_dir as the CLI checks a run dir."""
    from acrl import A2C
    from acrl.errors import UserError

    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    target = tmp_path / "created-elsewhere.csv"
    (log_dir / "metrics.csv").symlink_to(target)
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0, log_dir=log_dir)
    with pytest.raises(UserError, match="metrics.csv is a symlink"):
        model.learn(64)
    assert not target.exists()
