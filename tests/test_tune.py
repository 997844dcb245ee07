"""acrl tune: the search space, one trial's reports, and the command as users run it (a tiny
study, resumed after a kill, stopped by Ctrl-C, its best settings trained; bad inputs)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import acrl.tune.study as tune_study
from acrl.algorithms.registry import make_model
from acrl.cli import main
from acrl.config.presets import load_presets
from acrl.config.runs import resolve_run_config
from acrl.run.provenance import STUDY_NAMED
from acrl.tune import SpaceShape, StudyPlan, run_trial, sample_settings
from acrl.tune.space import N_ENVS, start_params
from acrl.tune.study import STUDY_NAME, storage_url
from acrl.tune.trial import Diverged, Pruned, run_config, space_shape
from tests.helpers import assert_group_ends, ctrl_c_at_first_child
from tests.test_cli import acrl, acrl_argv, assert_user_error

TINY = ["--timesteps", 1500, "--seeds", 2, "--evaluations", 2, "--eval-episodes", 2]


def sampled(shape: SpaceShape, n: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(sample_settings(trial, shape))
        study.tell(trial, 0.0)
    return out


def test_the_space_fits_the_env_and_every_draw_is_a_valid_run():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cartpole = StudyPlan("CartPole-v1", timesteps=1000)
    pendulum = StudyPlan("Pendulum-v1", algo="a3c", timesteps=1000)
    assert space_shape(cartpole) == SpaceShape("a2c", True, False)
    assert space_shape(pendulum) == SpaceShape("a3c", True, True)
    assert space_shape(StudyPlan("MinAtar/Breakout-v1")).vector_obs is False
    for plan, shape in ((cartpole, space_shape(cartpole)), (pendulum, space_shape(pendulum))):
        draws = sampled(shape, 40)
        assert {d["n_envs"] for d in draws} <= set(N_ENVS[plan.algo])
        assert ("use_sde" in draws[0]) == shape.continuous_actions
        assert {type(d["learning_rate"]) for d in draws} == {float, str}  # constant, lin_X
        for settings in draws:
            config = run_config(plan, settings, seed=3)  # never raises
            assert config.seed == 3 and config.n_timesteps == 1000
            assert config.hyperparams.n_steps == settings["n_steps"]
            assert config.hyperparams.use_rms_prop == ("rms_prop_eps" in settings)
        for settings in draws[:3]:  # and the model builds
            model = make_model(run_config(plan, settings, seed=0), threads=1)
            assert model.policy.config.net_arch == tuple(settings["policy_kwargs"]["net_arch"])
            if model.env is not None:
                model.env.close()


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_every_draw_over_every_preset_is_a_valid_run(algo):
    """The space's keys never clash with a preset's (an Adam preset drawing RMSprop, Atari's
    TensorFlow-style RMSprop drawing Adam)."""
    draws = sampled(SpaceShape(algo, True, True), 40)
    rmsprop = [d for d in draws if d["use_rms_prop"]][:2]
    draws = rmsprop + [d for d in draws if not d["use_rms_prop"]][:2]  # both optimizers
    families = {"minatar": "MinAtar/Breakout-v1", "atari": "ALE/Pong-v5", "mujoco": "Pusher-v5"}
    for name in load_presets(algo):
        env = families.get(name, name)
        plan = StudyPlan(env, algo=algo, timesteps=1000)
        for settings in draws:
            run_config(plan, settings, seed=0)  # never raises


def test_the_start_trial_is_the_preset_as_near_as_the_space_says_it():
    shape = SpaceShape("a2c", vector_obs=True, continuous_actions=True)
    params = start_params(resolve_run_config("Pendulum-v1"), shape)
    assert params == {
        "learning_rate": 7e-4, "lr_schedule": "linear", "n_envs": 8, "n_steps": 8,
        "gamma": 0.9, "gae_lambda": 0.9, "ent_coef": 0.0, "vf_coef": 0.4, "max_grad_norm": 0.5,
        "normalize_advantage": False, "critic_lr_scale": 1.0, "normalize_reward": True,
        "normalize_value_targets": False, "optimizer": "rmsprop",
        "rms_prop_eps": 1e-5, "normalize_obs": True, "net_arch": "medium", "activation": "tanh",
        "ortho_init": False, "use_sde": True, "log_std_init": -2.0,
    }  # fmt: skip
    settings = sample_settings(optuna.trial.FixedTrial(params), shape)
    assert settings["learning_rate"] == "lin_0.0007" and settings["use_sde"]
    # LunarLander's 24 envs and Adam betas (0, 0.99): the nearest the space has
    lander = start_params(resolve_run_config("LunarLander-v3"), SpaceShape())
    assert lander["n_envs"] in (16, 32) and lander["net_arch"] == "small"
    assert (lander["optimizer"], lander["adam_beta1"], lander["adam_beta2"]) == ("adam", 0.0, 0.99)
    assert start_params(resolve_run_config("ALE/Pong-v5"), SpaceShape(vector_obs=False)) == {
        "learning_rate": 7e-4, "lr_schedule": "constant", "n_envs": 16, "n_steps": 5,
        "gamma": 0.99, "gae_lambda": 1.0, "ent_coef": 0.01, "vf_coef": 0.25,
        "max_grad_norm": 0.5, "normalize_advantage": False, "critic_lr_scale": 1.0,
        "normalize_reward": False,
        "normalize_value_targets": False, "optimizer": "rmsprop", "rms_prop_eps": 1e-5,
    }  # fmt: skip


def test_a_preset_stays_the_base_and_its_policy_kwargs_merge():
    plan = StudyPlan("MinAtar/Breakout-v1", timesteps=1000)
    shape = space_shape(plan)
    settings = sampled(shape, 1)[0]
    config = run_config(plan, settings, seed=0)
    assert config.policy == "CnnPolicy"  # the minatar preset's
    assert config.hyperparams.policy_kwargs["image_channels"] == "last"
    assert "net_arch" not in settings.get("policy_kwargs", {})
    plan = StudyPlan("LunarLander-v3", timesteps=1000)
    settings = {"policy_kwargs": {"activation": "relu"}}
    kwargs = run_config(plan, settings, seed=0).hyperparams.policy_kwargs
    assert kwargs["net_arch"] == [32, 32] and kwargs["activation"] == "relu"


def test_a_trial_reports_every_evaluation_of_every_seed_and_returns_their_median():
    plan = StudyPlan("CartPole-v1", timesteps=1024, seeds=3, evaluations=2, eval_episodes=2)
    settings = {"n_envs": 4, "n_steps": 8}
    reports: list[tuple[float, int]] = []
    result = run_trial(plan, settings, lambda value, step: reports.append((value, step)) or False)
    assert [step for _, step in reports] == [0, 1, 2, 3, 4, 5]
    finals = [reports[1][0], reports[3][0], reports[5][0]]  # each seed's last evaluation
    assert result.per_seed == finals
    assert result.value == sorted(finals)[1]
    again = run_trial(plan, settings, lambda value, step: False)
    assert again.per_seed == result.per_seed  # seeds 0-2, evaluation seeds apart: repeatable


def test_a_pruned_trial_stops_training_at_the_report():
    plan = StudyPlan("CartPole-v1", timesteps=50_000, seeds=2, evaluations=5, eval_episodes=1)
    steps = []
    with pytest.raises(Pruned) as caught:
        run_trial(plan, {"n_envs": 4, "n_steps": 8}, lambda v, step: steps.append(step) or True)
    assert caught.value.step == 0 and steps == [0]  # the first report; nothing trained after


def _study(study_dir: Path):
    return optuna.load_study(study_name=STUDY_NAME, storage=storage_url(study_dir))


def _tune(study_dir: Path, *extra):
    return ["tune", "CartPole-v1", *TINY, "--study-dir", study_dir, *extra]


def test_a_tiny_study_runs_and_its_best_settings_train_through_config(tmp_path, capsys):
    study_dir = tmp_path / "study"
    result = acrl(*_tune(study_dir, "--trials", 3))
    assert result.returncode == 0, result.stderr
    assert "trial 2:" in result.stdout and "best: trial" in result.stdout
    study = _study(study_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    first = study.trials[0]  # the preset's settings, as the space says them
    preset = resolve_run_config("CartPole-v1")
    assert first.user_attrs["start"] and "trial 0 is the preset's settings" in result.stdout
    assert first.params == start_params(preset, space_shape(StudyPlan("CartPole-v1")))
    assert (first.params["n_envs"], first.params["gamma"]) == (32, 0.98)
    assert not any(t.user_attrs.get("start") for t in study.trials[1:])
    for name in ("best.yml", "trials.csv", "history.png", "importances.png", "study.yaml"):
        assert (study_dir / name).stat().st_size > 0, name
    assert (study_dir / "history.png").read_bytes().startswith(b"\x89PNG")
    for name, check in STUDY_NAMED.items():  # what a resume checks before replacing them
        assert check(study_dir / name), name
    best = yaml.safe_load((study_dir / "best.yml").read_text())
    params = study.best_trial.params
    assert best["n_steps"] == params["n_steps"] and best["gamma"] == params["gamma"]
    assert best["policy_kwargs"]["activation"] == params["activation"]
    rows = (study_dir / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("number,state,value")
    # the best settings train through --config, as the file's header says
    run_dir = tmp_path / "run"
    train = ["train", "--config", study_dir / "best.yml", "--timesteps", 600, "--run-dir", run_dir]
    assert main([*map(str, train), "--no-progress"]) == 0
    trained = yaml.safe_load((run_dir / "config.yaml").read_text())
    plan = StudyPlan("CartPole-v1", timesteps=1500, seeds=2, evaluations=2, eval_episodes=2)
    settings = sample_settings(optuna.trial.FixedTrial(params), space_shape(plan))
    wanted = run_config(plan, settings, seed=0).to_dict()  # the best trial's seed-0 run
    for key in ("hyperparams", "env_id", "env_kwargs", "env_wrapper", "n_envs", "policy"):
        assert trained[key] == wanted[key], key
    # the same command again: the study holds its trials already, nothing reruns
    assert main([*map(str, _tune(study_dir, "--trials", 3))]) == 0
    again = capsys.readouterr().out
    assert "resumed: 3 trials so far" in again and "trial 0:" not in again
    assert len(_study(study_dir).trials) == 3


def test_jobs_run_trials_in_worker_processes_up_to_the_budget(tmp_path):
    study_dir = tmp_path / "study"
    args = ["tune", "CartPole-v1", "--timesteps", 15_000, "--seeds", 2, "--evaluations", 2]
    result = acrl(*args, "--study-dir", study_dir, "--trials", 3, "--jobs", 2)
    assert result.returncode == 0, result.stderr
    trials = _study(study_dir).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3  # counted under a lock
    assert len({t.user_attrs["process"] for t in trials}) == 2  # trials of ~1-2 s: both ask
    assert "best: trial" in result.stdout


def _started(proc: subprocess.Popen, line: str, timeout: float = 120.0) -> list[str]:
    """Lines of ``proc``'s stdout until one starts with ``line``."""
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        text = proc.stdout.readline()
        seen.append(text)
        if text.startswith(line):
            return seen
    raise AssertionError(f"no {line!r} in {seen}")


def _popen(args, **kwargs):
    argv = acrl_argv(*args)
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def _in_trial_1(study_dir: Path, timesteps: int, trials: int):
    """``acrl tune`` started, once its trial 1 trains: the process and its arguments."""
    args = ["tune", "CartPole-v1", "--timesteps", timesteps, "--seeds", 2, "--evaluations", 2]
    args += ["--eval-episodes", 2, "--study-dir", study_dir, "--trials", trials]
    proc = _popen(args)
    _started(proc, "trial 0:")
    _training(study_dir, 1)
    return proc, args


def _training(study_dir: Path, number: int, timeout: float = 60.0) -> None:
    """Wait until trial ``number`` trains: running in the study's storage with its settings
    drawn (not a fixed sleep: a fast machine finished a 0.5 s trial inside one)."""
    deadline = time.monotonic() + timeout
    trials = []
    while time.monotonic() < deadline:
        trials = _study(study_dir).trials
        if len(trials) > number:
            trial = trials[number]
            if trial.state == TrialState.RUNNING and "process" in trial.user_attrs:
                return
        time.sleep(0.02)
    raise AssertionError(f"trial {number} never trained: {[t.state for t in trials]}")


def test_a_killed_study_resumes_and_runs_the_interrupted_trial_again(tmp_path):
    study_dir = tmp_path / "study"
    proc, args = _in_trial_1(study_dir, timesteps=20_000, trials=3)  # trial 1 ~1.6 s here
    proc.kill()
    proc.wait(30)
    killed = _study(study_dir)
    assert [t.state for t in killed.trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    resumed = acrl(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed: 1 trials so far, 1 interrupted to run again" in resumed.stdout
    trials = _study(study_dir).trials
    states = [t.state for t in trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert trials[1].user_attrs["interrupted"] is True
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params


def test_a_stop_now_while_the_settings_are_drawn_marks_the_trial_interrupted(monkeypatch):
    """From the moment a trial is asked for, a stop-now (SIGTERM, a second Ctrl-C) leaves it
    failed as interrupted, not running; one already told stays as told."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    plan = StudyPlan("CartPole-v1", timesteps=1000)

    def stop_now(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_study, "sample_settings", stop_now)
    with pytest.raises(KeyboardInterrupt):
        tune_study._run_one(study, study.ask(), plan, space_shape(plan))
    interrupted = study.trials[0]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["interrupted"]
    told = study.ask()
    study.tell(told, 1.0)
    tune_study._mark_interrupted(study, told)  # a stop-now after the tell
    assert study.trials[1].state == TrialState.COMPLETE
    assert "interrupted" not in study.trials[1].user_attrs


def test_ctrl_c_lets_the_running_trial_finish_and_stops(tmp_path):
    study_dir = tmp_path / "study"
    proc, _ = _in_trial_1(study_dir, timesteps=20_000, trials=50)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGINT: stopping after the running trials" in err
    assert "Traceback" not in err
    study = _study(study_dir)
    assert 2 <= len(study.trials) < 50
    assert all(t.state == TrialState.COMPLETE for t in study.trials)  # the running one finished
    assert (study_dir / "best.yml").exists() and "best: trial" in out


def test_sigterm_stops_at_once_and_the_trial_runs_again_on_resume(tmp_path):
    study_dir = tmp_path / "study"
    proc, _ = _in_trial_1(study_dir, timesteps=40_000, trials=2)  # trials of ~10 s
    sent = datetime.now()  # Optuna's clock for a trial's end
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)  # then the results are written
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    trials = _study(study_dir).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["interrupted"] is True
    assert (trials[1].datetime_complete - sent).total_seconds() < 1.0  # training stopped
    assert "interrupted (run again on resume)" in (study_dir / "trials.csv").read_text()


def test_ctrl_c_in_a_terminal_while_the_job_processes_start(tmp_path):
    """Ctrl-C reaches the whole process group as soon as the first job process exists: the
    tune stops after the running trials, not ignoring it (a parent that ignored SIGINT while
    starting them ran every trial)."""
    args = ["tune", "CartPole-v1", "--timesteps", 4000, "--seeds", 1, "--evaluations", 1]
    proc = _popen(
        [*args, "--study-dir", tmp_path / "study", "--trials", 40, "--jobs", 2],
        start_new_session=True,
    )
    err = ctrl_c_at_first_child(proc, timeout=90)
    assert proc.returncode == 130, err
    assert "SIGINT: stopping after the running trials" in err and "Traceback" not in err
    assert len(_study(tmp_path / "study").trials) <= 4  # a running trial each, at most
    assert_group_ends(proc.pid)


def test_failing_and_diverging_trials_are_noted_and_the_study_goes_on(tmp_path, capsys):
    study_dir = tmp_path / "broken"
    args = ["tune", "acrl-tests/Broken-v0", "--timesteps", 4000, "--seeds", 1, "--trials", 2]
    assert main([*map(str, args), "--evaluations", "1", "--study-dir", str(study_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("failed: ") == 2 and "the simulator exploded" in out
    assert [t.state for t in _study(study_dir).trials] == [TrialState.FAIL] * 2
    assert "no trial has finished" in out and not (study_dir / "best.yml").exists()
    for algo in ("a2c", "a3c"):  # a NaN reward at step 30: pruned as diverged
        base = {"n_envs": 1, "n_workers": 1} if algo == "a3c" else {"n_envs": 1}
        plan = StudyPlan("tests.envs:acrl-tests/Faulty-v0", algo, 400, 1, 1, 1, base=base)
        with pytest.raises(Diverged, match="NonFinite|non-finite|NaN"):
            run_trial(plan, {}, lambda value, step: False)


def test_an_a3c_trial_trains_its_workers_and_reports_by_progress():
    plan = StudyPlan("CartPole-v1", "a3c", 10_000, 1, 2, 2, base={"n_workers": 2, "n_envs": 2})
    reports: list[int] = []
    result = run_trial(plan, {}, lambda value, step: reports.append(step) or False)
    assert reports == [0, 1] and len(result.per_seed) == 1


def _tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_bad_inputs_are_one_line_and_change_nothing(tmp_path, monkeypatch, capsys):
    def user_error(args, fragment):
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("acrl: error: ") and fragment in err[0], err

    study_dir = tmp_path / "study"
    assert_user_error(acrl(*_tune(study_dir, "--trials", 0)), "--trials must be")  # as users see
    user_error(["tune", "NoSuchEnv-v9", "--study-dir", study_dir], "NoSuchEnv-v9")
    user_error(_tune(study_dir, "--jobs", 0), "--jobs must be")
    user_error(_tune(study_dir, "--evaluations", 0), "--evaluations must be")
    other_env = tmp_path / "acrobot.yml"
    other_env.write_text("env_id: Acrobot-v1\ngamma: 0.99\n")
    user_error(_tune(study_dir, "--config", other_env), "is for Acrobot-v1, not CartPole-v1")
    (tmp_path / "a-file").write_text("")
    user_error(_tune(tmp_path / "a-file" / "study"), "cannot create study dir")
    assert not study_dir.exists()
    assert main([str(a) for a in _tune(study_dir, "--trials", 1)]) == 0
    before = _tree(study_dir)
    other = ["tune", "Acrobot-v1", *TINY, "--study-dir", study_dir, "--trials", 1]
    user_error(other, "is a study with env_id='CartPole-v1'")
    user_error(_tune(study_dir, "--trials", 1, "--seeds", 3), "seeds=2")
    assert _tree(study_dir) == before
    database = study_dir / "study.db"
    kept = database.read_bytes()
    for damaged in (b"not a database" * 400, kept[: len(kept) // 2]):  # foreign, cut short
        database.write_bytes(damaged)
        user_error(_tune(study_dir, "--trials", 2), "cannot be read as an Optuna study")
        assert database.read_bytes() == damaged
    database.write_bytes(kept)
    for name, mine in (("best.yml", "learning_rate: 3e-4  # my pick\n"), ("trials.csv", "a,b\n")):
        path = study_dir / name
        kept = path.read_bytes()
        path.write_text(mine)  # replaced at the end of a resumed study: refused before it
        user_error(_tune(study_dir, "--trials", 2), f"{name} does not hold what acrl writes")
        assert path.read_text() == mine
        path.write_bytes(kept)
    assert _tree(study_dir) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    user_error(_tune(mine, "--trials", 1), "holds files but no acrl study")
    assert _tree(mine) == {"notes.txt": hashlib.sha256(b"my notes").hexdigest()}
    monkeypatch.setitem(sys.modules, "optuna", None)  # Optuna not installed
    user_error(
        ["tune", "CartPole-v1", "--study-dir", tmp_path / "none"], "pip install 'acrl[tune]'"
    )
