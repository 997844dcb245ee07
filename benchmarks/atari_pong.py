"""Pong from pixels against Stable-Baselines3: training steps a second with the zoo's A2C
Atari settings, the same preprocessing and network, each run in a process of its own.

Both train NatureCNN on 4 stacked 84x84 grey frames of ``ALE/Pong-v5`` (made with
``frameskip=1``; 0-30 no-ops, 4 frames a step max-pooled, FIRE at reset, sticky actions 0.25,
rewards clipped and lives as terminals for the learner): 16 envs x 5 steps, TensorFlow-style
RMSprop (eps 1e-5) at 7e-4, entropy 0.01, value 0.25. acrl as its ``ALE/Pong-v5`` preset
builds it, in ale-py's C++ AtariVectorEnv (its default) and, apart, in Gymnasium's wrappers
over a SyncVectorEnv; SB3 with its ``make_atari_env`` (AtariWrapper over a DummyVecEnv) and
``VecFrameStack``. Both on torch's default threads (2 here). Speed is ``learn()``'s steps a
second after a warm-up; the split below says where acrl's time goes. Target: 2x SB3.

Each measurement runs in a process of its own: acrl has glibc keep freed memory while a large
CNN trains (acrl.learner.backends.allocator), a process-wide setting that must not carry over
to SB3. SB3 is also measured with the same setting made through glibc's environment
variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``), which any user can set.

    .venv/bin/python benchmarks/atari_pong.py [--timesteps N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch
from common import Result, print_table

from acrl.learner.backends import allocator

ENV_ID = "ALE/Pong-v5"
N_ENVS, N_STEPS = 16, 5
TIMESTEPS = 16_000  # 200 updates
WARMUP = 800  # 10 updates, not timed


def acrl_model(vectorization: str) -> Any:
    """acrl's model as ``acrl train ALE/Pong-v5`` builds it, in ``vectorization``."""
    from acrl.algorithms.registry import make_model
    from acrl.config.runs import resolve_run_config

    run = resolve_run_config(ENV_ID, overrides={"seed": 0, "vectorization": vectorization})
    assert run.n_envs == N_ENVS and run.hyperparams.n_steps == N_STEPS
    return make_model(run)


def sb3_model() -> Any:
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)  # a process of its own: nothing has registered ALE/ ids
    env = VecFrameStack(
        make_atari_env(ENV_ID, n_envs=N_ENVS, seed=0, env_kwargs={"frameskip": 1}), n_stack=4
    )
    return SB3A2C(
        "CnnPolicy",
        env,
        n_steps=N_STEPS,
        learning_rate=7e-4,
        ent_coef=0.01,
        vf_coef=0.25,
        seed=0,
        device="cpu",
        policy_kwargs={"optimizer_class": RMSpropTFLike, "optimizer_kwargs": {"eps": 1e-5}},
    )


def steps_per_second(model: Any, timesteps: int) -> float:
    model.learn(WARMUP)
    start = time.perf_counter()
    model.learn(timesteps, reset_num_timesteps=False)
    return timesteps / (time.perf_counter() - start)


def where_the_time_goes(model: Any) -> str:
    """Per update of 80 frames: stepping the envs 5 times, the 5 acting forwards, and the
    update's forward + backward (one torch thread count, the run's)."""
    env, policy = model.env, model.policy
    env.reset(seed=0)
    actions = np.zeros(N_ENVS, dtype=np.int64)
    start = time.perf_counter()
    for _ in range(50):
        env.step(actions)
    env_ms = (time.perf_counter() - start) / 50 * N_STEPS * 1e3
    obs = torch.randint(0, 256, (N_ENVS * N_STEPS, 4 * 84 * 84), dtype=torch.uint8)
    actions = torch.zeros(N_ENVS * N_STEPS, dtype=torch.int64)
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(20):
            policy.act(obs[:N_ENVS])
        act_ms = (time.perf_counter() - start) / 20 * N_STEPS * 1e3
    start = time.perf_counter()
    for _ in range(5):
        log_prob, entropy, values = policy.evaluate_actions(obs, actions)
        (log_prob.sum() + entropy.sum() + values.sum()).backward()
    update_ms = (time.perf_counter() - start) / 5 * 1e3
    return (
        f"acrl per update: env steps {env_ms:.0f} ms, acting forwards {act_ms:.0f} ms, "
        f"update forward + backward {update_ms:.0f} ms"
    )


KEPT_MEMORY_ENV = {  # acrl's thresholds, as glibc reads them from the environment
    "MALLOC_MMAP_THRESHOLD_": str(allocator.MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD),
}
MALLOC_SETTINGS = ("MALLOC_", "GLIBC_TUNABLES")  # none from the caller: only what a run sets
MEASUREMENTS = ("acrl-native", "sb3", "sb3-kept-memory", "acrl-sync")


def measure_one(name: str, timesteps: int) -> None:
    """One measurement in this process: its steps/s (and acrl's split) on stdout's last line."""
    if name.startswith("acrl"):
        model = acrl_model("auto" if name == "acrl-native" else "sync")
        rate = steps_per_second(model, timesteps)
        note = model.compute.describe()
        if name == "acrl-native":
            note = f"{where_the_time_goes(model)}; {note}"
    else:
        rate, note = steps_per_second(sb3_model(), timesteps), ""
    print(f"{rate}\t{note}")


def measured(name: str, timesteps: int) -> tuple[float, str]:
    """``measure_one(name)`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(MALLOC_SETTINGS)}
    env.update(KEPT_MEMORY_ENV if name == "sb3-kept-memory" else {})
    argv = [sys.executable, __file__, "--one", name, "--timesteps", str(timesteps)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    rate, _, note = done.stdout.strip().splitlines()[-1].partition("\t")
    return float(rate), note


def main() -> list[Result]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timesteps", type=int, default=TIMESTEPS, help="timed steps a run")
    parser.add_argument("--quick", action="store_true", help="1,600 timed steps: a smoke run")
    parser.add_argument("--one", choices=MEASUREMENTS, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    timesteps = 1_600 if args.quick else args.timesteps
    if args.one:
        measure_one(args.one, timesteps)
        return []
    print(f"== {ENV_ID}: {N_ENVS} envs x {N_STEPS} steps, {timesteps:,} timed steps a run")
    ours, split = measured("acrl-native", timesteps)
    print(f"  acrl, C++ AtariVectorEnv: {ours:,.0f} steps/s")
    theirs, _ = measured("sb3", timesteps)
    print(f"  SB3, AtariWrapper + DummyVecEnv: {theirs:,.0f} steps/s")
    theirs_kept, _ = measured("sb3-kept-memory", timesteps)
    print(f"  SB3, the same with glibc keeping freed memory: {theirs_kept:,.0f} steps/s")
    ours_sync, compute = measured("acrl-sync", timesteps)
    print(f"  acrl, Gymnasium wrappers + SyncVectorEnv: {ours_sync:,.0f} steps/s")
    print(f"  {split}\n  acrl's Python-env run: {compute}")
    results = [
        Result(
            "Pong CnnPolicy: steps/s, C++ envs",
            ours,
            theirs,
            ours / theirs,
            2.0,
            "steps/s",
            f"SB3 make_atari_env + VecFrameStack; {split}",
        ),
        Result(
            "Pong: the same, SB3 keeping freed memory",
            ours,
            theirs_kept,
            ours / theirs_kept,
            2.0,
            "steps/s",
            "SB3 with MALLOC_MMAP_THRESHOLD_=32 MiB and MALLOC_TRIM_THRESHOLD_=1 GiB",
        ),
        Result(
            "Pong CnnPolicy: steps/s, Python envs",
            ours_sync,
            theirs,
            ours_sync / theirs,
            1.0,
            "steps/s",
            "acrl through Gymnasium's AtariPreprocessing in a SyncVectorEnv",
        ),
    ]
    print()
    print_table(results)
    return results


if __name__ == "__main__":
    main()
