"""Callbacks that compose (callables, lists, hook objects) and evaluation during training."""

import csv
import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from acrl import A2C, A3C, BaseCallback, CallbackList, EvalCallback, StopOnReturn
from acrl.run.eval_callback import read_evaluations
from tests.test_cli import acrl


def small_a2c(**kwargs):
    return A2C("MlpPolicy", "CartPole-v1", n_envs=4, n_steps=5, seed=0, **kwargs)


class Hooks(BaseCallback):
    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def on_training_start(self, model):
        self.calls.append(("start", model.num_timesteps))

    def on_rollout_end(self, model):
        self.calls.append(("update", model.num_timesteps))
        if self.fail_at is not None and model.num_updates >= self.fail_at:
            raise RuntimeError("a callback's own error")
        return True

    def on_training_end(self, model):
        self.calls.append(("end", model.num_timesteps))


def test_a_list_of_callables_and_hook_objects_compose():
    seen, hooks = [], Hooks()
    model = small_a2c()
    model.learn(200, callback=[lambda m: seen.append(m.num_updates), [hooks]])
    assert seen == list(range(1, 11))
    assert hooks.calls[0] == ("start", 0) and hooks.calls[-1] == ("end", 200)
    assert [step for kind, step in hooks.calls if kind == "update"] == list(range(20, 201, 20))
    stopper = CallbackList([lambda m: True, lambda m: m.num_updates < 3])
    assert small_a2c().learn(10_000, callback=stopper).num_updates == 3


def test_training_end_runs_after_an_error_and_bad_callbacks_are_refused_up_front():
    hooks = Hooks(fail_at=2)
    with pytest.raises(RuntimeError, match="a callback's own error"):
        small_a2c().learn(200, callback=hooks)
    assert hooks.calls[-1] == ("end", 40)
    model = small_a2c()
    with pytest.raises(TypeError, match="a callback is a callable, an object with"):
        model.learn(200, callback=[lambda m: True, 42])
    assert model.num_updates == 0
    with pytest.raises(ValueError, match="checkpoint_every saves into the model's log_dir"):
        model.learn(200, checkpoint_every=100)


def test_eval_callback_records_keeps_the_best_model_and_logs_to_tensorboard(tmp_path):
    best_weights = []
    model = small_a2c(log_dir=tmp_path / "run")
    evaluation = EvalCallback(
        eval_freq=400,
        n_eval_episodes=3,
        best_model_save_path=tmp_path / "best",
        log_path=tmp_path / "run",
        callback_on_new_best=lambda m: best_weights.append(m.params.vector.detach().clone()),
    )
    model.learn(2_000, callback=evaluation, log_interval=20)
    assert evaluation.evaluations_timesteps == [400, 800, 1200, 1600, 2000]
    assert all(len(r) == 3 for r in evaluation.evaluations_results)
    rows = read_evaluations(tmp_path / "run" / "evaluations.csv")
    assert [r["timesteps"] for r in rows] == evaluation.evaluations_timesteps
    means = [float(np.mean(r)) for r in evaluation.evaluations_results]
    assert [r["mean_return"] for r in rows] == pytest.approx(means)
    assert evaluation.best_mean_reward == max(means) and model.last_evaluation == (2000, means[-1])
    assert len(best_weights) == sum(
        m > max(means[:i], default=-math.inf) for i, m in enumerate(means)
    )
    best = A2C.load(tmp_path / "best" / "best_model.acrl")
    assert torch.equal(best.params.vector, best_weights[-1])
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    scalars = events.Scalars("eval/mean_return")
    assert [e.step for e in scalars] == evaluation.evaluations_timesteps
    assert [e.value for e in scalars] == pytest.approx(means)


def test_evaluation_is_seeded_apart_from_training_and_never_updates_normalization():
    def run():
        model = small_a2c(normalize_obs=True)
        evaluation = EvalCallback("CartPole-v1", eval_freq=300, n_eval_episodes=2)
        model.learn(600, callback=evaluation)
        return model, evaluation

    model, evaluation = run()
    _, again = run()
    assert evaluation.evaluations_results == again.evaluations_results  # same seed, same runs
    statistics = {k: v.clone() for k, v in model.policy.state_dict().items() if "rms" in k}
    assert statistics
    evaluation._next = None
    assert evaluation.evaluate(model) is True
    assert all(torch.equal(v, model.policy.state_dict()[k]) for k, v in statistics.items())
    # the first evaluation's episodes start from the env seeded at the model's seed + 10,000
    fresh = EvalCallback("CartPole-v1", eval_freq=300, n_eval_episodes=2, seed=10_000)
    reference = EvalCallback("CartPole-v1", eval_freq=300, n_eval_episodes=2)
    assert fresh.evaluate(model) is True and reference.evaluate(model) is True
    assert fresh.evaluations_results == reference.evaluations_results


def test_stop_on_return_judges_the_evaluation():
    stop = StopOnReturn(9.0, on="evaluation")
    evaluation = EvalCallback("CartPole-v1", eval_freq=300, n_eval_episodes=2)
    model = small_a2c()
    model.learn(10_000, callback=[evaluation, stop])
    assert stop.solved_at == 300 and model.num_timesteps == 300
    after_eval = StopOnReturn(9.0, on="evaluation")
    model = small_a2c()
    model.learn(10_000, callback=EvalCallback(eval_freq=200, callback_after_eval=after_eval))
    assert after_eval.solved_at == 200 and model.num_timesteps == 200
    with pytest.raises(ValueError, match="on must be 'training' or 'evaluation'"):
        StopOnReturn(1.0, on="eval")
    with pytest.raises(ValueError, match="eval_freq must be an integer >= 1"):
        EvalCallback(eval_freq=0)


def test_a3cs_main_process_evaluates_the_shared_model(tmp_path):
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, n_envs=2, n_steps=5, seed=0)
    evaluation = EvalCallback(eval_freq=500, n_eval_episodes=2, log_path=tmp_path)
    model.learn(5_000, callback=evaluation)  # 10 thresholds: the workers outrun a few
    steps = evaluation.evaluations_timesteps
    assert len(steps) >= 3 and steps == sorted(steps) and steps[0] >= 500
    assert [r["timesteps"] for r in read_evaluations(tmp_path / "evaluations.csv")] == steps


def test_cli_eval_every_writes_evaluations_plots_them_and_resumes_them(tmp_path):
    run_dir = tmp_path / "run"
    common = ["--eval-every", "500", "--eval-episodes", "2", "--no-progress"]
    result = acrl(
        "train", "CartPole-v1", "--timesteps", "2000", "--n-envs", "4", "--run-dir",
        str(run_dir), "--checkpoint-every", "1000", *common,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_evaluations(run_dir / "evaluations.csv")
    # the preset's 4 x 8 steps: the first update at or after each multiple of 500
    expected = [-(-500 * k // 32) * 32 for k in range(1, 7)]  # 512, 1024, 1504, 2016, ...
    assert [r["timesteps"] for r in rows] == expected[:4]
    assert all(r["episodes"] == 2 for r in rows)
    assert (run_dir / "best_model.acrl").is_file()
    with (run_dir / "evaluations.csv").open() as fh:
        assert next(csv.reader(fh))[:3] == ["timesteps", "wall_time", "mean_return"]
    result = acrl("train", "--resume", str(run_dir), "--timesteps", "3000", "--no-progress")
    assert result.returncode == 0, result.stderr
    rows = read_evaluations(run_dir / "evaluations.csv")
    assert [r["timesteps"] for r in rows] == expected
    result = acrl("plot", str(run_dir))
    assert result.returncode == 0, result.stderr
    result = acrl(
        "train", "CartPole-v1", "--timesteps", "200", "--run-dir", str(run_dir), "--overwrite",
        "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (run_dir / "evaluations.csv").exists()
    assert not (run_dir / "best_model.acrl").exists()


def test_evaluations_are_reproducible_over_several_learn_calls_and_judged_afresh():
    def run():
        model = small_a2c()
        evaluation = EvalCallback("CartPole-v1", eval_freq=300, n_eval_episodes=2)
        model.learn(600, callback=evaluation)
        model.learn(600, callback=evaluation, reset_num_timesteps=False)
        return evaluation

    first, second = run(), run()
    assert first.evaluations_timesteps == [300, 600, 900, 1200]
    assert first.evaluations_results == second.evaluations_results
    assert first.evaluation_seed(None, 0) != first.evaluation_seed(None, 1)
    model = small_a2c()
    model.learn(300, callback=EvalCallback(eval_freq=300, n_eval_episodes=2))
    assert model.last_evaluation is not None
    stop = StopOnReturn(9.0, on="evaluation")
    model.learn(400, callback=stop, reset_num_timesteps=False)  # no evaluation in this run
    assert stop.solved_at is None and model.num_timesteps == 700


def test_a_hook_object_without_on_rollout_end_and_a_stop_request_between_callbacks():
    class OnlyStart:
        started = 0

        def on_training_start(self, model):
            self.started += 1

    class Signal:
        stop_requested = False

        def __call__(self, model):
            self.stop_requested = model.num_updates >= 2  # as the CLI's signal handler
            return True

    only, signal, after = OnlyStart(), Signal(), []
    model = small_a2c()
    model.learn(10_000, callback=[only, signal, lambda m: after.append(m.num_updates)])
    assert only.started == 1 and model.num_updates == 2 and after == [1]


def test_a_stop_signal_ends_an_evaluation_or_a_video_under_way(tmp_path):
    """A long evaluation or video between two updates gives up once a stop signal has come
    (the CLI's handler notes it), so that the stop is honoured at once: no row, no video."""
    from acrl import RecordVideoEvery
    from acrl.engines.signals import ask_stop
    from acrl.run.evaluation import EvaluationStopped, evaluate_policy

    model = A2C("MlpPolicy", "CartPole-v1", n_envs=2, seed=0)
    evaluation = EvalCallback(eval_freq=10, n_eval_episodes=100_000, log_path=tmp_path)
    videos = RecordVideoEvery(10, tmp_path / "videos")
    evaluation.on_training_start(model)
    videos(model)  # the first call sets its next multiple of 10 steps
    model.num_timesteps = 20  # due
    ask_stop()
    try:
        with pytest.raises(EvaluationStopped):
            evaluate_policy(model, "CartPole-v1", 5)
        assert evaluation.evaluate(model) is True  # training goes on to its stop
        assert videos(model) is True and videos.recorded == []
    finally:
        ask_stop(False)
    assert evaluation.evaluations_results == [] and not (tmp_path / "evaluations.csv").exists()
    assert list((tmp_path / "videos").glob("*")) == []  # not even a temporary file
    assert len(evaluate_policy(model, "CartPole-v1", 5, return_episode_rewards=True)[0]) == 5
