"""The error type for user mistakes: the CLI prints it as one line and exits with status 2."""


class UserError(ValueError):
    """A mistake in what the user asked for (a bad value, a missing file, an unknown id)."""


class NonFiniteError(ArithmeticError):
    """A NaN or infinity during training, from the environment or in an update's loss or
    gradient; the update it would have spoiled is not applied."""


class WorkerError(RuntimeError):
    """An A3C worker failed; the message names the worker and its error."""
