"""Records at the bottom of acrl: hyperparameters, the policy's shape, learning-rate schedules,
runs and presets. Nothing here imports torch, so `acrl presets` and `acrl --help` start fast."""

from acrl.config.hyperparams import ADAM_BETAS, BACKENDS, A2CConfig
from acrl.config.policy import PolicyConfig

__all__ = ["ADAM_BETAS", "BACKENDS", "A2CConfig", "PolicyConfig"]
