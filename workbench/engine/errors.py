"""One error family whose messages a person can act on.

Every error the engine raises on purpose is a ``WorkbenchError``: its message says what went wrong,
where (file, line, setting) and what to do. The CLI prints it without a traceback; the GUI shows it
in words next to the thing it concerns. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class WorkbenchError(Exception):
    """Base class: a message meant for a person, not a developer.

    ``exit_code`` is the CLI's exit status (README): 2 for a bad command or setting (the default),
    1 where a file the command was given turned out damaged.
    """

    exit_code = 2

    def __init__(self, message: str = "", *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(WorkbenchError):
    """A setting in an experiment (TOML file, --set, a form) is unknown or has a bad value."""


class CorpusError(WorkbenchError):
    """A corpus source cannot be read: names the file (and line or byte) and what to do."""


class TokenizerError(WorkbenchError):
    """A tokenizer cannot be trained or loaded."""


class DataError(WorkbenchError):
    """Token data cannot feed the model (for example a corpus shorter than one context window)."""


class CheckpointError(WorkbenchError):
    """A run folder or checkpoint is missing, incomplete or does not match the experiment."""


class TrainingError(WorkbenchError):
    """Training cannot go on (for example the loss became NaN)."""


class Diverged(TrainingError):
    """The loss or the gradients left any sane range; the message names the step, the rule that fired
    and a checkpoint that is still good."""


class Cancelled(WorkbenchError):
    """A long operation was stopped on request; not a failure."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
