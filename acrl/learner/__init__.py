"""The learner: rollout collection, the A2C loss and update, the compute backends (torch,
NumPy) and the worker builder, shared by every engine."""
