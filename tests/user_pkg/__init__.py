"""A package of the user's own, as tests import it through ``--env-module``."""
