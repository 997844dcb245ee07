"""Steps/s of the backends that scale A2C and A3C, on this machine, in one run.

CartPole-v1 with the A2C preset's global batch (32 envs x 8 steps per update): one process;
torchrun with 1 rank (32 envs) and 2 ranks (16 envs each); and the A3C preset with 1 and 2
worker processes, and with 1 and 2 Ray worker actors on a local Ray instance (the install of
the `ray` extra). Each figure is the steady-state rate of the run's metrics.csv (the rows
after the first, so start-up and the first update are left out), from `acrl train` as a
user calls it.

    cd benchmarks && ../.venv/bin/python scaling.py [--timesteps 400000]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
ACRL = ["-m", "acrl", "train", "CartPole-v1", "--no-progress", "--log-interval", "20"]


def steady_rate(run_dir: Path) -> float:
    """Steps per second between the first and the last metrics row."""
    with open(run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    first, last = rows[0], rows[-1]
    steps = int(last["timesteps"]) - int(first["timesteps"])
    return steps / (float(last["wall_time"]) - float(first["wall_time"]))


def measure(name: str, argv: list[str], run_dir: Path) -> float:
    done = subprocess.run([*argv, "--run-dir", str(run_dir)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
    return steady_rate(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=400_000)
    args = parser.parse_args()
    one = [sys.executable, *ACRL, "--timesteps", str(args.timesteps)]
    ranks = [*TORCHRUN, "--nproc-per-node"]
    rest = [*ACRL, "--timesteps", str(args.timesteps), "--distributed"]
    cases = {
        "A2C, one process, 32 envs": one,
        "A2C, torchrun 1 rank x 32 envs": [*ranks, "1", *rest],
        "A2C, torchrun 2 ranks x 16 envs": [*ranks, "2", *rest, "--n-envs", "16"],
        "A3C, 1 worker (preset)": [*one, "--algo", "a3c", "--workers", "1"],
        "A3C, 2 workers (preset)": [*one, "--algo", "a3c", "--workers", "2"],
        "A3C on Ray, 1 worker (preset)": [
            *one,
            "--algo",
            "a3c",
            "--backend",
            "ray",
            "--workers",
            "1",
        ],
        "A3C on Ray, 2 workers (preset)": [
            *one,
            "--algo",
            "a3c",
            "--backend",
            "ray",
            "--workers",
            "2",
        ],
    }
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, argv) in enumerate(cases.items()):
            rates[name] = measure(name, argv, Path(tmp) / str(i))
    base = rates["A2C, one process, 32 envs"]
    print(f"{'backend':<34} {'steps/s':>9} {'vs one process':>15}")
    for name, rate in rates.items():
        print(f"{name:<34} {rate:>9,.0f} {rate / base:>14.2f}x")


if __name__ == "__main__":
    main()
