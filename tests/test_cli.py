"""The command line as users call it, through subprocesses."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acrl.cli import main
from acrl.cli.arguments import steps
from acrl.cli.presets import preset_file
from acrl.config import presets
from acrl.config.presets import load_presets, preset_summaries
from acrl.config.runs import build_run_config, read_config_file, resolve_run_config
from tests.helpers import wait_for_metrics_rows


def acrl_argv(*args):
    """The command line of ``acrl ARGS`` in this interpreter."""
    return [sys.executable, "-m", "acrl", *map(str, args)]


def acrl(*args, cwd=None):
    return subprocess.run(
        acrl_argv(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    result = acrl(
        "train",
        "CartPole-v1",
        "--timesteps",
        3000,
        "--seed",
        1,
        "--n-envs",
        4,
        "--set",
        "learning_rate=1e-3",
        "--run-dir",
        run_dir,
        "--log-interval",
        10,
    )
    assert result.returncode == 0, result.stderr
    return run_dir, result


def test_train_writes_run_directory(trained_run):
    run_dir, result = trained_run
    assert (run_dir / "model.acrl").is_file()
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env_id"] == "CartPole-v1" and config["seed"] == 1 and config["n_envs"] == 4
    assert config["hyperparams"]["learning_rate"] == 1e-3
    assert config["preset"] == "CartPole-v1"
    header, *rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert header.split(",") == [
        "timesteps",
        "updates",
        "wall_time",
        "steps_per_second",
        "episodes",
        "ep_return_mean",
        "ep_length_mean",
        "policy_loss",
        "value_loss",
        "entropy",
        "grad_norm",
        "explained_variance",
        "learning_rate",
    ]
    assert len(rows) >= 3
    assert "steps/s" in result.stdout and "model saved" in result.stdout


def test_eval_prints_mean_and_json(trained_run):
    run_dir, _ = trained_run
    result = acrl("eval", run_dir / "model.acrl", "--episodes", 3)
    assert result.returncode == 0, result.stderr
    assert "±" in result.stdout and "3 deterministic episodes" in result.stdout
    result = acrl("eval", run_dir, "--episodes", 4, "--json", "--stochastic")
    data = json.loads(result.stdout)
    assert data["episodes"] == 4 and 0 < data["mean"] <= 500 and data["std"] >= 0


def test_presets_lists_every_preset():
    result = acrl("presets")
    assert result.returncode == 0
    rows = [line.split()[:2] for line in result.stdout.splitlines()]
    classic = {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0"}
    classic |= {"Pendulum-v1", "LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3"}
    classic |= {"CarRacing-v3"}
    for algo in ("a2c", "a3c"):  # every classic-control and Box2D env, for both algorithms
        assert classic <= {name for name, kind in rows if kind == algo}, algo
    assert "frameskip=1" in result.stdout  # an entry's env kwargs are shown


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_every_preset_shows_the_first_line_of_its_comment(algo):
    # An anchored entry ("name: &anchor-with-hyphens") once lost its comment in the listing.
    comments = {name: comment for name, _, _, comment in preset_summaries(algo)}
    assert comments and all(comments.values()), [n for n, c in comments.items() if not c]
    first = comments["LunarLanderContinuous-v3"]
    assert first.startswith({"a2c": "LunarLander-v3 with", "a3c": "The A2C preset"}[algo])


def test_an_a3c_preset_is_its_a2c_preset_with_its_own_keys_over_it():
    a2c, a3c = load_presets("a2c"), load_presets("a3c")
    own = {"n_envs": 16, "normalize_advantage": False, "n_workers": 2}
    assert a3c["CartPole-v1"] == {**a2c["CartPole-v1"], **own}
    # nothing of its own but the workers its figures were measured with, as every entry
    assert a3c["HalfCheetah-v5"] == {**a2c["HalfCheetah-v5"], "n_workers": 2}
    assert all(entry["n_workers"] == 2 for entry in a3c.values())
    walker = a3c["Walker2d-v5"]  # A2C's value targets, the family's reward scaling instead
    assert a2c["Walker2d-v5"]["normalize_value_targets"] and not walker["normalize_value_targets"]
    assert walker["normalize_reward"] and walker["ent_coef"] == a2c["Walker2d-v5"]["ent_coef"]
    car = "MountainCarContinuous-v0"  # each worker steps A2C's 4 envs: fewer seeds miss the flag
    assert a3c[car] == {**a2c[car], "n_workers": 2} and a3c[car]["n_envs"] == 4
    lander = "LunarLanderContinuous-v3"  # A2C: gamma 0.999; A3C keeps the 0.99 it was run with
    assert a2c[lander]["gamma"] == 0.999
    assert a3c[lander] == {**a2c[lander], "n_workers": 2, "gamma": 0.99}
    assert all("a2c_preset" not in entry for entry in a3c.values())


def test_an_a3c_preset_naming_no_a2c_preset_is_refused(monkeypatch):
    text = "X:\n  a2c_preset: NoSuchPreset\n"
    monkeypatch.setattr(presets, "_preset_text", lambda algo: text if algo == "a3c" else "{}")
    with pytest.raises(ValueError, match="'X': a2c_preset 'NoSuchPreset' is not an A2C preset"):
        load_presets("a3c")


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_a_printed_preset_is_a_config_file_that_trains_as_the_preset_does(tmp_path, algo):
    families = {"minatar": "MinAtar/Asterix-v1", "atari": "ALE/Seaquest-v5", "mujoco": "Pusher-v5"}
    for name in load_presets(algo):
        env = families.get(name, name)
        path = tmp_path / "preset.yml"
        path.write_text(preset_file(env, algo))
        values = read_config_file(path)
        assert (values.pop("algo"), values.pop("preset")) == (algo, name)
        values.setdefault("env_id", name)  # as training takes the preset's name for it
        # the file alone, no preset under it, makes the run the preset makes
        assert build_run_config(values, algo, name) == resolve_run_config(env, algo), name


def test_acrl_presets_name_prints_its_settings_for_train_config(tmp_path):
    result = acrl("presets", "CartPole-v1", "--algo", "a3c")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# acrl's a3c preset 'CartPole-v1' (acrl/presets/a3c.yml)")
    assert "algo: a3c\npreset: CartPole-v1\nenv_id: CartPole-v1\nn_envs: 16\n" in result.stdout
    config = tmp_path / "cartpole.yml"
    config.write_text(acrl("presets", "CartPole-v1").stdout)
    run_dir = tmp_path / "run"
    args = ["--timesteps", 64, "--run-dir", run_dir, "--no-progress"]
    assert acrl("train", "--config", config, *args).returncode == 0
    import yaml

    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["preset"] == "CartPole-v1" and recorded["n_envs"] == 32
    assert recorded["hyperparams"]["learning_rate"] == "lin_0.003"


def test_acrl_presets_of_what_no_preset_serves_is_one_line(tmp_path):
    assert_user_error(acrl("presets", "Nope-v0", cwd=tmp_path), "no a2c preset serves 'Nope-v0'")
    assert not list(tmp_path.iterdir())
    family = acrl("presets", "mujoco", "--algo", "a3c").stdout
    assert "It serves every env of Gymnasium's MuJoCo ids" in family and "env_id" not in family


# The full table of malformed inputs is tests/test_hostile_inputs.py (in-process, with a
# check that nothing on disk changes); these run the real console entry point.
@pytest.mark.parametrize(
    "args,fragments",
    [
        (["train", "CartPole-v1", "--bogus"], ["unrecognized arguments"]),
        (["train", "NoSuchEnv-v0"], ["unknown environment id 'NoSuchEnv-v0'"]),
        (["eval", "pyproject.toml"], ["is not an acrl model file"]),
    ],
)
def test_user_mistakes_are_one_line_with_status_2(args, fragments):
    assert_user_error(acrl(*args, cwd=Path(__file__).parent.parent), *fragments)


def test_step_counts_take_the_presets_notation():
    """Presets write budgets as 2.0e+5; the flags take the same, whole numbers only (the
    refusals are argparse's one line: tests/test_hostile_inputs.py)."""
    texts = ("64", "2e5", "1.5e+6", "2.0E+05")
    assert [steps(t) for t in texts] == [64, 200_000, 1_500_000, 200_000]
    for text in ("1.5", "inf", "nan", "1e", ""):
        with pytest.raises(ValueError):
            steps(text)


def test_a_pickle_payload_runs_no_code(tmp_path):
    marker = tmp_path / "ran"
    payload = tmp_path / "model.acrl"
    code = (
        "import torch, sys\n"
        "class P:\n"
        "    def __reduce__(self): return (open, (sys.argv[2], 'w'))\n"
        "torch.save({'w': P()}, sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, payload, marker], check=True)
    assert_user_error(acrl("eval", payload), "is not an acrl model file")
    assert_user_error(acrl("train", "--resume", tmp_path), "not a run directory")
    assert not marker.exists()


def test_existing_run_dir_is_left_untouched(trained_run):
    run_dir, _ = trained_run
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    result = acrl("train", "CartPole-v1", "--timesteps", 100, "--run-dir", run_dir)
    assert_user_error(result, "already exists", "--overwrite")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_run_is_reproduced_from_its_config_yaml(trained_run, tmp_path):
    """--config accepts a run's config.yaml: same settings, same seed, same weights."""
    import torch

    from acrl import A2C

    run_dir, _ = trained_run
    again = tmp_path / "again"
    result = acrl(
        "train", "--config", run_dir / "config.yaml", "--run-dir", again, "--log-interval", 10
    )
    assert result.returncode == 0, result.stderr
    assert (again / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()
    first, second = A2C.load(run_dir / "model.acrl"), A2C.load(again / "model.acrl")
    for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_preset_name_as_env_and_overwrite(tmp_path):
    run_dir = tmp_path / "ll"
    (run_dir).mkdir()  # an earlier run's directory (--overwrite replaces only a run's)
    (run_dir / "config.yaml").write_text("env_id: CartPole-v1\nhyperparams: {}\n")
    result = acrl(
        "train",
        "LunarLanderContinuous",
        "--timesteps",
        64,
        "--run-dir",
        run_dir,
        "--overwrite",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env_id"] == "LunarLanderContinuous-v3" and config["env_kwargs"] == {}
    assert config["preset"] == "LunarLanderContinuous"  # acrl 0.3's name still serves
    assert acrl("eval", run_dir, "--episodes", 1, "--json").returncode == 0


def test_ctrl_c_while_acrl_starts_is_one_line_and_130(tmp_path):
    """Before training handles signals (torch still importing): no traceback either."""
    argv = acrl_argv("train", "CartPole-v1", "--algo", "a3c", "--run-dir", tmp_path / "r")
    proc = subprocess.Popen(
        [*argv, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test runner's worker may ignore SIGINT, and its children
        # would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr


HELD = """
import os, signal
from acrl.cli.stop import interrupts_held
try:
    with interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        print("the block goes on", flush=True)
except KeyboardInterrupt:
    print("and ends in KeyboardInterrupt", flush=True)
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
with interrupts_held():
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)
    print("not reached", flush=True)
"""


def test_a_ctrl_c_during_torchs_import_waits_for_its_end_a_second_ends_at_once():
    """torch's import cannot unwind an exception raised in its C++ (an abort, SIGABRT): a
    Ctrl-C there is held back to the block's end; a second one exits at once, one line."""
    done = subprocess.run(
        [sys.executable, "-c", HELD],
        capture_output=True,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.returncode == 130, done.stderr
    assert done.stdout.splitlines() == ["the block goes on", "and ends in KeyboardInterrupt"]
    assert done.stderr == "acrl: interrupted\n"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_a_safe_point_saves_and_exits(tmp_path, signum, status):
    run_dir = tmp_path / "interrupted"
    args = [
        "train",
        "CartPole-v1",
        "--timesteps",
        "50000000",
        "--no-progress",
        "--log-interval",
        "5",
    ]
    proc = subprocess.Popen(
        acrl_argv(*args, "--run-dir", run_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_metrics_rows(run_dir)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in stderr and str(run_dir / "model.acrl") in stderr
    assert "Traceback" not in stderr
    result = acrl("eval", run_dir, "--episodes", 1, "--json")
    assert result.returncode == 0, result.stderr


def test_a_second_sigint_stops_at_once():
    from acrl.cli.stop import StopSignals

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    with StopSignals() as stop:
        assert stop(None) is True
        signal.raise_signal(signal.SIGINT)
        assert stop(None) is False and stop.exit_status == 130
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_run_without_a_preset_says_which_settings_it_uses(tmp_path, capsys):
    args = ["train", "CartPoleNoVel-v1", "--algo", "a3c", "--workers", "1", "--no-progress"]
    assert main([*args, "--timesteps", "50", "--run-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert (
        "no A3C preset for CartPoleNoVel-v1: A3C's defaults (learning_rate 0.0007, n_steps 5" in out
    )
    assert "--algo a2c has a preset for it" in out


def test_a_closed_stdout_ends_a_command_quietly_as_sigpipe_would():
    read_end, write_end = os.pipe()
    os.close(read_end)  # `acrl presets | head` once head has exited
    try:
        result = subprocess.run(
            acrl_argv("presets"), stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == ""


def test_a_broken_pipe_that_is_not_stdout_stays_an_error(monkeypatch, capsys):
    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("acrl.cli.presets.cmd_presets", broken)
    assert main(["presets"]) == 1
    assert capsys.readouterr().err == "acrl: error: Broken pipe\n"
