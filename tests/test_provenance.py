"""acrl replaces or removes a file under one of its names only if the file holds what acrl
writes there (acrl.run.provenance): ``--overwrite``, ``--resume``, ``learn()`` with a
``log_dir``, the default outputs of ``plot``, ``report`` and ``export``, ``acrl video``'s
files and EvalCallback's ``log_path``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acrl import A2C
from acrl.errors import UserError
from acrl.run.owned import RUN_FILES
from acrl.run.provenance import check_for, written_by_acrl
from tests.test_cli import acrl
from tests.test_run_dirs import FIRST, one_line, tree


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """A finished run with every kind of file acrl writes in a run dir: evaluations and the
    best model, a video, TensorBoard events, plots, a report, ONNX and TorchScript exports,
    and a --seeds run's summary."""
    run_dir = tmp_path_factory.mktemp("full") / "run"
    args = ["--timesteps", 1024, "--checkpoint-every", 512, "--eval-every", 512]
    args += ["--eval-episodes", 1, "--video-every", 512, "--no-progress"]
    result = acrl("train", "CartPole-v1", "--run-dir", run_dir, *args)
    assert result.returncode == 0, result.stderr
    for command in (["plot"], ["report"], ["export"], ["export", "--format", "torchscript"]):
        source = run_dir / "model.acrl" if command[0] == "export" else run_dir
        result = acrl(command[0], source, *command[1:])
        assert result.returncode == 0, (command, result.stderr)
    A2C("MlpPolicy", "CartPole-v1", n_envs=2, n_steps=4, log_dir=run_dir / "tb").learn(16)
    for path in (run_dir / "tb").glob("events.out.tfevents.*"):
        path.rename(run_dir / path.name)
    shutil.rmtree(run_dir / "tb")
    seeds = tmp_path_factory.mktemp("seeds") / "run"
    result = acrl("train", "CartPole-v1", "--seeds", "0,1", "--timesteps", 256, "--run-dir", seeds)
    assert result.returncode == 0, result.stderr
    shutil.copy(seeds / "summary.json", run_dir)  # a --seeds run's, at the top of its dir
    return run_dir


def test_every_file_acrl_writes_is_known_as_its_own_by_content(full):
    names = {p.name for p in full.iterdir()}
    assert set(RUN_FILES) <= names, set(RUN_FILES) - names
    files = [p for p in full.rglob("*") if p.is_file() and p.name != ".acrl.lock"]
    kinds = {p.suffix for p in files} | {
        "events.out.tfevents" for p in files if "tfevents" in p.name
    }
    assert {".mp4", ".acrl", ".onnx", ".pt", ".png", "events.out.tfevents"} <= kinds, kinds
    for path in files:
        assert written_by_acrl(path), path
        cut = path.with_name(path.name + ".cut")  # a kill's cut header is still acrl's
        cut.write_bytes(path.read_bytes()[: 7 if path.suffix == ".csv" else 4096])
        if path.suffix in (".csv", ".mp4", ".png", ".npy", ".html", ".onnx"):
            assert check_for(path.name)(cut), path
        cut.unlink()


@pytest.mark.parametrize(
    "name, content",
    [
        ("report.html", b"<html>my notes on the run</html>"),
        ("policy.onnx", b"an ONNX model from another project"),
        ("policy.pt", b"a torch.save'd dict"),
        ("metrics.csv", b"revenue,cost\n1,2\n"),
        ("learning_curve.png", b"\x89PNG\r\n\x1a\n a screenshot"),
        ("model.acrl", b'\x10\x00\x00\x00\x00\x00\x00\x00{"format":"other"}'),
        ("checkpoints/step-000000000512.acrl", b"my own checkpoint"),
        ("videos/step-000000512.mp4", b"not a video"),
        ("events.out.tfevents.1.host", b"a log of mine"),
    ],
)
def test_overwrite_keeps_a_run_dir_with_a_users_file_under_an_acrl_name(
    full, tmp_path, name, content
):
    run = tmp_path / "run"
    shutil.copytree(full, run, symlinks=True)
    (run / name).write_bytes(content)
    before = tree(run)
    message = one_line(acrl("train", "CartPole-v1", "--run-dir", run, "--overwrite"))
    assert f"{name} does not hold what acrl writes under that name" in message, message
    assert tree(run) == before


@pytest.mark.parametrize(
    "name",
    [
        "metrics.csv",
        "report.html",
        "videos/step-000001536.mp4",  # --video-every would replace it
        "checkpoints/step-000000001536.acrl",
    ],
)
def test_resume_keeps_a_run_dir_with_a_users_file_under_an_acrl_name(full, tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(full, run, symlinks=True)
    (run / name).write_text("revenue,cost\n1,2\n")  # resume would have rebuilt its header
    before = tree(run)
    message = one_line(acrl("train", "--resume", run, "--timesteps", 2048, "--video-every", 512))
    assert f"{name} does not hold what acrl writes under that name" in message, message
    assert tree(run) == before


def test_learn_never_replaces_a_users_config_yaml_in_its_log_dir(tmp_path):
    (tmp_path / "config.yaml").write_text("database: postgres\n")
    before = tree(tmp_path)
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, n_steps=4, log_dir=tmp_path)
    with pytest.raises(UserError, match="config.yaml does not hold what acrl writes"):
        model.learn(16)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "command, name",
    [
        (["plot"], "learning_curve.png"),
        (["plot"], "learning_curve-diagnostics.png"),
        (["report"], "report.html"),
        (["export"], "policy.onnx"),
        (["export", "--format", "torchscript"], "policy.pt"),
    ],
)
def test_default_outputs_never_replace_a_users_file(full, tmp_path, command, name):
    run = tmp_path / "run"
    shutil.copytree(full, run, symlinks=True)
    (run / name).write_text("the user's own")
    before = tree(run)
    source = run / "model.acrl" if command[0] == "export" else run
    message = one_line(acrl(command[0], source, *command[1:]))
    assert f"{run / name} does not hold what acrl writes under that name" in message, message
    assert "--out" in message and tree(run) == before
    out = tmp_path / ("elsewhere" + Path(name).suffix)
    assert acrl(command[0], source, *command[1:], "--out", out).returncode == 0
    assert out.is_file() and tree(run) == before  # --out names a file of the user's choice


def test_overwrite_removes_every_kind_of_file_acrl_wrote(full, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full, run, symlinks=True)
    (run / "episodes.csv").write_bytes(b"timesteps,wall_t")  # a header a kill cut
    (run / "advantages.npy").write_bytes(b"")  # an empty file: nothing to lose
    (run / "notes.txt").write_text("mine")
    before = tree(run)
    result = acrl("train", "CartPole-v1", "--run-dir", run, "--overwrite", *FIRST[:2])
    assert result.returncode == 0, result.stderr
    after = tree(run)
    assert after["notes.txt"] == before["notes.txt"]
    kept = [p for p, h in before.items() if after.get(p) == h and h != "dir" and p != "notes.txt"]
    assert kept == [], kept  # each of the old run's files removed, or written anew


def test_video_replaces_only_its_own_videos(full, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full, run, symlinks=True)
    ours = next((run / "videos").glob("step-*.mp4"))
    (run / "videos" / "episode.mp4").write_bytes(b"my holiday film")
    before = tree(run)
    message = one_line(acrl("video", run))
    assert f"{run / 'videos' / 'episode.mp4'} does not hold what acrl writes" in message
    assert tree(run) == before
    earlier = ours.read_bytes() + b"an earlier run's"  # an acrl video (MP4): replaced
    (run / "videos" / "episode.mp4").write_bytes(earlier)
    result = acrl("video", run)
    assert result.returncode == 0, result.stderr
    assert (run / "videos" / "episode.mp4").read_bytes() != earlier


def test_eval_callback_never_replaces_a_users_evaluations_csv(full, tmp_path):
    from acrl.run.eval_callback import EvalCallback

    (tmp_path / "evaluations.csv").write_text("date,weight\n2026-12-01,71.5\n")
    before = tree(tmp_path)
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, n_steps=4)
    callback = EvalCallback(eval_freq=8, n_eval_episodes=1, log_path=tmp_path)
    with pytest.raises(UserError, match="evaluations.csv does not hold what acrl writes"):
        model.learn(16, callback=callback)
    assert tree(tmp_path) == before and model.num_timesteps == 0
    shutil.copy(full / "evaluations.csv", tmp_path)  # acrl's own: training goes on
    model.learn(16, callback=EvalCallback(eval_freq=8, n_eval_episodes=1, log_path=tmp_path))
    assert model.num_timesteps == 16
