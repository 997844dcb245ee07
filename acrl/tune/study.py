"""A study of ``acrl tune`` on disk: Optuna's SQLite storage in the study directory, resumed
by running the same command again, one writer at a time (the directory's lock); the trials
a killed or interrupted tune left run again, with the same settings, when it resumes."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acrl.errors import UserError
from acrl.run import lock
from acrl.run.atomic import write_atomic
from acrl.run.owned import check_replaceable
from acrl.run.provenance import STUDY_NAMED
from acrl.tune.space import SpaceShape, sample_settings
from acrl.tune.trial import Diverged, Pruned, StudyPlan, run_trial

STUDY_DB = "study.db"
STUDY_FILE = "study.yaml"
ASK_LOCK = "ask.lock"
STUDY_NAME = "acrl"
INTERRUPTED = "interrupted"  # a trial's user attribute: stopped by a signal or a kill
REQUEUED = "requeued"  # the study's user attribute: the interrupted trials enqueued again
START = "start"  # a trial's user attribute: the base's own settings (a new study's first)


@dataclass(frozen=True)
class Budget:
    """How many trials the study holds at the end, and how they run."""

    trials: int
    jobs: int = 1
    sampler_seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.sampler_seed < 2**32:
            raise UserError(f"--sampler-seed must be in [0, 2**32), got {self.sampler_seed}")
        for name in ("trials", "jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"--{name} must be an integer >= 1, got {value!r}")


def storage_url(study_dir: Path) -> str:
    return f"sqlite:///{(study_dir / STUDY_DB).resolve()}"


def open_storage(study_dir: Path) -> Any:
    """Optuna's SQLite storage of the study; a writer waits up to a minute for another's
    transaction (worker processes share the file)."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return optuna.storages.RDBStorage(
            storage_url(study_dir), engine_kwargs={"connect_args": {"timeout": 60}}
        )
    except SQLAlchemyError as exc:  # a damaged or foreign file: one line, nothing changed
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise UserError(
            f"{study_dir / STUDY_DB} cannot be read as an Optuna study ({reason}); move it "
            "away to start a new study there"
        ) from None


def check_study_dir(study_dir: Path, plan: StudyPlan) -> bool:
    """Whether ``study_dir`` holds this plan's study already; a UserError, before anything
    is written, if it holds another study or something that is not a study."""
    if not study_dir.exists():
        return False
    if not study_dir.is_dir():
        raise UserError(f"study dir {study_dir} exists and is not a directory")
    recorded = read_study_file(study_dir)
    if recorded is None:
        if any(p.name != lock.LOCK_NAME for p in study_dir.iterdir()):
            raise UserError(
                f"study dir {study_dir} holds files but no acrl study ({STUDY_FILE}); "
                "give a new --study-dir"
            )
        return False
    wanted = plan.to_dict()
    for key, value in wanted.items():
        if recorded.get(key) != value:
            raise UserError(
                f"study dir {study_dir} is a study with {key}={recorded.get(key)!r}, not "
                f"{value!r}; give the same settings to resume it, or another --study-dir"
            )
    for name, check in STUDY_NAMED.items():  # replaced as the study goes on: acrl's own only
        named = f"study dir {study_dir}: {name}"
        check_replaceable(study_dir / name, "move it out of the study dir", named, check)
    return True


def read_study_file(study_dir: Path) -> dict[str, Any] | None:
    path = study_dir / STUDY_FILE
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def open_study(study_dir: Path, budget: Budget, worker: int = 0) -> Any:
    """The study in ``study_dir`` (created if new), with a TPE sampler seeded apart for each
    worker and each resumption, and a median pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=open_storage(study_dir),
        direction="maximize",
        load_if_exists=True,
    )
    plan = read_study_file(study_dir) or {}
    seed = (budget.sampler_seed + 1000 * worker + len(study.trials)) % 2**32
    study.sampler = optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=5,
        constant_liar=True,  # workers' running trials count
    )
    study.pruner = optuna.pruners.MedianPruner(
        n_startup_trials=5, n_warmup_steps=max(1, int(plan.get("evaluations", 3)) // 3)
    )
    return study


def requeue_interrupted(study: Any, study_dir: Path) -> int:
    """Trials a killed tune left running, and those a second Ctrl-C stopped, enqueued again
    with their settings (once each); how many. Only the holder of the study's lock may call
    it: no other process runs a trial then."""
    from optuna.trial import TrialState

    storage = open_storage(Path(study_dir))
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    done = set(study.user_attrs.get(REQUEUED, []))
    again = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get(INTERRUPTED) and t.number not in done
    ]
    for trial in again:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    if again:
        study.set_user_attr(REQUEUED, sorted(done | {t.number for t in again}))
    return len(again)


def counted(study: Any) -> int:
    """Trials that count towards the budget: finished, pruned, running, or failed for a
    reason of their own (an interrupted one runs again instead)."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)
    return sum(
        not (t.state == TrialState.FAIL and t.user_attrs.get(INTERRUPTED))
        for t in study.get_trials(deepcopy=False, states=states)
    )


@contextlib.contextmanager
def _ask_lock(study_dir: Path) -> Iterator[None]:
    """One worker at a time counts the trials and asks for the next."""
    with open(study_dir / ASK_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def optimize(
    plan: StudyPlan,
    shape: SpaceShape,
    study_dir: Path,
    budget: Budget,
    stop: Callable[[], bool],
    worker: int = 0,
) -> None:
    """Run trials until the study holds ``budget.trials`` or ``stop()``."""
    study = open_study(study_dir, budget, worker)
    while not stop():
        with _ask_lock(study_dir):
            if counted(study) >= budget.trials:
                return
            trial = study.ask()
        _run_one(study, trial, plan, shape)


def _run_one(study: Any, trial: Any, plan: StudyPlan, shape: SpaceShape) -> None:
    """One trial; a stop-now from the moment it was asked for marks it interrupted (a
    signal while its settings were drawn left it running in the storage)."""
    try:
        _train_and_tell(study, trial, plan, shape)
    except KeyboardInterrupt:
        _mark_interrupted(study, trial)
        raise


def _mark_interrupted(study: Any, trial: Any) -> None:
    """``trial`` failed as interrupted, unless its end was already told."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if all(t.number != trial.number for t in running):
        return
    trial.set_user_attr(INTERRUPTED, True)
    study.tell(trial, state=TrialState.FAIL)


def _train_and_tell(study: Any, trial: Any, plan: StudyPlan, shape: SpaceShape) -> None:
    """Sample, train and tell one trial; a line for the user."""
    from optuna.trial import TrialState

    settings = sample_settings(trial, shape)
    trial.set_user_attr("process", os.getpid())

    def report(value: float, step: int) -> bool:
        trial.report(value, step)
        return bool(trial.should_prune())

    if trial.user_attrs.get(START):
        print(
            f"trial {trial.number} is the preset's settings, as near as the space says them",
            flush=True,
        )
    try:
        result = run_trial(plan, settings, report)
    except Pruned as exc:
        study.tell(trial, state=TrialState.PRUNED)
        print(f"trial {trial.number}: pruned at report {exc.step}", flush=True)
    except Diverged as exc:
        trial.set_user_attr("diverged", str(exc))
        study.tell(trial, state=TrialState.PRUNED)
        print(f"trial {trial.number}: diverged ({exc})", flush=True)
    except Exception as exc:  # settings the env or policy refuses, a worker's fault: noted
        reason = str(exc) if isinstance(exc, (UserError, ValueError)) else repr(exc)
        trial.set_user_attr("error", reason)
        study.tell(trial, state=TrialState.FAIL)
        print(f"trial {trial.number}: failed: {reason}", flush=True)
    else:
        trial.set_user_attr("per_seed", result.per_seed)
        study.tell(trial, result.value)
        seeds = ", ".join(f"{v:.1f}" for v in result.per_seed)
        print(
            f"trial {trial.number}: {result.value:.2f} (seeds: {seeds}) in "
            f"{result.seconds:.0f} s; best so far {study.best_value:.2f} "
            f"(trial {study.best_trial.number})",
            flush=True,
        )


def write_study_file(study_dir: Path, plan: StudyPlan) -> None:
    write_atomic(study_dir / STUDY_FILE, yaml.safe_dump(plan.to_dict(), sort_keys=False).encode())
