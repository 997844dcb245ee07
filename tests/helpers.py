"""Helpers shared by the tests that drive training runs from outside."""

import time
from pathlib import Path


def wait_for_metrics_rows(run_dir: Path, rows: int = 2, timeout: float = 120.0) -> None:
    """Wait until a run has written ``rows`` rows of metrics.csv (training is under way)."""
    metrics = run_dir / "metrics.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"no metrics from {run_dir} after {timeout} s")
