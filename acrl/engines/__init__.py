"""Engines: where rollouts are collected and where ``optimizer.step()`` runs.

- ``sync``: A2C in this process (and, with a GradientSync, as one of torchrun's ranks).
- ``torchrun``: the GradientSync of torch.distributed: one all-reduce per update.
- ``hogwild``: A3C's worker processes around a model and optimizer state in shared memory.
- ``ray``: A3C's workers as Ray actors; this process applies their gradients.

Each reports its updates to the run's bookkeeping (acrl.learner.reports.Bookkeeping) and
computes gradients with acrl.learner.update; no engine imports another.
"""
