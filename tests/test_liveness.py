"""A3C never hangs: a hung or stopped worker ends the run within the liveness time, a signal
is honoured within a second whatever the workers do, and no process is left behind; the
seeds of ``--seeds`` stop when their parent is killed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from acrl import A3C
from acrl.errors import WorkerError
from tests.helpers import wait_gone
from tests.test_cli import acrl_argv

STALL = "tests.stall_envs:acrl-tests/Stall-v0"


def workers_of(pid: int) -> list[int]:
    """The A3C worker processes of process ``pid`` (multiprocessing's spawned children)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(c)
        for c in children
        if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        and b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()
    ]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_hung_in_its_env_ends_the_run_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ACRL_WORKER_TIMEOUT", "3")
    token = tmp_path / "token"
    model = A3C("MlpPolicy", STALL, n_workers=2, n_envs=1, seed=0, env_kwargs={"token": str(token)})
    start = time.monotonic()
    with pytest.raises(WorkerError) as caught:
        model.learn(50_000_000)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    match = re.fullmatch(
        r"worker [01] \(pid (\d+)\) is hung: no update for \d+ s \(ACRL_WORKER_TIMEOUT=3\); "
        r"its last update \(of \d+\) was [\d.]+ s into the run; the run stops",
        message,
    )
    assert match, message
    assert "\n" not in message
    assert token.exists() and match.group(0).startswith("worker 1 ")
    # worker start-up (a spawned interpreter importing torch) + 3 s + the shutdown's kill
    assert elapsed < 60, elapsed
    assert wait_gone([int(match.group(1))], 2.0) == []
    assert model.num_timesteps > 0  # the healthy worker trained meanwhile


def a3c_run(run_dir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    argv = acrl_argv(
        "train", "CartPole-v1", "--algo", "a3c", "--workers", "2", "--timesteps", "50000000",
        "--run-dir", run_dir, "--no-progress", "--checkpoint-every", "2000", *extra,
    )  # fmt: skip
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_a_stopped_worker_is_declared_hung_and_killed(tmp_path):
    run_dir = tmp_path / "run"
    process = a3c_run(run_dir, env={"ACRL_WORKER_TIMEOUT": "3"})
    try:
        wait_for(lambda: (run_dir / "model.acrl").exists(), 120, "a first checkpoint")
        time.sleep(3.0)  # both workers past their first update (until then, a start-up allowance)
        workers = workers_of(process.pid)
        assert len(workers) == 2, workers
        os.kill(workers[1], signal.SIGSTOP)
        stopped = time.monotonic()
        _, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - stopped
    finally:
        process.kill()
    assert process.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.fullmatch(
        rf"acrl: error: worker 1 \(pid {workers[1]}\) is hung: no update for \d+ s "
        r"\(ACRL_WORKER_TIMEOUT=3\); .*; the run stops; the last checkpoint in .* is kept",
        lines[0],
    ), lines[0]
    assert 3 <= elapsed < 3 + 10, elapsed
    assert wait_gone(workers, 2.0) == []


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGINT", "SIGINT"]])
def test_a_signal_ends_a_run_whose_worker_hangs_within_a_second(tmp_path, signals):
    run_dir, token = tmp_path / "run", tmp_path / "token"
    argv = acrl_argv(
        "train", STALL, "--algo", "a3c", "--workers", "2", "--n-envs", "1",
        "--timesteps", "50000000", "--run-dir", run_dir, "--no-progress",
        "--set", f"env_kwargs={{token: {token}}}",
    )  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(token.exists, 120, "the stalling env")
        wait_for(lambda: len(workers_of(process.pid)) == 2, 30, "two workers")
        workers = workers_of(process.pid)
        time.sleep(1.0)  # the stalling env has hung by now; the other worker trains on
        sent = time.monotonic()
        for name in signals:
            process.send_signal(getattr(signal, name))
            time.sleep(0.1)
        left = wait_gone(workers, 10.0)
        stopped = time.monotonic() - sent  # training's end: the workers gone
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    if signals == ["SIGTERM"]:
        assert process.returncode == 143, err
        assert "interrupted by SIGTERM" in err
        assert (run_dir / "model.acrl").exists()
    else:
        assert process.returncode == 130, err
        assert "interrupted twice" in err
    assert "Traceback" not in err
    # training stops within a second (0.1 s poll, 0.5 s grace, then the kill), with room for
    # a loaded machine; the save, the advantages figure and the exit come after, unmeasured
    assert left == [] and stopped < 2.5, (left, stopped)


def test_the_seeds_of_a_killed_parent_stop_and_save(tmp_path):
    parent = tmp_path / "seeds"
    argv = acrl_argv(
        "train", "CartPole-v1", "--seeds", "0,1", "--jobs", "2", "--timesteps", "50000000",
        "--run-dir", parent, "--checkpoint-every", "1000000",
    )  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = [parent / f"seed-{s}" / ".acrl.lock" for s in (0, 1)]
    try:
        wait_for(lambda: all(p.exists() and p.stat().st_size for p in locks), 120, "two seeds")
        wait_for(lambda: all((p.parent / "metrics.csv").exists() for p in locks), 120, "logs")
        children = [int(re.search(r'"pid": (\d+)', p.read_text()).group(1)) for p in locks]
        process.kill()
        process.wait()
        # each stops at a safe point, saves, draws its figure and lets go of its run dir
        wait_for(lambda: not any(p.exists() for p in locks), 60, "both seeds to stop")
        assert wait_gone(children, 10.0) == []
    finally:
        process.kill()
    for lock in locks:
        assert (lock.parent / "model.acrl").exists()
        log = lock.parent.parent / f"{lock.parent.name}.log"
        assert "interrupted by SIGTERM" in log.read_text()
