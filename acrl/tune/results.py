"""What a study leaves for the user: trials.csv, the best settings as a YAML file that
``acrl train --config`` takes, and the study's plots (optimization history, parameter
importances) as PNG."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import yaml
from matplotlib.figure import Figure

from acrl.run.atomic import write_atomic
from acrl.run.provenance import BEST_START, TRIAL_COLUMNS
from acrl.tune.space import SpaceShape, sample_settings
from acrl.tune.trial import StudyPlan, run_config

BEST = "best.yml"
TRIALS = "trials.csv"
HISTORY = "history.png"
IMPORTANCES = "importances.png"


def write_results(study: Any, plan: StudyPlan, shape: SpaceShape, study_dir: Path) -> list[str]:
    """Every output the study's trials allow; a line for each one it could not write yet."""
    notes: list[str] = []
    write_atomic(study_dir / TRIALS, trials_csv(study))
    complete = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    if not complete:
        return ["no trial has finished: no best settings or plots yet"]
    write_atomic(study_dir / BEST, best_yaml(study, plan, shape).encode())
    notes += save_plots(study, study_dir)
    return notes


def trials_csv(study: Any) -> bytes:
    """One row per trial: number, state, value, seconds, per-seed values, then the params."""
    names = sorted({name for t in study.trials for name in t.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*TRIAL_COLUMNS, *names])
    for t in study.trials:
        seconds = t.duration.total_seconds() if t.duration is not None else ""
        per_seed = " ".join(f"{v:.4g}" for v in t.user_attrs.get("per_seed", []))
        value = "" if t.value is None else t.value
        writer.writerow(
            [t.number, t.state.name, value, seconds, per_seed, _note(t.user_attrs)]
            + [_shown(t.params.get(name, "")) for name in names]
        )
    return out.getvalue().encode()


def _note(attrs: dict[str, Any]) -> str:
    """Why a trial ended as it did, or where it came from."""
    notes = [f"{key}: {attrs[key]}" for key in ("diverged", "error") if key in attrs]
    if attrs.get("interrupted"):
        notes.append("interrupted (run again on resume)")
    if "retry_of" in attrs:
        notes.append(f"run again for trial {attrs['retry_of']}")
    return "; ".join(notes)


def _shown(value: Any) -> Any:
    """A float parameter as the trial trained with it (acrl.tune.space rounds to 4 digits)."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def best_yaml(study: Any, plan: StudyPlan, shape: SpaceShape) -> str:
    """The best trial's settings over the env's preset, as flat preset keys, with a header
    that says where they come from."""
    from optuna.trial import FixedTrial

    best = study.best_trial
    settings = sample_settings(FixedTrial(best.params), shape)
    config = run_config(plan, settings, seed=0)
    run = config.to_dict()
    values: dict[str, Any] = {"algo": config.algo, "env_id": config.env_id}
    keys = ["env_kwargs", "env_packages", "env_wrapper", "frame_stack", "vectorization"]
    keys += ["n_envs", "n_timesteps", "policy"]
    if config.algo == "a3c":
        keys += ["n_workers", "lock_updates", "runtime"]
    values.update({key: run[key] for key in keys})  # all of them: the env's preset is not
    values.update(run["hyperparams"])  # what --config builds on if the study's base was not
    per_seed = ", ".join(f"{v:.2f}" for v in best.user_attrs.get("per_seed", []))
    header = (
        f"{BEST_START.decode()}the best of {len(study.trials)} trials (trial {best.number}) on "
        f"{plan.env_id} ({plan.algo}): median {best.value:.2f} over seeds 0-{plan.seeds - 1} "
        f"({per_seed}),\n# {plan.eval_episodes} deterministic episodes each after "
        f"{plan.timesteps:,} steps. Train with: acrl train --config {BEST}\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False)


def save_plots(study: Any, study_dir: Path) -> list[str]:
    """history.png always; importances.png once the finished trials differ enough."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as optuna_plots

    notes = []
    plots: list[tuple[str, Callable[[], Any]]] = [
        (HISTORY, lambda: optuna_plots.plot_optimization_history(study)),
        (  # PED-ANOVA: no scikit-learn, unlike fANOVA (Optuna 4's default)
            IMPORTANCES,
            lambda: optuna_plots.plot_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator()
            ),
        ),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, plot in plots:
            try:
                axes = plot()
            except (RuntimeError, ValueError, ZeroDivisionError, ImportError) as exc:
                notes.append(f"{name} not written: {exc}")
                continue
            figure = cast(Figure, axes.figure)
            rows = len(study.best_trial.params) if name == IMPORTANCES else 0
            figure.set_size_inches(9, max(4.5, 0.3 * rows))
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
            plt.close(figure)
            write_atomic(study_dir / name, buffer.getvalue())
    return notes
