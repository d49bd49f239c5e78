"""One error family for everything the user can fix.

The CLI turns a BiovaeError into one line on stderr and exit status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class BiovaeError(Exception):
    """A problem with the user's input or settings.

    message: what is wrong, naming the file, record, column or option.
    hint: what to do about it (optional).
    """

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} ({hint})")

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}. Fix: {self.hint}"


def require(condition: bool, message: str, hint: str | None = None) -> None:
    """Raise BiovaeError(message, hint) unless condition holds."""
    if not condition:
        raise BiovaeError(message, hint)
