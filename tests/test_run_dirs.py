"""A run directory has one writer, acrl deletes only files it wrote (never through a symlink),
``--resume`` keeps the run's cadence and trusts only an intact checkpoint of that run, and a
full or read-only disk is one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from acrl import A2C
from acrl.algorithms.model_files import contents
from acrl.algorithms.registry import load_model
from acrl.errors import UserError
from acrl.run.model_file import write_model
from tests.helpers import wait_for_metrics_rows
from tests.test_cli import acrl, acrl_argv
from tests.test_plots import read_columns

FIRST = ["--timesteps", 2048, "--checkpoint-every", 512, "--keep-checkpoints", 3]
FIRST += ["--log-interval", 2, "--no-progress"]


def tree(root: Path) -> dict[str, str]:
    """Every file and link under ``root``: its relative path and a digest of what it is."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def one_line(result, status: int = 2) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished CartPole run of 2,048 steps: checkpoints every 512, three kept, a row
    every 2 updates."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = acrl("train", "CartPole-v1", "--run-dir", run_dir, *FIRST)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A copy of the finished run to change."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy, symlinks=True)
    return copy


def wait_for_lock(run_dir: Path, timeout: float = 120.0) -> dict:
    lock = run_dir / ".acrl.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(lock.read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"{lock} never appeared")


# one writer per run directory


def test_a_live_run_has_one_writer(tmp_path):
    live = tmp_path / "live"
    argv = acrl_argv("train", "CartPole-v1", "--timesteps", 50_000_000, "--run-dir", live)
    writer = subprocess.Popen([*argv, "--no-progress"], stdout=subprocess.PIPE, text=True)
    try:
        owner = wait_for_lock(live)
        assert owner["pid"] == writer.pid and owner["host"] == socket.gethostname()
        wait_for_metrics_rows(live, rows=1)
        config = (live / "config.yaml").read_bytes()
        losers = [
            ["train", "--resume", live],
            ["train", "CartPole-v1", "--run-dir", live, "--overwrite"],
            ["train", "CartPole-v1", "--run-dir", live],
            ["train", "CartPole-v1", "--seeds", "0,1", "--run-dir", live, "--overwrite"],
            ["video", live],
        ]
        procs = [
            subprocess.Popen(acrl_argv(*args), stderr=subprocess.PIPE, text=True) for args in losers
        ]
        for args, proc in zip(losers, procs, strict=True):
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 2, (args, err)
            assert err.count("\n") == 1, (args, err)
            assert f"run dir {live} is in use by pid {writer.pid} on " in err, (args, err)
        with pytest.raises(UserError, match=f"is in use by pid {writer.pid}"):
            A2C("MlpPolicy", "CartPole-v1", log_dir=live).learn(100)
        assert (live / "config.yaml").read_bytes() == config
        assert not (live / "videos").exists() and not (live / "seed-0").exists()
        writer.send_signal(signal.SIGTERM)
        writer.communicate(timeout=60)
    finally:
        writer.kill()
    assert writer.returncode == 143
    steps = read_columns(live / "metrics.csv")["timesteps"]
    assert np.all(np.diff(steps) > 0)  # one writer's rows, none deleted or interleaved
    assert load_model(live).num_timesteps == steps[-1]
    assert not (live / ".acrl.lock").exists()


def test_two_resumes_at_once_one_runs(run):
    argv = acrl_argv("train", "--resume", run, "--timesteps", 50_000_000, "--no-progress")
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        owner = wait_for_lock(run)
        winner = next(p for p in procs if p.pid == owner["pid"])
        loser = next(p for p in procs if p is not winner)
        _, err = loser.communicate(timeout=120)
        assert loser.returncode == 2, err
        assert f"is in use by pid {winner.pid}" in err and err.count("\n") == 1
        deadline = time.monotonic() + 120
        while not any(int(p.name[5:17]) > 2048 for p in (run / "checkpoints").glob("step-*")):
            assert time.monotonic() < deadline, "the resumed run never saved a checkpoint"
            time.sleep(0.05)
        winner.send_signal(signal.SIGTERM)
        winner.communicate(timeout=60)
        assert winner.returncode == 143
    finally:
        for p in procs:
            p.kill()
    assert np.all(np.diff(read_columns(run / "metrics.csv")["timesteps"]) > 0)


@pytest.mark.parametrize("garbage", ['{"pid": 1e400, "since": "x"}', "\0\0", "[]"])
def test_a_damaged_lock_file_left_behind_is_taken_over(run, garbage):
    (run / ".acrl.lock").write_text(garbage)
    result = acrl("train", "--resume", run, "--timesteps", 3000, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert not (run / ".acrl.lock").exists()


def stale_record() -> dict:
    """A lock file's record of an acrl process on this host that has ended."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    return {"pid": dead.pid, "host": socket.gethostname(), "command": "acrl train", "since": 0}


def test_a_stale_lock_is_taken_over_with_a_line(run):
    stale = stale_record()
    (run / ".acrl.lock").write_text(json.dumps(stale))
    result = acrl("train", "--resume", run, "--timesteps", 3000, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"acrl: taking over run dir {run} from pid {stale['pid']} on " in result.stderr
    assert "which ended without releasing it" in result.stderr
    assert not (run / ".acrl.lock").exists()


@pytest.mark.parametrize("resume, readable", [(False, True), (True, True), (False, False)])
def test_a_stale_lock_and_a_mistake_say_only_the_mistake(run, resume, readable):
    """The takeover is said once what the lock is for goes ahead; a mistake before that is
    one line, and the stale lock file (readable or not) is left as it was."""
    argv = ("train", "CartPole-v1", "--run-dir", run)  # a run there, and no --overwrite
    if resume:  # nothing left to resume from
        for path in [run / "model.acrl", *(run / "checkpoints").iterdir()]:
            path.write_bytes(b"junk")
        argv = ("train", "--resume", run, "--timesteps", "4000")
    stale = stale_record()
    (run / ".acrl.lock").write_text(json.dumps(stale) if readable else "garbage")
    before = tree(run)
    message = one_line(acrl(*argv))
    assert "taking over" not in message
    assert tree(run) == before


HOLD_LOCK = """
import fcntl, json, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
if sys.argv[2] == "writes":  # its record a moment after taking the lock (acrl's is at once)
    time.sleep(0.3)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": "acrl x", "since": 0}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
time.sleep(120)
"""


@pytest.mark.parametrize("writes", [False, True])
def test_a_refused_writer_never_names_the_dead_owner_of_a_stale_record(tmp_path, writes):
    """Between a new holder's flock and its write, the lock file still names the process that
    left it: the refused writer waits for the live holder's record, and never quotes the dead
    one's pid."""
    from acrl.run.lock import RunLock

    stale = stale_record()
    lock = tmp_path / ".acrl.lock"
    lock.write_text(json.dumps(stale))
    argv = [sys.executable, "-c", HOLD_LOCK, str(lock), "writes" if writes else "silent"]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(UserError) as refused, RunLock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert f"pid {stale['pid']} " not in str(refused.value)
    who = f"pid {holder.pid} on " if writes else "another process;"
    assert f"run dir {tmp_path} is in use by {who}" in str(refused.value)
    assert json.loads(lock.read_text())["pid"] == (holder.pid if writes else stale["pid"])


def test_a_refused_writer_waits_for_the_holders_record_without_blocking_other_threads(
    tmp_path, monkeypatch
):
    import threading

    from acrl.run import lock as run_lock

    waiting, go_on = threading.Event(), threading.Event()

    def slow_owner(path):
        waiting.set()
        go_on.wait(30)
        return None

    monkeypatch.setattr(run_lock, "_owner_once_written", slow_owner)
    held, free = tmp_path / "held", tmp_path / "free"
    held.mkdir()
    free.mkdir()
    (held / ".acrl.lock").write_text("")
    argv = [sys.executable, "-c", HOLD_LOCK, str(held / ".acrl.lock"), "silent"]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    outcome = []

    def refused():
        try:
            with run_lock.RunLock(held):
                outcome.append("took it")
        except UserError as exc:
            outcome.append(str(exc))

    def other():
        with run_lock.RunLock(free):
            outcome.append("other took its own")

    try:
        assert holder.stdout.readline() == "held\n"
        first = threading.Thread(target=refused)
        first.start()
        assert waiting.wait(30)
        second = threading.Thread(target=other)
        second.start()
        second.join(30)
        done = not second.is_alive()
        go_on.set()
        first.join(30)
    finally:
        go_on.set()
        holder.kill()
        holder.wait()
    assert done, "another thread's lock waited on a refused writer"
    assert outcome == [
        "other took its own",
        f"run dir {held} is in use by another process; wait for it to end or stop it",
    ]


def test_a_symlinked_lock_file_is_refused(run, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (run / ".acrl.lock").symlink_to(target)
    before = tree(run)
    message = one_line(acrl("train", "--resume", run, "--timesteps", 3000))
    assert ".acrl.lock is a symlink" in message
    assert tree(run) == before and target.read_text() == "keep"


def test_another_thread_of_the_same_process_is_refused(tmp_path):
    import threading

    from acrl.run.lock import RunLock

    outcome = []

    def second_writer():
        try:
            with RunLock(tmp_path):
                outcome.append("took it")
        except UserError as exc:
            outcome.append(str(exc))

    with RunLock(tmp_path), RunLock(tmp_path):  # the same thread again: one more hold
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join()
        assert (tmp_path / ".acrl.lock").exists()
    assert outcome == [f"run dir {tmp_path} is in use by another thread of this process"]
    assert not (tmp_path / ".acrl.lock").exists()


# deletion: only acrl's own files, never through a symlink


def test_a_symlinked_checkpoints_folder_is_never_written_or_emptied(run, finished, tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    shutil.copy(finished / "model.acrl", canary / "step-000000999936.acrl")  # a foreign newest
    (canary / ".tmpAS6QXl").write_bytes(b"someone else's")
    (canary / "notes.txt").write_text("mine")
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(canary)
    before, canary_before = tree(run), tree(canary)
    for args in (
        ["train", "--resume", run, "--timesteps", 4096],
        ["train", "CartPole-v1", "--run-dir", run, "--overwrite"],
    ):
        message = one_line(acrl(*args))
        assert "checkpoints/ is a symlink" in message, message
        assert tree(run) == before and tree(canary) == canary_before


def test_user_files_with_acrl_like_names_are_never_deleted(run):
    user = {
        ".tmp_notes.txt": "notes",
        ".tmpABCDEF": "a user's file of safetensors' temporary name",
        "checkpoints/step-best.acrl": "my best",
        "videos/holiday.mp4": "not a run's video",
        "config.yaml.bak": "backup",
    }
    for name, text in user.items():
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_text(text)
    (run / ".tmpcache").mkdir()
    (run / "checkpoints" / "step-000000000001.acrl").mkdir()
    resumed = acrl("train", "--resume", run, "--timesteps", 4096, "--keep-checkpoints", "1")
    assert resumed.returncode == 0, resumed.stderr
    steps = sorted(p.name for p in (run / "checkpoints").glob("step-0*.acrl") if p.is_file())
    assert len(steps) == 1 and int(steps[0][5:17]) >= 4096  # the newest is the one kept
    again = acrl("train", "CartPole-v1", "--run-dir", run, "--overwrite", *FIRST[:2])
    assert again.returncode == 0, again.stderr
    for name, text in user.items():
        assert (run / name).read_text() == text, name
    assert (run / ".tmpcache").is_dir() and (run / "checkpoints/step-000000000001.acrl").is_dir()


@pytest.mark.parametrize("run_dir", ["", ".", ".."])
def test_the_current_directory_is_never_a_run_dir(run, run_dir):
    inside = run / "sub"
    inside.mkdir()
    cwd = inside if run_dir == ".." else run  # the finished run is the user's folder here
    before = tree(run)
    result = acrl("train", "CartPole-v1", "--run-dir", run_dir, "--overwrite", cwd=cwd)
    assert "current directory" in one_line(result) or "--run-dir is empty" in one_line(result)
    assert tree(run) == before


def test_overwrite_replaces_only_a_runs_directory(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("database: postgres\n")
    (folder / "metrics.csv").write_text("revenue\n1\n")
    (folder / "summary.json").write_text('{"quarter": 3}')  # not a --seeds summary
    before = tree(folder)
    message = one_line(acrl("train", "CartPole-v1", "--run-dir", folder, "--overwrite"))
    assert "holds files but no acrl run" in message
    assert tree(folder) == before


# --resume: the run's cadence, and only an intact checkpoint of this run


def test_resume_keeps_the_runs_cadence_unless_overridden(run):
    resumed = acrl("train", "--resume", run, "--timesteps", 4096, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    steps = sorted(int(p.name[5:17]) for p in (run / "checkpoints").glob("step-*.acrl"))
    assert len(steps) == 3 and steps[0] > 2048  # every 512 steps, three kept: all new ones
    rows = read_columns(run / "metrics.csv")["timesteps"]
    assert np.all(np.diff(rows) <= 2 * 256)  # a row every 2 updates of 256 steps
    cadence = yaml.safe_load((run / "config.yaml").read_text())["cadence"]
    assert cadence == {
        "checkpoint_every": 512,
        "keep_checkpoints": 3,
        "log_interval": 2,
        "video_every": None,
        "eval_every": None,
        "eval_episodes": 10,
    }
    again = acrl("train", "--resume", run, "--timesteps", 5000, "--keep-checkpoints", 1)
    assert again.returncode == 0, again.stderr
    assert len(list((run / "checkpoints").glob("step-*.acrl"))) == 1
    assert yaml.safe_load((run / "config.yaml").read_text())["cadence"]["keep_checkpoints"] == 1


def test_resume_passes_over_a_nan_and_a_foreign_checkpoint(run, tmp_path):
    checkpoints = sorted((run / "checkpoints").glob("step-*.acrl"))
    intact = checkpoints[0]
    intact_steps = load_model(intact).num_timesteps
    (run / "model.acrl").unlink()
    # the newest: NaN weights in a well-formed, correctly signed file
    poisoned = load_model(checkpoints[-1])
    with torch.no_grad():
        poisoned.params.vector[0] = float("nan")
    write_model(checkpoints[-1], *contents(poisoned))
    # the one before: another run's (seed 1), copied in
    other = tmp_path / "other"
    made = acrl("train", "CartPole-v1", "--seed", 1, "--run-dir", other, *FIRST[:2])
    assert made.returncode == 0, made.stderr
    shutil.copy(other / "model.acrl", checkpoints[1])
    result = acrl("train", "--resume", run, "--timesteps", 3000, "--no-progress")
    assert result.returncode == 0, result.stderr
    notes = result.stderr.strip().splitlines()
    assert len(notes) == 2, result.stderr
    nan = next(n for n in notes if n.startswith(f"acrl: passed over {checkpoints[-1]}"))
    assert "NaN" in nan, nan
    foreign = f"acrl: passed over {checkpoints[1]} is not this run's checkpoint: its seed is 1"
    assert any(n.startswith(foreign) for n in notes), notes
    assert f"from {intact} at {intact_steps} of 3000" in result.stdout


def test_pruning_never_deletes_a_passed_over_checkpoint_beyond_the_run(run, tmp_path):
    other = tmp_path / "other"
    made = acrl("train", "CartPole-v1", "--seed", 1, "--run-dir", other, *FIRST[:2])
    assert made.returncode == 0, made.stderr
    foreign = run / "checkpoints" / "step-000099999744.acrl"  # another run's, far ahead
    shutil.copy(other / "model.acrl", foreign)
    passed = run / "checkpoints" / "step-000000002500.acrl"  # one that training passes
    shutil.copy(other / "model.acrl", passed)
    args = ["--timesteps", 4096, "--keep-checkpoints", 1, "--no-progress"]
    result = acrl("train", "--resume", run, *args)
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    # the two passed over, and its own newest
    assert len(kept) == 3 and [kept[0], kept[2]] == [passed.name, foreign.name], kept
    kept = [kept[1]]
    assert int(kept[0][5:17]) >= 4096
    assert load_model(run / "checkpoints" / kept[0]).num_timesteps == int(kept[0][5:17])


# a full disk, a read-only run dir


@pytest.fixture
def tmpfs(tmp_path):
    """A small file system of its own (root only: mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "tmpfs"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", point]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield point
    subprocess.run(["umount", "-l", point])


@pytest.mark.parametrize(
    "room, command",
    [
        (60_000, "resume"),  # room for the logs, not for a checkpoint
        (0, "resume"),  # not even for the lock or the repaired logs
        (150_000, "train"),  # a fresh run: the first checkpoint fits, the next one not
    ],
)
def test_a_full_disk_is_one_line_and_leaves_no_temp_file(tmpfs, finished, room, command):
    run_dir = tmpfs / "run"
    if command == "resume":
        shutil.copytree(finished, run_dir)
        args = ["train", "--resume", run_dir, "--timesteps", 100_000, "--no-progress"]
    else:
        args = ["train", "CartPole-v1", "--run-dir", run_dir, "--timesteps", 100_000]
        args += ["--checkpoint-every", 512, "--no-progress"]
    free = shutil.disk_usage(tmpfs).free
    with (tmpfs / "filler").open("wb", buffering=0) as fh:  # fill it, then leave the room
        while True:
            try:
                fh.write(b"\0" * 4096)
            except OSError:
                break
    if room:
        os.truncate(tmpfs / "filler", max(0, free - room))
    result = acrl(*args)
    assert result.returncode in (1, 2), result.stderr
    message = one_line(result, status=result.returncode)
    assert "No space left on device" in message, message
    assert not [p for p in tmpfs.rglob(".*tmp*")]


def test_a_read_only_run_dir_is_one_line(tmpfs, finished):
    run_dir = tmpfs / "run"
    shutil.copytree(finished, run_dir)
    subprocess.run(["mount", "-o", "remount,ro", tmpfs], check=True)
    before = tree(run_dir)
    for args in (
        ["train", "--resume", run_dir, "--timesteps", 4096],
        ["train", "CartPole-v1", "--run-dir", run_dir, "--overwrite"],
        ["plot", run_dir],
    ):
        result = acrl(*args)
        assert result.returncode in (1, 2), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Read-only file system" in result.stderr, result.stderr
    assert tree(run_dir) == before
