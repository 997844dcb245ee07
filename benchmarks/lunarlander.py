"""LunarLander-v3, zoo preset, 8 envs, the first 50k steps from the same seed: acrl vs SB3.

acrl steps its 8 envs in subprocesses (AsyncVectorEnv: Box2D across both cores); SB3 runs
its usual DummyVecEnv. Box2D's cost depends on what the lander does, so the mean episode
length of each run is printed beside its throughput.

    .venv/bin/python benchmarks/lunarlander.py [--steps 50000]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import Result, print_table, sb3_a2c, set_threads, timed

from acrl import A2C

ZOO = dict(n_steps=5, gamma=0.995, learning_rate=0.00083, ent_coef=1e-5)


def main() -> list[Result]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50_000)
    args, _ = parser.parse_known_args()
    set_threads(1)
    ours = A2C(
        "MlpPolicy",
        "LunarLander-v3",
        n_envs=8,
        seed=0,
        device="cpu",
        vectorization="async",
        **{**ZOO, "learning_rate": "lin_0.00083"},
    )
    acrl_wall = timed(lambda: ours.learn(args.steps))
    acrl_len = float(np.mean([n for _, n in ours.recent_episodes]))
    ours.env.close()

    def linear(progress: float) -> float:
        return progress * 0.00083

    theirs = sb3_a2c("LunarLander-v3", 8, 0, **{**ZOO, "learning_rate": linear})
    sb3_wall = timed(lambda: theirs.learn(args.steps))
    sb3_len = float(np.mean([e["l"] for e in theirs.ep_info_buffer]))
    results = [
        Result(
            "LunarLander 8 envs, first 50k steps (steps/s)",
            args.steps / acrl_wall,
            args.steps / sb3_wall,
            sb3_wall / acrl_wall,
            2.0,
            "steps/s",
            f"mean episode length: acrl {acrl_len:.0f}, SB3 {sb3_len:.0f} (async envs for acrl)",
        )
    ]
    print_table(results)
    return results


if __name__ == "__main__":
    main()
