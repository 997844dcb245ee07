"""``acrl tune``: an Optuna search (TPE sampler, median pruner) over the documented space
(acrl.tune.space), several seeds a trial with their median as the objective, the study on
disk so that a killed tune resumes, and the best settings as a file ``acrl train --config``
takes (acrl.tune.results)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from acrl.errors import UserError
from acrl.run import lock
from acrl.tune.processes import StopRequests, run_workers
from acrl.tune.space import SpaceShape, sample_settings, start_params
from acrl.tune.study import (
    START,
    Budget,
    check_study_dir,
    counted,
    open_study,
    optimize,
    requeue_interrupted,
    write_study_file,
)
from acrl.tune.trial import StudyPlan, run_config, run_trial, space_shape

__all__ = ["Budget", "SpaceShape", "StudyPlan", "run_trial", "sample_settings", "tune"]


def tune(plan: StudyPlan, study_dir: Path, budget: Budget) -> int:
    """Run (or resume) the study in ``study_dir`` until it holds ``budget.trials`` trials or
    a signal stops it, then write its results (acrl.tune.results). The exit status: 0, or
    128 + the signal's number."""
    shape = space_shape(plan)  # an env or setting the model refuses: one line, nothing written
    resumed = check_study_dir(study_dir, plan)
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create study dir {study_dir}: {exc.strerror}") from None
    with lock.RunLock(study_dir), StopRequests(announce=True) as stop:
        resumed = check_study_dir(study_dir, plan)  # again, holding the lock
        if not resumed:
            write_study_file(study_dir, plan)
        study = open_study(study_dir, budget)
        if not study.trials:  # the first trial: the base's settings, as the space says them
            start = start_params(run_config(plan, {}, 0), shape)
            study.enqueue_trial(start, user_attrs={START: True})
        again = requeue_interrupted(study, study_dir)
        before = counted(study)
        lock.announce_takeover(study_dir)
        print(
            f"tuning {plan.algo.upper()} on {plan.env_id}: {budget.trials} trials of "
            f"{plan.timesteps:,} steps x {plan.seeds} seeds -> {study_dir}"
            + (
                f" (resumed: {before} trials so far, {again} interrupted to run again)"
                if resumed
                else ""
            ),
            flush=True,
        )
        try:
            if budget.jobs == 1:
                optimize(plan, shape, study_dir, budget, stop)
            elif not stop() and before < budget.trials:
                run_workers(plan, shape, study_dir, budget, stop, budget.trials - before)
        except KeyboardInterrupt:
            pass  # stopped now: the interrupted trials are marked and run again on resume
        with contextlib.suppress(KeyboardInterrupt):  # a stop-now while writing them
            _report(study_dir, plan, shape, budget)
    return stop.exit_status


def _report(study_dir: Path, plan: StudyPlan, shape: SpaceShape, budget: Budget) -> None:
    from acrl.tune.results import BEST, write_results

    study = open_study(study_dir, budget)
    for note in write_results(study, plan, shape, study_dir):
        print(note, flush=True)
    if (study_dir / BEST).exists():
        best = study.best_trial
        print(
            f"best: trial {best.number}, {best.value:.2f}; settings in {study_dir / BEST} "
            f"(acrl train --config {study_dir / BEST})",
            flush=True,
        )
