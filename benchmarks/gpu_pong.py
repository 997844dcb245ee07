"""Pong from pixels on a GPU: the ALE/Pong-v5 preset's steps/s at 16, 64 and 256 envs with
ale-py's C++ AtariVectorEnv and ``--device cuda``, what one update's time is spent on, the same
preset on the machine's CPU cores for comparison, and the policy on CUDA checked against the
same policy on the CPU (forward and gradients, TF32 off).

Each steps/s figure is ``learn()``'s rate over ``--seconds`` seconds after a warm-up of 20
updates; "envs alone" steps the same vector env with random actions and no learner: the
ceiling the learner's overlap could reach. The learning run (``acrl train`` as a user calls
it, stopped by SIGINT after ``--learn-seconds``) is written to ``--out``.

    python benchmarks/gpu_pong.py [--sizes 16,64,256] [--seconds 25] [--learn-seconds 0]
        [--learn-envs 64] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ENV_ID = "ALE/Pong-v5"
N_STEPS = 5
WARMUP_UPDATES = 20


def model_for(n_envs: int, device: str, threads: int | str = "auto") -> Any:
    """The model ``acrl train ALE/Pong-v5 --n-envs N --device D --threads T`` builds."""
    from acrl.algorithms.registry import make_model
    from acrl.config.runs import resolve_run_config

    run = resolve_run_config(ENV_ID, overrides={"seed": 0, "n_envs": n_envs})
    assert run.hyperparams.n_steps == N_STEPS
    return make_model(run, device=device, threads=threads)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def learner_rate(model: Any, seconds: float) -> float:
    """Steps a second of ``learn()`` over about ``seconds`` after the warm-up."""
    batch = model.n_envs * N_STEPS
    model.learn(WARMUP_UPDATES * batch)
    chunk, done = 20 * batch, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.learn(chunk, reset_num_timesteps=False)
        done += chunk
    sync(str(model.device))
    return done / (time.perf_counter() - start)


def envs_alone(model: Any, seconds: float = 4.0) -> float:
    """Steps a second of the model's vector env under random actions, no learner."""
    env = model.env
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    n = model.n_envs
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, 6, size=n))
        steps += n
    return steps / (time.perf_counter() - start)


def split(model: Any) -> str:
    """Per update: stepping the envs N_STEPS times, the acting forwards, the update's forward
    and backward (synchronized on the GPU)."""
    device, n = str(model.device), model.n_envs
    env, policy = model.env, model.policy
    env.reset(seed=2)
    actions = np.zeros(n, dtype=np.int64)
    start = time.perf_counter()
    for _ in range(20):
        env.step(actions)
    env_ms = (time.perf_counter() - start) / 20 * N_STEPS * 1e3
    host = torch.randint(0, 256, (n * N_STEPS, 4 * 84 * 84), dtype=torch.uint8)
    obs = host.to(device)
    acts = torch.zeros(n * N_STEPS, dtype=torch.int64, device=device)
    with torch.inference_mode():
        policy.act(host[:n].to(device))
        sync(device)
        start = time.perf_counter()
        for _ in range(20):
            policy.act(host[:n].to(device))
        sync(device)
        act_ms = (time.perf_counter() - start) / 20 * N_STEPS * 1e3
    start = time.perf_counter()
    for _ in range(10):
        log_prob, entropy, values = policy.evaluate_actions(obs, acts)
        (log_prob.sum() + entropy.sum() + values.sum()).backward()
    sync(device)
    update_ms = (time.perf_counter() - start) / 10 * 1e3
    return (
        f"env steps {env_ms:.1f} ms, acting forwards (with the uint8 copy) {act_ms:.1f} ms, "
        f"update forward + backward {update_ms:.1f} ms"
    )


def cpu_cuda_equal() -> str:
    """The Pong policy's outputs and gradients on CUDA against the CPU's, TF32 off."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = model_for(16, "cpu")
    cpu = model.policy
    gpu = copy.deepcopy(cpu).to("cuda")
    worst = 0.0
    for trial in range(3):
        gen = torch.Generator().manual_seed(trial)
        obs = torch.randint(0, 256, (80, 4 * 84 * 84), dtype=torch.uint8, generator=gen)
        acts = torch.randint(0, 6, (80,), generator=gen)
        outs = []
        for policy, device in ((cpu, "cpu"), (gpu, "cuda")):
            policy.zero_grad()
            lp, ent, val = policy.evaluate_actions(obs.to(device), acts.to(device))
            (lp.mean() + 0.01 * ent.mean() + 0.25 * val.pow(2).mean()).backward()
            grads = [p.grad.detach().cpu().double().flatten() for p in policy.parameters()]
            outs.append(
                torch.cat(
                    [
                        lp.detach().cpu().double(),
                        val.detach().cpu().double(),
                        ent.detach().cpu().double().flatten(),
                        *grads,
                    ]
                )
            )
        err = float((outs[1] - outs[0]).norm() / outs[0].norm())
        worst = max(worst, err)
    model.env.close()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    verdict = "equal" if worst < 1e-4 else "DISAGREE"
    return (
        f"CPU and CUDA policy (outputs + gradients, 3 batches of 80): max relative error "
        f"{worst:.1e}: {verdict}"
    )


def learning_run(seconds: float, n_envs: int, device: str, out: Path) -> None:
    """``acrl train ALE/Pong-v5 --device D --n-envs N``, stopped by SIGINT after ``seconds``."""
    run_dir = Path("/tmp/pong_gpu_run")
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "acrl",
        "train",
        ENV_ID,
        "--device",
        device,
        "--n-envs",
        str(n_envs),
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "--log-interval",
        "50",
        "--checkpoint-every",
        "100000000",
    ]
    print("$", " ".join(cmd[1:]), flush=True)
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    print(f"exit {proc.returncode}", flush=True)
    for name in ("metrics.csv", "summary.json", "config.yaml"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, out / f"pong_gpu_{name}")
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        lines = metrics.read_text().splitlines()
        print("\n".join([lines[0], *lines[1:][:: max(1, len(lines) // 15)], lines[-1]]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="16,64,256")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--cpu-seconds", type=float, default=25.0)
    parser.add_argument("--learn-seconds", type=float, default=0.0)
    parser.add_argument(
        "--budget", type=float, default=0.0, help="with it, the learning run ends by then"
    )
    parser.add_argument("--learn-envs", type=int, default=64)
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the script")
    args = parser.parse_args()
    started = time.perf_counter()
    out = Path(args.out)
    import ale_py

    gpu = args.device.startswith("cuda")
    name = torch.cuda.get_device_name(0) if gpu else "no GPU"
    print(
        f"torch {torch.__version__}, ale-py {ale_py.__version__}, {os.cpu_count()} CPUs, {name}",
        flush=True,
    )
    if gpu:
        print(cpu_cuda_equal(), flush=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        model = model_for(n, args.device)
        ceiling = envs_alone(model)
        rate = learner_rate(model, args.seconds)
        where = split(model)
        rows.append((f"{n} envs, {args.device}", rate, ceiling, where))
        print(f"{n:>4} envs {args.device}: {rate:,.0f} steps/s (envs alone {ceiling:,.0f})")
        print(f"     {where}", flush=True)
        model.env.close()
        del model
        if gpu:
            torch.cuda.empty_cache()
    if args.cpu_seconds > 0:
        model = model_for(16, "cpu", threads=os.cpu_count() or 1)
        rate = learner_rate(model, args.cpu_seconds)
        where = split(model)
        rows.append((f"16 envs, cpu ({os.cpu_count()} threads)", rate, 0.0, where))
        print(f"  16 envs cpu: {rate:,.0f} steps/s; {where}", flush=True)
        model.env.close()
    print("\n| run | steps/s | envs alone | one update |\n| --- | --- | --- | --- |")
    for name, rate, ceiling, where in rows:
        print(f"| {name} | {rate:,.0f} | {ceiling:,.0f} | {where} |")
    learn = args.learn_seconds
    if args.budget > 0:  # leave 45 s for the SIGINT stop and the copies
        learn = min(learn, args.budget - (time.perf_counter() - started) - 45)
    if learn > 30:
        learning_run(learn, args.learn_envs, args.device, out)


if __name__ == "__main__":
    main()
