"""The worked examples run as scripts and save their figures (with small budgets here)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.pngs import png_size

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, args, size",
    [
        ("gae_lambda.py", [], (1200, 450)),
        ("parallel_envs.py", ["--timesteps", "3000"], (1200, 800)),
        ("a2c_vs_a3c.py", ["--timesteps", "6000"], (1200, 450)),
        ("recurrent.py", ["--timesteps", "3000"], (1200, 450)),
        (
            "lunar_lander.py",
            [
                "--scale",
                "0.004",
                "--continuous-scale",
                "0.1",
                "--episodes",
                "2",
                "--output",
                "{tmp}/out",
            ],
            (1200, 450),
        ),
    ],
)
def test_example_runs_and_saves_its_figure(tmp_path, script, args, size):
    out = tmp_path / "figure.png"
    args = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert png_size(out) == size
    assert f"figure: {out}" in result.stdout
