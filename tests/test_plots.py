"""Learning curves, diagnostics, policy slices and the advantage histogram."""

import subprocess

import numpy as np
import pytest

from acrl.algorithms.registry import load_model
from acrl.cli.multiseed import steps_to_target
from acrl.plotting.curves import diagnostics, learning_curve
from acrl.plotting.policy_slice import policy_slice
from acrl.plotting.runs import group_runs, load_runs, moving_average, read_columns
from tests.pngs import png_size
from tests.test_cli import acrl, acrl_argv, assert_user_error

TRAIN = ["train", "CartPole-v1", "--timesteps", 4000, "--n-envs", 4, "--log-interval", 5]


def train_args(run_dir, *extra):
    return [*TRAIN, "--run-dir", run_dir, "--no-progress", *extra]


def train(run_dir, *extra):
    result = acrl(*train_args(run_dir, *extra))
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of one config and one run of another (a different learning rate), trained
    side by side."""
    root = tmp_path_factory.mktemp("plots")
    extras = {
        "s0": ["--seed", 0],
        "s1": ["--seed", 1],
        "lr": ["--seed", 0, "--set", "learning_rate=1e-4"],
    }
    procs = {
        name: subprocess.Popen(
            acrl_argv(*train_args(root / name, *extra)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra in extras.items()
    }
    for proc in procs.values():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    return {name: root / name for name in procs}


def test_moving_average_is_the_mean_of_the_last_window_values():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert moving_average(values, 2).tolist() == [1.0, 1.5, 2.5, 3.5, 7.0]
    assert moving_average(values, 10).tolist() == [1.0, 1.5, 2.0, 2.5, 4.0]


def test_steps_to_target_needs_a_full_window_at_the_target():
    steps = np.array([10, 20, 30, 40, 50])
    returns = np.array([5.0, 1.0, 9.0, 9.0, 9.0])
    assert steps_to_target(steps, returns, 9.0, window=2) == 40  # episodes 3-4: mean 9
    assert steps_to_target(steps, returns, 5.0, window=2) == 30  # episodes 2-3: mean 5
    assert steps_to_target(steps, returns, 9.5, window=2) is None
    assert steps_to_target(steps, returns, 0.0, window=6) is None  # fewer episodes than window


def test_training_writes_episodes_and_the_advantage_histogram(runs):
    run_dir = runs["s0"]
    episodes = read_columns(run_dir / "episodes.csv")
    assert episodes["return"].size > 20
    assert np.all(np.diff(episodes["timesteps"]) >= 0)
    assert np.all(episodes["return"] == episodes["length"])  # CartPole: +1 per step
    advantages = np.load(run_dir / "advantages.npy")
    assert advantages.shape == (4 * 8,)  # 4 envs x the preset's 8 steps, all valid
    assert png_size(run_dir / "advantages.png") == (700, 450)


def test_runs_group_by_config_with_labels_that_name_the_difference(runs):
    groups = group_runs(load_runs([runs["s0"], runs["s1"], runs["lr"]]))
    assert [len(members) for _, members in groups] == [2, 1]
    assert groups[0][0] == "learning_rate=lin_0.003 (2 seeds)"
    assert groups[1][0] == "learning_rate=0.0001 (seed 0)"


def test_figures_have_their_axes(runs):
    loaded = load_runs([runs["s0"], runs["s1"], runs["lr"]])
    curve = learning_curve(loaded, target=475)
    assert len(curve.axes) == 1
    (legend,) = curve.legends  # under the plot, not over it
    assert len(legend.get_texts()) == 3  # two configs and the target
    assert len(diagnostics(loaded).axes) == 8
    model = load_model(runs["s0"])
    assert len(policy_slice(model, (2, 3), resolution=11).axes) == 6  # 2 actions + value, bars


def test_plot_command_writes_both_pngs(runs, tmp_path):
    out = tmp_path / "curves.png"
    result = acrl("plot", runs["s0"], runs["s1"], runs["lr"], "--out", out, "--band", "ci95")
    assert result.returncode == 0, result.stderr
    assert png_size(out) == (900, 550)
    assert png_size(tmp_path / "curves-diagnostics.png") == (1600, 800)
    assert str(out) in result.stdout


def test_plot_policy_slice_command(runs, tmp_path):
    out = tmp_path / "slice.png"
    result = acrl(
        "plot", "--policy-slice", runs["s0"], "--dims", "2,3", "--fixed=-0.1,0,0,0",
        "--range=-0.2:0.2,-1:1", "--resolution", 21, "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert png_size(out) == (1260, 360)  # three 4.2 x 3.6 inch panels at 100 dpi


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["plot", "{tmp}"], "is not a run directory"),
        (["plot", "{run}", "--out", "{tmp}/curve.pdf"], "must name a .png"),
        (["plot", "--policy-slice", "{run}", "--dims", "2,4"], "dimension 4 is out of range"),
        (["plot", "--policy-slice", "{run}", "--dims", "1,1"], "two different dimensions"),
        (["plot", "--policy-slice", "{run}", "--dims", "a,b"], "comma-separated numbers"),
        (["plot", "--policy-slice", "{run}", "--fixed", "0,0"], "needs 4 values"),
        (["plot", "--policy-slice", "{run}", "--range", "1:0,0:1"], "LOW < HIGH"),
        (["plot", "{run}", "--window", "0"], "--window must be >= 1"),
    ],
)
def test_plot_mistakes_are_one_line_with_status_2(runs, tmp_path, args, fragment):
    args = [a.format(tmp=tmp_path, run=runs["s0"]) for a in args]
    assert_user_error(acrl(*args), fragment)


def test_legends_stay_on_the_canvas_and_off_the_data_with_many_long_labels(tmp_path):
    """Six compared configs whose labels name long settings: the legend sits under the plots,
    inside the figure, overlapping no axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from acrl.plotting.runs import Run

    steps = np.arange(1, 51, dtype=float) * 100
    metrics = {k: np.linspace(0.1, 1.0, 50) for k in ("policy_loss", "value_loss", "entropy")}
    metrics["timesteps"] = steps
    episodes = {"timesteps": steps, "return": np.linspace(0, 100, 50)}
    configs = [
        {"env_id": "CartPole-v1", "algo": "a2c", "seed": 0,
         "policy_kwargs": {"net_arch": {"pi": [256, 256, 256], "vf": [256, 256, 256]}},
         "learning_rate": f"lin_{i}e-4", "a_rather_long_setting_name": "x" * (20 * i)}
        for i in range(1, 7)
    ]  # fmt: skip
    runs = [Run(tmp_path, c, metrics, episodes) for c in configs]
    assert max(len(label) for label, _ in group_runs(runs)) > 150
    for fig in (learning_curve(runs), diagnostics(runs)):
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        (legend,) = fig.legends
        box, canvas = legend.get_window_extent(renderer), fig.bbox
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1
        assert canvas.y0 <= box.y0 and box.y1 <= canvas.y1
        assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
