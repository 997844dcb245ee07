"""Errors users see: a mistake in what they asked for (UserError: one line, exit status 2) and
a fault while training (one line naming its cause, exit status 1)."""


class UserError(ValueError):
    """A mistake in what the user asked for (a bad value, a missing file, an unknown id)."""


class NonFiniteError(ArithmeticError):
    """A NaN or infinity during training, from the environment or in an update's loss or
    gradient; the update it would have spoiled is not applied."""


class WorkerError(RuntimeError):
    """An A3C worker failed; the message names the worker and its error."""


class DistributedError(RuntimeError):
    """The ranks of a torchrun run cannot go on together: another rank stopped (it died, or
    its host did), or their weights differ."""


class EnvError(WorkerError):
    """An environment raised while training (in ``reset`` or ``step``); the message names the
    env and its exception. A WorkerError, so that whoever stops on a failed worker stops on
    it too."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (some run to pages), for one-line reports."""
    text = str(exc)
    return text.splitlines()[0] if text else ""


def one_line(value: object) -> str:
    """``str(value)`` on one line (NumPy breaks the bounds of a Box space over several)."""
    return " ".join(str(value).split())
