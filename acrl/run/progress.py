"""A tqdm progress bar (tqdm.auto: a widget in Jupyter, text in a terminal) showing steps/s and
the recent mean return, refreshed at most 4 times/s."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from tqdm.auto import tqdm


class ProgressBar:
    """The bar, or nothing when not ``enabled`` (a disabled tqdm would still start its
    monitor thread)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self._bar = (
            tqdm(total=total, unit="step", unit_scale=True, dynamic_ncols=True) if enabled else None
        )
        self._last = 0.0

    def advance(self, steps: int, mean_return: Callable[[], float]) -> None:
        """Count ``steps`` more; ``mean_return()`` is asked for only when the bar is redrawn."""
        if self._bar is None:
            return
        self._bar.update(steps)
        now = time.monotonic()
        if now - self._last > 0.25:
            self._last = now
            value = mean_return()
            ret = "-" if math.isnan(value) else f"{value:.1f}"
            self._bar.set_postfix_str(f"return={ret}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
