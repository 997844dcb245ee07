"""Importing a module the user names on this command (an env module, env_packages, a wrapper,
a features extractor): the one way acrl imports user code.

``python -m acrl`` makes the current directory importable (Python puts it first on the path);
the ``acrl`` console script does not, so a module that is not found otherwise is looked for
in the current directory, last on the path, so that it never shadows an installed package.
Worker processes started with ``spawn`` inherit the path.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType


def import_user_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, retried with the current directory on the path when
    the top-level package is not found; the exceptions are the import's own."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != name.split(".")[0] or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(name)
