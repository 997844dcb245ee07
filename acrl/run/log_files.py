"""The CSV logs of a run directory: their names and columns. No torch here: plots, reports
and the command line read runs with this alone."""

from __future__ import annotations

COLUMNS = (
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
)
EPISODE_COLUMNS = ("timesteps", "wall_time", "return", "length")
LOGS = {"metrics.csv": COLUMNS, "episodes.csv": EPISODE_COLUMNS}  # file name: its header

EVALUATIONS = "evaluations.csv"
EVALUATION_COLUMNS = (
    "timesteps",
    "wall_time",
    "mean_return",
    "std_return",
    "mean_length",
    "episodes",
)
