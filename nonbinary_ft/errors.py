"""The project's one error family.

Every error a user can cause derives from :class:`NbftError`. The CLI turns these into one
line on stderr and exit status 2; anything else is a failure while running (exit 1).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NbftError", "ConfigError", "DataError", "ModelError", "AnalysisError"]


class NbftError(Exception):
    """Base class of every error caused by the user's input."""


class ConfigError(NbftError):
    """A setting is invalid.

    Args:
        field: dotted path of the field, e.g. ``settings.reinit_layers``.
        expected: what a valid value looks like.
        got: the value that was given.
        fix: how to fix it, when there is something better to say than ``expected``.
        source: the file the value came from, if any.
    """

    def __init__(
        self,
        field: str,
        expected: str,
        got: object = None,
        fix: str | None = None,
        source: str | Path | None = None,
    ) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        self.fix = fix
        self.source = str(source) if source is not None else None
        where = f"{self.source}: " if self.source else ""
        message = f"{where}'{field}' must be {expected}"
        if got is not None:
            message += f" but got {got!r}"
        message += "."
        if fix:
            message += f" {fix}"
        super().__init__(message)

    def from_file(self, source: str | Path) -> ConfigError:
        """The same error naming ``source``, unless it names a file already."""
        if self.source is not None:
            return self
        return ConfigError(self.field, self.expected, self.got, self.fix, source)


class DataError(NbftError):
    """A data set is missing, empty or unreadable."""


class ModelError(NbftError):
    """A model cannot be built or its weights cannot be loaded."""


class AnalysisError(NbftError):
    """A transferability score or analysis step cannot be computed from the given input."""
