"""Errors a user can act on.

Every error that should reach a person (in the browser as a ``gr.Error``, on the command
line as one line and a non-zero exit) is a ``UserError``: its message says what went wrong
and what to do about it. Anything else is a bug and keeps its traceback.

    raise InputError.keyed("classify.too_many_labels", count=60, limit=50)   # a message in both languages
    sys.exit(run_command(lambda: export(args)))   # a CLI: prints the result (exit 0) or "error: ..." (exit 2)

A message the page shows is raised by its key in ``assistant.core.user_messages.MESSAGES`` (English and
Chinese); ``str(error)`` is the English text either way. Tests: ``pytest tests/test_user_errors.py -q``.
"""

import sys
from collections.abc import Callable
from typing import Self

from assistant.core.user_messages import message_text


class UserError(Exception):
    """A problem with the user's input or environment, with the fix in the message. ``key`` and ``params``
    name the message in ``assistant.core.user_messages`` when it was raised with ``keyed`` (else None, {})."""

    key: str | None = None
    params: dict = {}

    @classmethod
    def keyed(cls, key: str, **params) -> Self:
        """The error with message ``key`` in English, ``params`` filled in (KeyError for an unknown key)."""
        error = cls(message_text(key, "en", **params))
        error.key, error.params = key, params
        return error


class ModelLoadError(UserError):
    """The requested model could not be found or loaded."""


class InputError(UserError):
    """A form field, upload or CLI flag is invalid."""


def run_command(work: Callable[[], object]) -> int:
    """A command line's exit status: run ``work`` and print what it returns (unless None), 0; or print a
    ``UserError`` as one ``error: ...`` line on stderr, 2."""
    try:
        result = work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result is not None:
        print(result)
    return 0
