"""Argument types the subcommands share."""

from __future__ import annotations


def steps(text: str) -> int:
    """A count of steps written as the presets write budgets too: ``200000``, ``2e5``,
    ``1.5e+6`` (a whole number either way; a ValueError is argparse's one-line refusal)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer():
            raise ValueError(text) from None
        return int(value)
