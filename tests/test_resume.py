"""Checkpoints and --resume: a run survives being killed at any moment."""

import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from acrl.algorithms.registry import load_model, make_model
from acrl.config.runs import resolve_run_config
from acrl.plotting.runs import read_columns
from acrl.run.owned import remove_stale_temp_files
from acrl.run.run_files import truncate_logs
from tests.test_cli import acrl, acrl_argv

TRAIN = ["train", "CartPole-v1", "--n-envs", "4", "--seed", "3", "--log-interval", "5"]


def test_resume_equals_a_run_whose_envs_were_reset_at_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TRAIN, "--timesteps", 6000, "--checkpoint-every", 2000, "--run-dir", run_dir]
    args += ["--set", "normalize_value_targets=true"]  # statistics in the checkpoint too
    assert acrl(*args).returncode == 0
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step-000000002016.acrl", "step-000000004032.acrl"]
    # A crash right after the first checkpoint: only it is left.
    (run_dir / "model.acrl").unlink()
    checkpoints[1].unlink()
    resumed = acrl("train", "--resume", run_dir, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "from " + str(checkpoints[0]) + " at 2016 of 6000 steps" in resumed.stdout

    # The same run in one process, its environments reset at step 2016 as a resume does.
    overrides = {"seed": 3, "n_envs": 4, "n_timesteps": 6000, "normalize_value_targets": True}
    run = resolve_run_config("CartPole-v1", overrides=overrides)
    reference = make_model(run)
    reference.learn(6000, callback=lambda m: m.num_timesteps < 2016)
    reference.set_env("CartPole-v1")
    reference.learn(6000 - 2016, reset_num_timesteps=False)

    model = load_model(run_dir)
    assert model.num_timesteps == reference.num_timesteps == 6016
    assert torch.equal(model.params.vector, reference.params.vector)
    value_rms = model.policy.normalization.value_rms
    expected = reference.policy.normalization.value_rms
    assert torch.equal(value_rms.var, expected.var) and torch.equal(value_rms.count, expected.count)
    assert value_rms.count > 5000  # every step but those after an episode's end
    assert model.optimizer.lr == reference.optimizer.lr
    steps = read_columns(run_dir / "metrics.csv")["timesteps"]
    assert np.all(np.diff(steps) > 0) and steps[-1] == 6016  # rows after 2016 logged once
    wall = read_columns(run_dir / "metrics.csv")["wall_time"]
    assert np.all(np.diff(wall) >= 0)  # the clock goes on from the checkpoint's row


def _model_file_id(run_dir: Path) -> tuple[int, int] | None:
    """model.acrl's inode and mtime (each checkpoint replaces it), or None before the first."""
    try:
        stat = (run_dir / "model.acrl").stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def test_kill_9_at_random_moments_then_resume_finishes(tmp_path):
    """Each attempt is killed while it trains: after it has written a checkpoint of its own
    (so past start-up and the resume), at a random moment of the next ~10 checkpoints."""
    run_dir = tmp_path / "killed"
    total = 1_000_000  # never reached: every attempt is killed in training
    rng = random.Random(0)
    argv = [*TRAIN, "--timesteps", str(total), "--checkpoint-every", "512", "--run-dir"]
    argv = [*argv, str(run_dir), "--no-progress"]
    for attempt in range(8):
        if attempt:
            argv = ["train", "--resume", str(run_dir), "--no-progress"]
        before = _model_file_id(run_dir)
        proc = subprocess.Popen(
            acrl_argv(*argv),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while _model_file_id(run_dir) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))  # often in the middle of writing a checkpoint
        assert proc.poll() is None, f"attempt {attempt} ended before its kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model = load_model(run_dir)  # the latest model is complete and loads
        assert 0 < model.num_timesteps < total
    end = load_model(run_dir).num_timesteps + 2048  # the budget, shortened: finished soon
    done = acrl("train", "--resume", run_dir, "--timesteps", end, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert load_model(run_dir).num_timesteps >= end
    names = [p.name for p in (run_dir / "checkpoints").iterdir()]
    assert len(names) == 2 and all(n.startswith("step-") for n in names)  # no temp files left
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob(".tmp*"))
    steps = read_columns(run_dir / "metrics.csv")["timesteps"]
    assert np.all(np.diff(steps) > 0)


def test_a3c_resumes_from_its_checkpoint(tmp_path):
    run_dir = tmp_path / "a3c"
    args = ["train", "CartPole-v1", "--algo", "a3c", "--workers", "2", "--n-envs", "2"]
    args += ["--seed", "1", "--timesteps", 4000, "--checkpoint-every", 1000]
    args += ["--log-interval", 5, "--run-dir", run_dir, "--no-progress"]
    assert acrl(*args).returncode == 0
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2
    # A crash right after the older checkpoint: only it is left.
    (run_dir / "model.acrl").unlink()
    checkpoints[1].unlink()
    saved = load_model(checkpoints[0])
    resumed = acrl("train", "--resume", run_dir, "--timesteps", 6000, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming A3C on CartPole-v1 from {checkpoints[0]} at {saved.num_timesteps}" in (
        resumed.stdout
    )
    model = load_model(run_dir)
    assert type(model).__name__ == "A3C" and model.n_workers == 2
    assert model.num_timesteps >= 6000 and model.num_updates > saved.num_updates
    steps = read_columns(run_dir / "metrics.csv")["timesteps"]
    assert np.all(np.diff(steps) > 0) and steps[-1] >= 6000  # rows after the checkpoint once
    episodes = read_columns(run_dir / "episodes.csv")["timesteps"]
    assert np.all(np.diff(episodes) >= 0)
    assert model.total_episodes == len(episodes)


def test_resume_removes_the_temp_files_of_a_killed_write(tmp_path):
    """A kill mid-save leaves our temp file (".NAME.XXXXXXXX.tmp") or, from acrl 0.3's
    writes, safetensors' own (".tmpXXXXXX" beginning with an acrl header); nothing else goes:
    not a user's file of a similar name, not a folder, not a file that is not acrl's."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    header = b'{"__metadata__":{"format":"acrl-model","format_version":"1"}}'
    acrl_start = len(header).to_bytes(8, "little") + header + b"\0" * 10
    stale = {
        run_dir / ".model.acrl.k2j4_9zq.tmp": b"x",
        run_dir / ".tmpAS6QXl": acrl_start,
        run_dir / "checkpoints" / ".step-000000000512.acrl.x1y2abcd.tmp": b"x",
        run_dir / "checkpoints" / ".tmp5BNEbW": acrl_start,
        run_dir / ".metrics.csv.tmp": b"timesteps",
    }
    kept = {
        run_dir / "model.acrl": b"x",
        run_dir / "checkpoints" / "step-000000000512.acrl": b"x",
        run_dir / "notes.tmp.txt": b"x",
        run_dir / ".tmp_notes.txt": b"x",
        run_dir / ".tmpABCDEF": b"a user's file of safetensors' temporary name",
        run_dir / ".model.acrl.k2j4.tmp": b"not the length of tempfile's names",
    }
    for path, data in {**stale, **kept}.items():
        path.write_bytes(data)
    (run_dir / ".tmpcache").mkdir()
    (run_dir / "checkpoints" / ".tmpFOLDER").mkdir()
    removed = remove_stale_temp_files(run_dir)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.read_bytes() == d for p, d in kept.items())
    assert (run_dir / ".tmpcache").is_dir() and (run_dir / "checkpoints" / ".tmpFOLDER").is_dir()


def test_resume_keeps_as_many_episode_rows_as_the_checkpoint_counted(tmp_path):
    """A3C logs a late report's episodes at the step count they were counted in, which can be
    the checkpoint's own step after it was saved: a resume keeps the checkpoint's count."""
    rows = [(100, 1.0, 9.0, 9), (200, 2.0, 8.0, 8), (200, 2.1, 7.0, 7), (300, 3.0, 6.0, 6)]
    (tmp_path / "episodes.csv").write_text(
        "timesteps,wall_time,return,length\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)
    )
    truncate_logs(tmp_path, 200, episodes=2)
    assert read_columns(tmp_path / "episodes.csv")["return"].tolist() == [9.0, 8.0]
    truncate_logs(tmp_path, 200, episodes=5)  # fewer rows than counted (a damaged log): all
    assert read_columns(tmp_path / "episodes.csv")["return"].tolist() == [9.0, 8.0]
