"""Shared pieces of the benchmarks: results, the SB3 yardstick, solve detection, timing."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

SOLVED = 475.0


@dataclass(frozen=True)
class Result:
    """One measurement: acrl against its yardstick, measured in the same run."""

    name: str
    acrl: float
    yardstick: float
    ratio: float
    target: float
    unit: str
    note: str = ""
    target_max: float | None = None  # for two-sided targets ("about the same")

    @property
    def met(self) -> bool:
        return self.ratio >= self.target and (
            self.target_max is None or self.ratio <= self.target_max
        )


def machine() -> str:
    """The machine a figure was measured on, as far as it decides the figure: the CPU, and
    the kernels torch and NumPy's BLAS picked for it (another instruction set rounds
    otherwise, so a seed's run takes another course: docs/guides/guarantees.md)."""
    import os
    import platform

    from threadpoolctl import threadpool_info

    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        fields = {}
        for line in cpuinfo.read().split("\n\n")[0].splitlines():  # the first CPU's lines
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        name = fields.get("model name", name)
        if "cpu family" in fields:  # "AMD EPYC" alone names Zen 4 (25) and Zen 5 (26) alike
            name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    blas = [
        f"{info.get('internal_api')} {info.get('architecture', '?')}"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    return (
        f"{name}, {os.cpu_count()} cores; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), NumPy {np.__version__} "
        f"({', '.join(blas) or 'no BLAS found'})"
    )


def print_table(results: list[Result]) -> None:
    print(f"machine: {machine()}")
    header = f"{'measurement':<46} {'acrl':>12} {'yardstick':>12} {'ratio':>7} {'target':>7}  met"
    print(header)
    print("-" * len(header))
    for r in results:
        target = (
            f"{r.target:.2f}x" if r.target_max is None else f"{r.target:.1f}-{r.target_max:.2f}"
        )
        print(
            f"{r.name:<46} {r.acrl:>12,.1f} {r.yardstick:>12,.1f} {r.ratio:>6.2f}x "
            f"{target:>7}  {'yes' if r.met else 'NO'}"
        )
        if r.note:
            print(f"    {r.note}")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_round(
    one_round: Callable[[], tuple[float, float]], rounds: int
) -> tuple[float, float, float, str]:
    """Run ``one_round`` (acrl's rate and the yardstick's, measured back to back) ``rounds``
    times: the median round's ratio, acrl's and the yardstick's rates, and a note listing
    every round's ratio. Alternating rounds keep this VM's drift of up to +-25% between
    minutes out of the ratio far better than a single pair of timings."""
    pairs = []
    for _ in range(rounds):
        ours, theirs = one_round()
        pairs.append((ours / theirs, ours, theirs))
    ratio, ours, theirs = sorted(pairs)[len(pairs) // 2]
    ratios = ", ".join(f"{r:.2f}" for r, _, _ in pairs)
    return ratio, ours, theirs, f"median of {rounds} alternating rounds; ratios {ratios}"


def median(values: list[float]) -> float:
    return float(statistics.median(values))


DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, before any benchmark sets one


def set_threads(n: int) -> None:
    """torch's intra-op threads for whatever runs next. acrl's ``learn()`` sets its own
    while it runs (``threads="auto"``); this is what SB3 and the bare loops get."""
    torch.set_num_threads(n)


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Another process spinning on a CPU core meanwhile, as a second job would."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def sb3_a2c(env_id: str, n_envs: int, seed: int, **kwargs):
    """Stable-Baselines3's A2C on a DummyVecEnv, as users run it (imported lazily)."""
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    env = sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed)
    return SB3A2C("MlpPolicy", env, seed=seed, device="cpu", **kwargs)


def sb3_solve_callback():
    """An SB3 callback that stops when the last 100 training episodes average >= 475."""
    from stable_baselines3.common.callbacks import BaseCallback

    class StopWhenSolved(BaseCallback):
        solved_at: int | None = None

        def _on_step(self) -> bool:
            buffer = self.model.ep_info_buffer
            if len(buffer) == 100 and np.mean([e["r"] for e in buffer]) >= SOLVED:
                self.solved_at = self.num_timesteps
                return False
            return True

    return StopWhenSolved()
