"""torch.compile of the whole A2C update against the NumPy and eager torch backends.

The compiled update is one graph over the policy's flat parameter vector: the forward pass
(the policy module itself, through torch.func.functional_call on views of the vector), the
values and GAE targets from it, the loss, its gradient (torch.func.grad), clipping and the
RMSprop step: what a backend's ``gradients`` and the optimizer step do. Its first
call is timed in a fresh process, with an empty compile cache (cold) and again with the
cache that run left on disk (warm: TORCHINDUCTOR_CACHE_DIR), as a user's second run would
start. Per-update times are medians over repeated updates of one CartPole rollout, on one
torch thread, at 8, 64 and 1024 envs x 5 steps.

    .venv/bin/python benchmarks/compile_update.py [--envs 8,64,1024]

It ends with steady-state steps/s of whole training at 8 envs x 5 steps: the update is not
all the work, and acting cannot be compiled usefully at that batch size.
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

    def loss(vector, obs, next_obs, actions, rewards, terminated, done, mask):
        views = {
            n: c.view(s) for n, c, s in zip(names, torch.split(vector, sizes), shapes, strict=True)
        }
        n_steps, n_envs = rewards.shape
        params, values = torch.func.functional_call(
            policy, views, (obs.reshape(n_steps * n_envs, -1),)
        )
        _, last_values = torch.func.functional_call(policy, views, (next_obs,))
        # GAE(lambda) on the detached values, as rollout_targets (no SAME_STEP finals here)
        own = values.detach().reshape(n_steps, n_envs)
        following = torch.cat([own[1:], last_values.detach()[None]])
        deltas = rewards + config.gamma * (1.0 - terminated) * following - own
        carry = config.gamma * config.gae_lambda * (1.0 - done)
        advantages = [deltas[-1]]
        for t in range(n_steps - 2, -1, -1):
            advantages.append(deltas[t] + carry[t] * advantages[-1])
        adv = torch.stack(advantages[::-1])
        returns = (adv + own).reshape(-1)
        adv, mask = adv.reshape(-1), mask.reshape(-1)
        log_prob, entropy = dist.log_prob_and_entropy(params, actions.reshape(-1))
        count = mask.sum().clamp_min(1.0)
        policy_loss = -(adv * log_prob * mask).sum() / count
        value_loss = ((returns - values).pow(2) * mask).sum() / count
        mean_entropy = (entropy * mask).sum() / count
        total = policy_loss - config.ent_coef * mean_entropy + config.vf_coef * value_loss
        return total, (policy_loss, value_loss, mean_entropy)

    def update(vector, square_avg, obs, next_obs, actions, rewards, terminated, done, valid, lr):
        grad, terms = torch.func.grad(loss, has_aux=True)(
            vector, obs, next_obs, actions, rewards, terminated, done, valid
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
    args = [rollout.obs, rollout.next_obs, rollout.actions, rollout.rewards]
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


def end_to_end(n_envs: int, mode: str, steps: int = 100_000) -> float:
    """Steady-state steps/s of collecting and updating (compilation excluded): the numpy or
    torch backend, or the compiled update with the torch backend acting."""
    torch.set_num_threads(1)
    model = A2C("MlpPolicy", "CartPole-v1", n_envs=n_envs, seed=0, backend=mode.split()[0])
    model.learn(n_envs * N_STEPS * 10)
    collector = model._engine.collector
    if mode == "torch compiled":
        compiled = torch.compile(compiled_update(model), fullgraph=True)
        vector = model.params.vector.data
        square_avg = model.optimizer.state[model.params.vector]["square_avg"]
        lr = torch.tensor(7e-4)

        def update(ro) -> None:
            args = [ro.obs, ro.next_obs, ro.actions, ro.rewards, ro.terminated, ro.done, ro.valid]
            compiled(vector, square_avg, *args, lr)
    else:

        def update(ro) -> None:
            compute_gradients(model._engine.backend, model.params, ro, model.config, 7e-4)
            optimizer_step(model.optimizer, 7e-4)

    update(collector.collect())
    done, start = 0, time.perf_counter()
    while done < steps:
        update(collector.collect())
        done += n_envs * N_STEPS
    return done / (time.perf_counter() - start)


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
    print("\nend to end at 8 x 5, steady state (steps/s): ", end="", flush=True)
    modes = ("numpy", "torch compiled", "torch")
    rates = {mode: end_to_end(8, mode) for mode in modes}
    print(", ".join(f"{mode} {rate:,.0f}" for mode, rate in rates.items()))


if __name__ == "__main__":
    main()
