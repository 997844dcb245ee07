"""torch.compile of the whole A2C update against the NumPy and eager torch backends.

The compiled update is one graph over the policy's flat parameter vector: GAE targets, the
forward pass (the policy module itself, through torch.func.functional_call on views of the
vector), the loss, its gradient (torch.func.grad), clipping and the RMSprop step. Its first
call is timed in a fresh process, with an empty compile cache (cold) and again with the
cache that run left on disk (warm: TORCHINDUCTOR_CACHE_DIR), as a user's second run would
start. Per-update times are medians over repeated updates of one CartPole rollout, on one
torch thread, at 8, 64 and 1024 envs x 5 steps.

    .venv/bin/python benchmarks/compile_update.py [--envs 8,64,1024]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from acrl import A2C
from acrl.learner.backends import make_backend
from acrl.learner.optim import optimizer_step
from acrl.learner.update import compute_gradients

N_STEPS = 5


def trained(n_envs: int) -> tuple[A2C, object]:
    """A model a few updates into CartPole, and one rollout of it."""
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs, n_steps=N_STEPS, seed=0, backend="torch")
    model.learn(n_envs * N_STEPS * 4)
    return model, model._engine.collector.collect()


def compiled_update(model: A2C):
    """The whole update as one function of (vector, square_avg, rollout tensors, lr)."""
    policy, config = model.policy, model.config
    named = list(policy.named_parameters())
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    dist = policy.distribution

    def loss(vector, obs, actions, advantages, returns, mask):
        views = {
            n: c.view(s) for n, c, s in zip(names, torch.split(vector, sizes), shapes, strict=True)
        }
        params, values = torch.func.functional_call(policy, views, (obs,))
        log_prob, entropy = dist.log_prob_and_entropy(params, actions)
        count = mask.sum().clamp_min(1.0)
        policy_loss = -(advantages * log_prob * mask).sum() / count
        value_loss = ((returns - values).pow(2) * mask).sum() / count
        mean_entropy = (entropy * mask).sum() / count
        total = policy_loss - config.ent_coef * mean_entropy + config.vf_coef * value_loss
        return total, (policy_loss, value_loss, mean_entropy)

    def update(
        vector, square_avg, obs, actions, rewards, values, next_values, term, done, valid, lr
    ):
        deltas = rewards + config.gamma * (1.0 - term) * next_values - values
        carry = config.gamma * config.gae_lambda * (1.0 - done)
        advantages = [deltas[-1]]
        for t in range(rewards.shape[0] - 2, -1, -1):
            advantages.append(deltas[t] + carry[t] * advantages[-1])
        adv = torch.stack(advantages[::-1])
        grad, terms = torch.func.grad(loss, has_aux=True)(
            vector,
            obs.reshape(-1, obs.shape[-1]),
            actions.reshape(-1),
            adv.reshape(-1),
            (adv + values).reshape(-1),
            valid.reshape(-1),
        )
        norm = torch.linalg.vector_norm(grad)
        grad = grad * torch.clamp(config.max_grad_norm / (norm + 1e-6), max=1.0)
        square_avg.mul_(0.99).addcmul_(grad, grad, value=0.01)
        vector.sub_(lr * grad / (square_avg.sqrt() + config.rms_prop_eps))
        return norm, terms

    return update


def per_update_us(step, n_envs: int) -> float:
    for _ in range(10):
        step()
    reps = max(30, 24_000 // n_envs)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps // 5):
            step()
        times.append((time.perf_counter() - start) / (reps // 5) * 1e6)
    return sorted(times)[2]


def child(n_envs: int) -> dict:
    """In a fresh process: the compiled update's first call and its time per update."""
    torch.set_num_threads(1)
    model, rollout = trained(n_envs)
    args = [rollout.obs, rollout.actions, rollout.rewards, rollout.values, rollout.next_values]
    args += [rollout.terminated, rollout.done, rollout.valid]
    vector = model.params.vector.detach().clone()
    square_avg = torch.zeros_like(vector)
    lr = torch.tensor(7e-4)
    start = time.perf_counter()
    for module in ("torch._dynamo", "torch._inductor.compile_fx"):  # what compiling imports
        importlib.import_module(module)

    imports = time.perf_counter() - start
    update = torch.compile(compiled_update(model), fullgraph=True)
    update(vector, square_avg, *args, lr)
    first_call = time.perf_counter() - start
    # one update from the same parameters and optimizer state as the NumPy backend's
    vector.copy_(model.params.vector.detach())
    square_avg.copy_(model.optimizer.state[model.params.vector]["square_avg"])
    update(vector, square_avg, *args, lr)
    backend = make_backend("numpy", model.policy, model.params)
    compute_gradients(backend, model.params, rollout, model.config, 7e-4)
    optimizer_step(model.optimizer, 7e-4)
    difference = float((vector - model.params.vector.detach()).abs().max())
    us = per_update_us(lambda: update(vector, square_avg, *args, lr), n_envs)
    return {"imports_s": imports, "first_call_s": first_call, "us": us, "max_diff": difference}


def eager_us(n_envs: int, backend_name: str) -> float:
    torch.set_num_threads(1)
    model, rollout = trained(n_envs)
    backend = make_backend(backend_name, model.policy, model.params)

    def step() -> None:
        compute_gradients(backend, model.params, rollout, model.config, 7e-4)
        optimizer_step(model.optimizer, 7e-4)

    return per_update_us(step, n_envs)


def run_child(n_envs: int, cache: str) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n_envs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="8,64,1024")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    print(
        f"{'update':<11} {'numpy µs':>9} {'torch µs':>9} {'compiled µs':>12} "
        f"{'compiled/numpy':>15} {'cold s':>7} {'warm s':>7} {'of it imports':>14} {'max |Δθ|':>9}"
    )
    for n_envs in (int(n) for n in args.envs.split(",")):
        numpy_us, torch_us = eager_us(n_envs, "numpy"), eager_us(n_envs, "torch")
        with tempfile.TemporaryDirectory() as cache:
            cold = run_child(n_envs, cache)
            warm = run_child(n_envs, cache)
        print(
            f"{n_envs:>4} x {N_STEPS:<4} {numpy_us:>9,.0f} {torch_us:>9,.0f} {warm['us']:>12,.0f} "
            f"{warm['us'] / numpy_us:>14.2f}x {cold['first_call_s']:>7.1f} "
            f"{warm['first_call_s']:>7.1f} {warm['imports_s']:>13.1f}s {warm['max_diff']:>9.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
