"""A2C's envs step in the training process under a watch (acrl.engines.env_watch): an env hung
in ``step()`` ends the run after ``ACRL_ENV_TIMEOUT`` with one line, and a stop signal is
honoured within a second however the env hangs (a blocking call, Python code, C code)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from acrl import A2C, evaluate_policy, make_vec_env
from acrl.cli import main
from acrl.errors import EnvError
from acrl.run.video import record_episodes
from tests.test_cli import acrl_argv
from tests.test_liveness import wait_for

STALL = "tests.stall_envs:acrl-tests/Stall-v0"
HUNG = r"acrl-tests/Stall-v0 has not returned from step\(\) in 2 s \(ACRL_ENV_TIMEOUT\)"


def stalling(
    token, how: str = "sleep", worker: str = "MainProcess", stall_after: int = 300
) -> dict:
    return {"token": str(token), "worker": worker, "how": how, "stall_after": stall_after}


@pytest.mark.parametrize("how", ["sleep", "spin"])
def test_an_env_hung_in_step_ends_learn_after_the_time_limit(tmp_path, monkeypatch, how):
    monkeypatch.setenv("ACRL_ENV_TIMEOUT", "2")
    model = A2C("MlpPolicy", STALL, n_envs=2, seed=0, env_kwargs=stalling(tmp_path / "t", how))
    start = time.monotonic()
    with pytest.raises(EnvError, match=HUNG + ": the environment hangs; the run stops$"):
        model.learn(10_000_000)
    assert 2 <= time.monotonic() - start < 20
    assert model.num_timesteps > 0  # the updates before the hang stand
    assert (tmp_path / "t").exists()


def test_a_hung_env_is_found_when_learn_runs_in_another_thread(tmp_path, monkeypatch):
    """No signal can reach that thread: Python code that never ends gets the exception."""
    monkeypatch.setenv("ACRL_ENV_TIMEOUT", "2")
    model = A2C("MlpPolicy", STALL, n_envs=2, seed=0, env_kwargs=stalling(tmp_path / "t", "spin"))
    caught: list[BaseException] = []

    def learn() -> None:
        try:
            model.learn(10_000_000)
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=learn)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], EnvError), caught


def test_a_hung_env_in_a_subprocess_is_killed(tmp_path, monkeypatch):
    monkeypatch.setenv("ACRL_ENV_TIMEOUT", "2")
    kwargs = stalling(tmp_path / "t", worker="Worker<AsyncVectorEnv>-1")
    model = A2C("MlpPolicy", STALL, n_envs=2, seed=0, env_kwargs=kwargs, vectorization="async")
    processes = model.env.unwrapped.processes
    with pytest.raises(EnvError, match=HUNG):
        model.learn(10_000_000)
    assert not any(p.is_alive() for p in processes)
    assert model.env is None  # closed for good: the next learn() makes the envs anew
    model.learn(100)
    assert model.env is not None


def test_an_evaluation_env_hung_in_step_ends_the_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("ACRL_ENV_TIMEOUT", "2")
    model = A2C("MlpPolicy", STALL, n_envs=1, seed=0, env_kwargs=stalling(tmp_path / "t"))
    env = make_vec_env(STALL, 2, env_kwargs=stalling(tmp_path / "t", stall_after=30))
    with pytest.raises(EnvError, match=HUNG):
        evaluate_policy(model, env, 50)


def test_a_video_env_hung_in_step_ends_the_recording(tmp_path, monkeypatch):
    monkeypatch.setenv("ACRL_ENV_TIMEOUT", "2")
    kwargs = stalling(tmp_path / "t", stall_after=5)
    model = A2C("MlpPolicy", STALL, n_envs=1, seed=0, env_kwargs=kwargs)
    out = tmp_path / "videos"
    out.mkdir()
    with pytest.raises(EnvError, match=HUNG):
        record_episodes(model, STALL, out, env_kwargs=kwargs)
    assert list(out.iterdir()) == []  # no video, no temporary file


def train(run_dir, how: str, token, env: dict | None = None, *extra: str) -> subprocess.Popen:
    argv = acrl_argv(
        "train", STALL, "--timesteps", "1e7", "--run-dir", run_dir, "--no-progress", *extra,
        "--set", f"env_kwargs={{token: {token}, worker: MainProcess, how: {how}, "
        "stall_after: 300}",
    )  # fmt: skip
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("how", ["sleep", "spin", "slow-c"])
def test_a_stop_signal_is_honoured_within_a_second_while_the_env_hangs(tmp_path, how):
    """A call that an exception can end is abandoned; one in C code that returns (a slow
    physics step) is waited for, with a line. Either way the last whole update is saved."""
    run_dir, token = tmp_path / "run", tmp_path / "token"
    process = train(run_dir, how, token)
    try:
        wait_for(token.exists, 120, "the stalling env")
        time.sleep(0.3)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        first = process.stderr.readline()
        said = time.monotonic() - sent
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, first + err
    assert "Traceback" not in err
    lines = [first.rstrip("\n"), *err.splitlines()]
    assert len(lines) == 2, lines
    if how == "slow-c":
        assert "has been in step() for" in lines[0], lines
        assert "does not come out when interrupted (C code, a blocking call no" in lines[0]
        assert "the run stops when it returns; a second Ctrl-C ends the process now" in lines[0]
    else:
        assert "after the stop signal: the call is abandoned" in lines[0], lines
    assert lines[1].startswith("interrupted by SIGTERM at "), lines
    assert A2C.load(run_dir / "model.acrl").num_timesteps > 0
    # the first line: 0.1 s poll, 0.5 s grace (0.5 s more for C code), with room for a
    # loaded machine
    assert said < 4, said


def test_a_stop_after_a_call_that_outlived_its_time_limit_is_a_stop(tmp_path):
    """An env that swallowed the time-out's exception went on; a stop signal at its next
    hang is a stop (the model saved, 143), not the time-out of before."""
    run_dir, token = tmp_path / "run", tmp_path / "token"
    process = train(run_dir, "swallow", token, {"ACRL_ENV_TIMEOUT": "2"}, "--n-envs", "1")
    try:
        wait_for(Path(f"{token}.swallowed").exists, 120, "the swallowed time-out")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, err
    lines = err.splitlines()
    assert len(lines) == 2 and "after the stop signal: the call is abandoned" in lines[0], err
    assert (run_dir / "model.acrl").exists()


def test_a_second_ctrl_c_ends_a_run_whose_env_is_stuck_in_c_code(tmp_path):
    run_dir, token = tmp_path / "run", tmp_path / "token"
    process = train(run_dir, "c", token)
    try:
        wait_for(token.exists, 120, "the stalling env")
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        first = process.stderr.readline()  # stuck: it waits for the call
        assert "the run stops when it returns" in first, first
        time.sleep(0.5)
        assert process.poll() is None
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("acrl: interrupted twice: acrl-tests/Stall-v0 has been in step()")
    assert lines[0].endswith("the process ends without saving (the last checkpoint stays)")
    assert not (run_dir / "model.acrl").exists()
    assert took < 3, took


def test_a_hung_env_ends_the_cli_run_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    process = train(run_dir, "sleep", tmp_path / "token", {"ACRL_ENV_TIMEOUT": "2"})
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("acrl: error: acrl-tests/Stall-v0"), err
    assert "the environment hangs; the run stops; no model is saved" in lines[0]


@pytest.mark.parametrize("name", ["ACRL_ENV_TIMEOUT", "ACRL_WORKER_TIMEOUT", "ACRL_DIST_TIMEOUT"])
@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_a_bad_time_limit_is_one_line_before_any_directory(
    tmp_path, monkeypatch, capsys, name, value
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    status = main(["train", "CartPole-v1", "--timesteps", "1000", "--run-dir", "run"])
    assert status == 2
    assert capsys.readouterr().err == (
        f"acrl: error: {name} must be a number of seconds > 0, got {value!r}\n"
    )
    assert list(tmp_path.iterdir()) == []
