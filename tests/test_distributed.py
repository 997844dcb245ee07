"""A2C on torch.distributed: two ranks launched by torchrun on this machine (gloo, loopback)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acrl import evaluate_policy
from acrl.algorithms.registry import load_model
from tests.helpers import children_of, wait_for_metrics_rows, wait_gone

pytestmark = pytest.mark.slow


def torchrun(*args: object, ranks: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(ranks),
        "-m",
        "acrl",
        "train",
        *map(str, args),
        "--distributed",
        "--no-progress",
    ]


def digest(model) -> str:
    state = [model.params.vector, *model.policy.buffers()]
    return hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in state)).hexdigest()[:16]


def test_normalization_statistics_stay_identical_across_ranks(tmp_path):
    """Pendulum's preset normalizes observations and rewards, and here value targets: each
    rank merges every rank's batches, so the statistics (in the digest with the weights)
    match."""
    run_dir = tmp_path / "run"
    args = ("Pendulum-v1", "--timesteps", 6000, "--run-dir", run_dir)
    args += ("--set", "normalize_value_targets=true")
    done = subprocess.run(torchrun(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    digests = dict(re.findall(r"rank (\d) of 2: weights sha256 ([0-9a-f]{16})", done.stdout))
    model = load_model(run_dir)
    assert digests["0"] == digests["1"] == digest(model)
    assert model.policy.normalization.obs_rms.count > 6000  # both ranks' observations
    assert model.policy.normalization.value_rms.count > 6000 * 200 / 201  # valid steps


def test_two_ranks_train_an_lstm_policy_with_identical_weights(tmp_path):
    """Each rank carries its own envs' hidden states; the gradients of the recomputed
    sequences are averaged, and every rank ends with rank 0's weights. The memory task needs
    the LSTM (a feed-forward policy scores 0.5), so a run that did not learn cannot pass."""
    run_dir = tmp_path / "run"
    settings = ["policy=MlpLstmPolicy", "learning_rate=3e-3", "ent_coef=0.01", "n_steps=8"]
    args = [
        "tests.memory_envs:acrl-tests/CueRecall-v0",
        "--n-envs", 8, "--timesteps", 16_000, "--run-dir", run_dir, "--log-interval", 20,
        *(x for setting in settings for x in ("--set", setting)),
    ]  # fmt: skip
    done = subprocess.run(torchrun(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on 2 ranks" in done.stdout
    digests = dict(re.findall(r"rank (\d) of 2: weights sha256 ([0-9a-f]{16})", done.stdout))
    assert set(digests) == {"0", "1"}, done.stdout
    import tests.memory_envs  # noqa: F401  (the model's env id names it)

    model = load_model(run_dir)
    assert model.policy.recurrent
    assert digests["0"] == digests["1"] == digest(model)
    assert model.num_timesteps >= 16_000  # the budget counts both ranks' steps
    mean, _ = evaluate_policy(model, model.make_env(8, seed=100), 200, seed=100)
    assert mean >= 0.95
    # rank 0's log holds both ranks' episodes
    episodes = (run_dir / "episodes.csv").read_text().splitlines()[1:]
    assert len(episodes) == model.total_episodes > 2000  # ~2,700: 5 steps and a reset each


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(b"RANK="):
            return int(entry[5:])
    return None


def _cartpole_on_two_ranks(run_dir: Path, checkpoint_every: int) -> subprocess.Popen[str]:
    """A long CartPole run on 2 ranks, once its log has 3 rows. PYTHONFAULTHANDLER: a rank
    sent SIGABRT prints every thread's stack."""
    args = ("CartPole-v1", "--timesteps", 10_000_000, "--run-dir", run_dir)
    proc = subprocess.Popen(
        torchrun(*args, "--log-interval", 20, "--checkpoint-every", checkpoint_every),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        wait_for_metrics_rows(run_dir, rows=3)
    except BaseException:
        proc.kill()
        raise
    return proc


def _ranks(proc: subprocess.Popen[str]) -> dict[int | None, int]:
    workers = {_rank_of(pid): pid for pid in children_of(proc.pid)}
    assert set(workers) >= {0, 1}, workers
    return workers


def test_a_dead_rank_stops_the_other_without_a_hang(tmp_path):
    run_dir = tmp_path / "run"
    proc = _cartpole_on_two_ranks(run_dir, checkpoint_every=4000)
    try:
        workers = _ranks(proc)
        os.kill(workers[1], signal.SIGKILL)
        if wait_gone([workers[0]], 20):  # stuck: show where, before torchrun's kill
            os.kill(workers[0], signal.SIGABRT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output
    # rank 0's own report (torchrun then adds its summary of the failed workers)
    assert "acrl: error: rank 0 of 2: averaging gradients failed, another rank has stopped" in (
        output
    ), output
    assert load_model(run_dir).num_timesteps > 0  # rank 0's last checkpoint is intact


@pytest.mark.parametrize("second_ctrl_c", [False, True], ids=["sigterm", "ctrl-c-twice"])
def test_a_stop_signal_ends_a_rank_whose_peer_hangs_within_seconds(tmp_path, second_ctrl_c):
    """Rank 1 hangs (stopped, its connections open, so gloo sees no error). A SIGTERM to rank
    0 (what torchrun sends when a worker fails) ends it within seconds with one line, not
    after the collective's 300 s timeout, its last checkpoint kept: the grace is two update
    periods, at least 5 s. A second Ctrl-C ends it at once, saving nothing more."""
    run_dir = tmp_path / "run"
    proc = _cartpole_on_two_ranks(run_dir, checkpoint_every=20_000)
    workers: dict[int | None, int] = {}
    try:
        workers = _ranks(proc)
        os.kill(workers[1], signal.SIGSTOP)
        time.sleep(0.5)  # rank 0 is waiting for rank 1 in a collective by now
        if second_ctrl_c:
            os.kill(workers[0], signal.SIGINT)
            time.sleep(0.5)
            os.kill(workers[0], signal.SIGINT)
        else:
            os.kill(workers[0], signal.SIGTERM)
        start = time.monotonic()
        wait_gone([workers[0]], 60)
        took = time.monotonic() - start
    finally:
        if 1 in workers:
            os.kill(workers[1], signal.SIGKILL)
        try:
            output, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert took < (2 if second_ctrl_c else 15), output
    if second_ctrl_c:
        assert "interrupted twice: stopped without saving; the last checkpoint in" in output
        assert "exitcode  : 130" in output, output
    else:
        line = re.search(r"acrl: error: rank 0 of 2: (.*)", output)
        assert line is not None, output
        assert re.fullmatch(
            r"averaging gradients failed, another rank has stopped \(none joined within "
            r"\d+\.\d s of the stop\); the last checkpoint in .* is kept",
            line.group(1),
        ), line.group(1)
        assert "exitcode  : 1 " in output, output
    assert load_model(run_dir).num_timesteps > 0
