"""Gymnasium environments as acrl uses them: vector envs, their autoreset mode, spaces."""

from acrl.envs.vector import (
    VECTORIZATIONS,
    as_vector_env,
    autoreset_mode,
    check_env_id,
    check_spaces,
    env_id_of,
    make_vec_env,
)

__all__ = [
    "VECTORIZATIONS",
    "as_vector_env",
    "autoreset_mode",
    "check_env_id",
    "check_spaces",
    "env_id_of",
    "make_vec_env",
]
