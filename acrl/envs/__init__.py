"""Gymnasium environments as acrl uses them: vector envs, their autoreset mode, spaces, the
wrappers around them, and which env ids and wrappers may import the module they name."""

from acrl.envs.ids import check_env_id, check_named_env, import_env_module, split_env_id
from acrl.envs.vector import (
    VECTORIZATIONS,
    EpisodeStarts,
    abandon_envs,
    as_vector_env,
    autoreset_mode,
    check_env_spaces,
    check_reports_lives,
    check_spaces,
    describe_envs,
    env_failed_to_start,
    env_id_of,
    lives_in,
    make_vec_env,
)
from acrl.envs.wrappers import WrapperStack, wrapper_classes, wrappers_of

__all__ = [
    "VECTORIZATIONS",
    "EpisodeStarts",
    "WrapperStack",
    "abandon_envs",
    "as_vector_env",
    "autoreset_mode",
    "check_env_id",
    "check_env_spaces",
    "check_reports_lives",
    "check_named_env",
    "check_spaces",
    "describe_envs",
    "env_failed_to_start",
    "env_id_of",
    "import_env_module",
    "lives_in",
    "make_vec_env",
    "split_env_id",
    "wrapper_classes",
    "wrappers_of",
]
