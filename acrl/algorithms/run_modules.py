"""What a run's own settings name, imported before anything is built or written. No torch
here unless the run names a features extractor of the user's: a mistake is answered at once."""

from __future__ import annotations

from acrl.config.runs import RunConfig
from acrl.envs import check_env_id, import_env_module, wrapper_classes


def import_run_modules(run: RunConfig) -> None:
    """Import what the run's own settings name (its env_packages, the modules of its wrappers
    and of a features extractor of the user's) and check its env id: the user's act, in the
    process that trains, before anything is written; a UserError if one is missing."""
    for module in run.env_packages:
        import_env_module(module, "env_packages")
    check_env_id(run.env_id)
    wrapper_classes(run.wrappers)
    policy = run.hyperparams.policy_config
    if policy.user_extractor:
        from acrl.model.extractors import find_class

        find_class(policy.features_extractor_class, may_import=True)
